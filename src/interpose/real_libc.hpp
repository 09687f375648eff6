// Pointers to the genuine libc functions, resolved once with
// dlsym(RTLD_NEXT). Every file call the layer makes itself goes through
// these (never a bare call, never a wrapper unless it means to encrypt), so
// its own calls never loop back into the wrappers, whatever the GOTs say.
#pragma once

#include "core/no_postgres.hpp"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>

namespace ephemeral_crypt::interpose {

struct RealLibc {
    int (*open)(const char*, int, ...);
    int (*openat)(int, const char*, int, ...);
    int (*close)(int);
    int (*close_range)(unsigned int, unsigned int, int);
    ssize_t (*read)(int, void*, size_t);
    ssize_t (*write)(int, const void*, size_t);
    ssize_t (*pread)(int, void*, size_t, off_t);
    ssize_t (*pwrite)(int, const void*, size_t, off_t);
    ssize_t (*readv)(int, const struct iovec*, int);
    ssize_t (*writev)(int, const struct iovec*, int);
    ssize_t (*preadv)(int, const struct iovec*, int, off_t);
    ssize_t (*pwritev)(int, const struct iovec*, int, off_t);
    ssize_t (*preadv2)(int, const struct iovec*, int, off_t, int);
    ssize_t (*pwritev2)(int, const struct iovec*, int, off_t, int);
    off_t (*lseek)(int, off_t, int);
    int (*ftruncate)(int, off_t);
    int (*truncate)(const char*, off_t);
    int (*fstat)(int, struct stat*);
    int (*stat)(const char*, struct stat*);
    int (*lstat)(const char*, struct stat*);
    int (*fstatat)(int, const char*, struct stat*, int);
    int (*statx)(int, const char*, int, unsigned int, struct statx*);
    int (*fallocate)(int, int, off_t, off_t);
    int (*posix_fallocate)(int, off_t, off_t);
    int (*posix_fadvise)(int, off_t, off_t, int);
    int (*sync_file_range)(int, off_t, off_t, unsigned int);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    void* (*mmap)(void*, size_t, int, int, int, off_t);
    ssize_t (*copy_file_range)(int, off_t*, int, off_t*, size_t, unsigned int);
    ssize_t (*sendfile)(int, int, off_t*, size_t);
    ssize_t (*splice)(int, off_t*, int, off_t*, size_t, unsigned int);
    int (*rename)(const char*, const char*);
    int (*renameat)(int, const char*, int, const char*);
    int (*unlinkat)(int, const char*, int);
    int (*fsync)(int);
    ssize_t (*readlink)(const char*, char*, size_t);
    void* (*fopen)(const char*, const char*);
    void* (*dlopen)(const char*, int);
    int (*system)(const char*);
};

// Resolves every pointer; returns false (naming the missing one in `missing`)
// if any cannot be found.
bool resolve_real_libc(const char** missing) noexcept;
const RealLibc& real() noexcept;

}  // namespace ephemeral_crypt::interpose
