# Post-build check that a GOT fixture was linked the way its name says:
# EXPECT is lazy (JUMP_SLOT, no BIND_NOW), now (JUMP_SLOT, BIND_NOW) or noplt
# (GLOB_DAT and no JUMP_SLOT for getuid). Every fixture must also have
# PT_GNU_RELRO and the R_X86_64_64 data pointer to getuid inside it.
execute_process(COMMAND ${READELF} --wide --program-headers --dynamic --relocs ${LIBRARY}
  OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "readelf failed on ${LIBRARY}")
endif()

set(jump_slot "R_X86_64_JUMP_SLOT[^\n]* getuid")
set(glob_dat "R_X86_64_GLOB_DAT[^\n]* getuid")
set(data_pointer "R_X86_64_64[^\n]* getuid")
set(bind_now "\\(FLAGS\\)[^\n]*BIND_NOW")

function(require regex what)
  if(NOT out MATCHES "${regex}")
    message(FATAL_ERROR "${LIBRARY}: expected ${what}")
  endif()
endfunction()
function(forbid regex what)
  if(out MATCHES "${regex}")
    message(FATAL_ERROR "${LIBRARY}: unexpected ${what}")
  endif()
endfunction()

require("GNU_RELRO" "a PT_GNU_RELRO segment")
require("${data_pointer}" "an R_X86_64_64 relocation against getuid")
if(EXPECT STREQUAL "lazy")
  require("${jump_slot}" "a JUMP_SLOT relocation for getuid")
  forbid("${bind_now}" "BIND_NOW")
elseif(EXPECT STREQUAL "now")
  require("${jump_slot}" "a JUMP_SLOT relocation for getuid")
  require("${bind_now}" "BIND_NOW")
elseif(EXPECT STREQUAL "noplt")
  require("${glob_dat}" "a GLOB_DAT relocation for getuid")
  forbid("${jump_slot}" "a JUMP_SLOT relocation for getuid")
  forbid("${bind_now}" "BIND_NOW")
else()
  message(FATAL_ERROR "unknown EXPECT=${EXPECT}")
endif()
