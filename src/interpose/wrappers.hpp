// The libc replacements the GOT patcher installs. They are extern "C" and
// noexcept, report through errno exactly as libc does, and pass any call on
// a file outside the encrypted categories straight to libc after one table
// lookup. Exposed so unit tests can call them without patching anything, and
// so the engine can write encrypted files through them. They are defined by
// call family: wrappers_open.cpp (open, close, dup, fcntl), wrappers_io.cpp
// (read, write, vectored), wrappers_size.cpp (seek, truncate, allocate,
// range hints), wrappers_stat.cpp (the stat family), wrappers_refused.cpp
// (refused bypasses, rename), wrappers_command.cpp (system, for
// archive_command and restore_command) and layer.cpp (dlopen).
#pragma once

#include "core/no_postgres.hpp"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdio>

extern "C" {
int ec_open(const char* path, int flags, ...) noexcept;
int ec_openat(int dirfd, const char* path, int flags, ...) noexcept;
int ec_open_2(const char* path, int flags) noexcept;
int ec_openat_2(int dirfd, const char* path, int flags) noexcept;
int ec_creat(const char* path, mode_t mode) noexcept;
int ec_close(int fd) noexcept;
int ec_close_range(unsigned int first, unsigned int last, int flags) noexcept;
void ec_closefrom(int lowfd) noexcept;
ssize_t ec_read(int fd, void* buf, size_t count) noexcept;
ssize_t ec_read_chk(int fd, void* buf, size_t count, size_t buflen) noexcept;
ssize_t ec_write(int fd, const void* buf, size_t count) noexcept;
ssize_t ec_pread(int fd, void* buf, size_t count, off_t offset) noexcept;
ssize_t ec_pread_chk(int fd, void* buf, size_t count, off_t offset, size_t buflen) noexcept;
ssize_t ec_pwrite(int fd, const void* buf, size_t count, off_t offset) noexcept;
ssize_t ec_readv(int fd, const struct iovec* iov, int iovcnt) noexcept;
ssize_t ec_writev(int fd, const struct iovec* iov, int iovcnt) noexcept;
ssize_t ec_preadv(int fd, const struct iovec* iov, int iovcnt, off_t offset) noexcept;
ssize_t ec_pwritev(int fd, const struct iovec* iov, int iovcnt, off_t offset) noexcept;
ssize_t ec_preadv2(int fd, const struct iovec* iov, int iovcnt, off_t offset, int flags) noexcept;
ssize_t ec_pwritev2(int fd, const struct iovec* iov, int iovcnt, off_t offset, int flags) noexcept;
off_t ec_lseek(int fd, off_t offset, int whence) noexcept;
int ec_ftruncate(int fd, off_t length) noexcept;
int ec_truncate(const char* path, off_t length) noexcept;
int ec_fstat(int fd, struct stat* st) noexcept;
int ec_stat(const char* path, struct stat* st) noexcept;
int ec_lstat(const char* path, struct stat* st) noexcept;
int ec_fstatat(int dirfd, const char* path, struct stat* st, int flags) noexcept;
int ec_statx(int dirfd, const char* path, int flags, unsigned int mask, struct statx* stx) noexcept;
int ec_fxstat(int ver, int fd, struct stat* st) noexcept;
int ec_xstat(int ver, const char* path, struct stat* st) noexcept;
int ec_lxstat(int ver, const char* path, struct stat* st) noexcept;
int ec_fxstatat(int ver, int dirfd, const char* path, struct stat* st, int flags) noexcept;
int ec_fallocate(int fd, int mode, off_t offset, off_t len) noexcept;
int ec_posix_fallocate(int fd, off_t offset, off_t len) noexcept;
int ec_posix_fadvise(int fd, off_t offset, off_t len, int advice) noexcept;
int ec_sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags) noexcept;
int ec_dup(int fd) noexcept;
int ec_dup2(int fd, int fd2) noexcept;
int ec_dup3(int fd, int fd2, int flags) noexcept;
int ec_fcntl(int fd, int cmd, ...) noexcept;
void* ec_mmap(void* addr, size_t len, int prot, int flags, int fd, off_t offset) noexcept;
ssize_t ec_copy_file_range(int fd_in, off_t* off_in, int fd_out, off_t* off_out, size_t len,
                           unsigned int flags) noexcept;
ssize_t ec_sendfile(int out_fd, int in_fd, off_t* offset, size_t count) noexcept;
ssize_t ec_splice(int fd_in, off_t* off_in, int fd_out, off_t* off_out, size_t len,
                  unsigned int flags) noexcept;
FILE* ec_fopen(const char* path, const char* mode) noexcept;
int ec_rename(const char* oldpath, const char* newpath) noexcept;
int ec_renameat(int olddirfd, const char* oldpath, int newdirfd, const char* newpath) noexcept;
void* ec_dlopen(const char* file, int mode) noexcept;
int ec_system(const char* command) noexcept;
}
