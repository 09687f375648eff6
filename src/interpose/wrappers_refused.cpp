// The calls that would bypass the layer on an encrypted file, and rename.
//
// mmap, copy_file_range, sendfile and splice move bytes without read or
// write, and stdio's fopen opens through libc's internal open, which no GOT
// patch reaches: on an encrypted file each is refused with the errno its
// callers handle best, counted as a failure and reported. Nothing is ever
// silently let through in plaintext.
//
// rename is served because a file may leave the encrypted categories by it:
// PostgreSQL writes timeline history files as pg_wal/xlogtemp.<pid> and
// renames them into place. Such a file must arrive in plaintext, or every
// reader of the destination (which the layer rightly passes through) would
// see the header.
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/file_io.hpp"
#include "interpose/real_libc.hpp"
#include "interpose/tracked_io.hpp"
#include "interpose/wrappers.hpp"

using namespace ephemeral_crypt;
using namespace ephemeral_crypt::interpose;

namespace {

bool refuse_if_tracked(int fd, const char* what) noexcept {
    FileState* state = FdTable::instance().lookup(fd);
    if (state == nullptr) {
        return false;
    }
    count_failure(state->category, LayerEvent::BypassRefused, state->path.c_str(), what);
    return true;
}

// Decrypts `oldpath` into a plaintext `newpath`, durably, and removes the
// source. Returns -1 with errno on failure; the source is kept then.
int rename_out_of_category(int olddirfd, const char* oldpath, int newdirfd,
                           const char* newpath) noexcept {
    const int in = open_impl(olddirfd, oldpath, O_RDONLY | O_CLOEXEC, 0);
    if (in < 0) {
        return -1;
    }
    if (FdTable::instance().lookup(in) == nullptr) {
        real().close(in);  // plaintext already: an ordinary rename will do
        return real().renameat(olddirfd, oldpath, newdirfd, newpath);
    }
    struct stat st {};
    real().fstat(in, &st);
    char temp[PATH_MAX];
    std::snprintf(temp, sizeof(temp), "%s.ephemeral_crypt.%d", newpath, static_cast<int>(getpid()));
    char buffer[8192];
    const int rc = replace_file_durably(
        plaintext_file_calls(), newdirfd, temp, newpath, st.st_mode & 07777, [&](int out) {
            for (off_t offset = 0;;) {
                const ssize_t n = ec_pread(in, buffer, sizeof(buffer), offset);
                if (n <= 0) {
                    return n == 0;
                }
                const ssize_t written = real().write(out, buffer, static_cast<size_t>(n));
                if (written != n) {
                    if (written >= 0) {
                        errno = EIO;
                    }
                    return false;
                }
                offset += n;
            }
        });
    const int error = errno;
    std::memset(buffer, 0, sizeof(buffer));
    ec_close(in);
    if (rc != 0) {
        errno = error;
        return -1;
    }
    real().unlinkat(olddirfd, oldpath, 0);
    return 0;
}

}  // namespace

extern "C" {

void* ec_mmap(void* addr, size_t len, int prot, int flags, int fd, off_t offset) noexcept {
    if (!(flags & MAP_ANONYMOUS) && refuse_if_tracked(fd, "mmap of an encrypted file")) {
        fire_pending_event();
        errno = ENODEV;
        return MAP_FAILED;
    }
    return real().mmap(addr, len, prot, flags, fd, offset);
}

ssize_t ec_copy_file_range(int fd_in, off_t* off_in, int fd_out, off_t* off_out, size_t len,
                           unsigned int flags) noexcept {
    if (refuse_if_tracked(fd_in, "copy_file_range from an encrypted file") ||
        refuse_if_tracked(fd_out, "copy_file_range to an encrypted file")) {
        fire_pending_event();
        errno = EXDEV;  // callers fall back to read and write, which the layer serves
        return -1;
    }
    return real().copy_file_range(fd_in, off_in, fd_out, off_out, len, flags);
}

ssize_t ec_sendfile(int out_fd, int in_fd, off_t* offset, size_t count) noexcept {
    if (refuse_if_tracked(in_fd, "sendfile from an encrypted file") ||
        refuse_if_tracked(out_fd, "sendfile to an encrypted file")) {
        fire_pending_event();
        errno = EINVAL;
        return -1;
    }
    return real().sendfile(out_fd, in_fd, offset, count);
}

ssize_t ec_splice(int fd_in, off_t* off_in, int fd_out, off_t* off_out, size_t len,
                  unsigned int flags) noexcept {
    if (refuse_if_tracked(fd_in, "splice from an encrypted file") ||
        refuse_if_tracked(fd_out, "splice to an encrypted file")) {
        fire_pending_event();
        errno = EINVAL;
        return -1;
    }
    return real().splice(fd_in, off_in, fd_out, off_out, len, flags);
}

FILE* ec_fopen(const char* path, const char* mode) noexcept {
    if (const auto category = enabled_category_of(AT_FDCWD, path)) {
        count_failure(*category, LayerEvent::BypassRefused, path,
                      "stdio access to an encrypted file");
        fire_pending_event();
        errno = EACCES;
        return nullptr;
    }
    return static_cast<FILE*>(real().fopen(path, mode));
}

int ec_renameat(int olddirfd, const char* oldpath, int newdirfd, const char* newpath) noexcept {
    if (enabled_category_of(olddirfd, oldpath) && !enabled_category_of(newdirfd, newpath)) {
        return finish(rename_out_of_category(olddirfd, oldpath, newdirfd, newpath));
    }
    return real().renameat(olddirfd, oldpath, newdirfd, newpath);
}

int ec_rename(const char* oldpath, const char* newpath) noexcept {
    return ec_renameat(AT_FDCWD, oldpath, AT_FDCWD, newpath);
}

}  // extern "C"
