// The staging directory archive_command and restore_command see plaintext
// WAL in (wrappers_command.cpp): whether it can serve, and the operator's
// words for why not. Start-up warns with these; the system() wrapper
// refuses to stage anywhere else but a memory file system.
#pragma once

#include "core/no_postgres.hpp"

namespace ephemeral_crypt::interpose {

// 0 when `directory` exists and is on tmpfs or ramfs; else an errno
// (EXDEV: on another file system).
int staging_directory_error(const char* directory) noexcept;

// What `error` means for the staging directory, naming the setting; static.
const char* staging_problem(int error) noexcept;

}  // namespace ephemeral_crypt::interpose
