// Redirects calls that other loaded objects make to libc by rewriting their
// GOT and data slots in place (x86_64 Linux, glibc). This is how the extension
// reaches the file operations of a stock PostgreSQL without LD_PRELOAD: after
// it is loaded, and again after every dlopen, it rewrites the slots of every
// object except its own and the libraries it must not disturb.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>

namespace ephemeral_crypt::interpose {

struct SymbolReplacement {
    const char* symbol;  // plain name as in the dynamic string table, e.g. "pread64"
    void* replacement;   // the address every matching slot will hold
};

struct PatchReport {
    int objects_scanned = 0;  // objects walked (the vDSO and skipped objects are not counted)
    int objects_skipped = 0;  // objects the skip predicate refused
    int objects_patched = 0;  // objects in which at least one slot was written by this call
    // Slots written by this call. A slot that already holds its replacement is
    // not written again and is counted in slots_already_patched instead, so a
    // repeated call over unchanged objects reports slots_patched == 0.
    int slots_patched = 0;
    int slots_already_patched = 0;
    int failures = 0;              // slots found but not written, or written but not re-protected
    char first_failure[256] = {};  // object path, symbol and reason of the first failure
    // audit_loaded_objects only: slots that do not hold their replacement,
    // and the object path and symbol of the first one.
    int slots_not_patched = 0;
    char first_not_patched[256] = {};
};

// Objects for which it returns true are not patched (our own .so, libc, ld.so,
// libcrypto, libsodium, ...). `object_path` is the loader's name for the
// object, empty for the main program; `object_base` is the address its first
// page is mapped at, the same value dladdr() reports as dli_fbase.
using SkipObject = bool (*)(const char* object_path, void* object_base);

// Writes the replacement into every slot, in every currently loaded object
// (the vDSO excluded), whose R_X86_64_JUMP_SLOT, R_X86_64_GLOB_DAT or
// R_X86_64_64 relocation names one of the table's symbols (R_X86_64_64 only
// with a zero addend). Read-only pages (RELRO, BIND_NOW) are made writable for
// the write and given back their protection as found in /proc/self/maps (or,
// if that is unreadable, as the program headers imply). Idempotent; call it
// again after each dlopen to reach the new objects. `skip` may be null. Entries
// with a null symbol or replacement are reported as failures and ignored.
// Does not allocate; concurrent calls are serialized by dl_iterate_phdr's lock.
PatchReport patch_loaded_objects(const SymbolReplacement* table, std::size_t count,
                                 SkipObject skip) noexcept;

// Reads, and never writes, what patch_loaded_objects would write: every slot
// that does not hold its replacement is counted in slots_not_patched (a slot
// written over since, or an object loaded without passing through the
// layer's dlopen), the others in slots_already_patched. Allocates nothing.
PatchReport audit_loaded_objects(const SymbolReplacement* table, std::size_t count,
                                 SkipObject skip) noexcept;

// The current value of the slot for `symbol` in the object that contains
// `address_in_object` (the main program if null): the JUMP_SLOT if there is
// one, else the first GLOB_DAT or R_X86_64_64 slot. Null if the object has no
// such slot or no object contains the address. A lazily bound slot that was
// never called holds the address of its PLT stub, not of the function.
void* current_slot_value(const void* address_in_object, const char* symbol) noexcept;

}  // namespace ephemeral_crypt::interpose
