// The stat family: fstat, stat, lstat, fstatat, statx, and glibc's versioned
// __*xstat entry points. md.c and BufFile compute sizes from them, so the
// size of a file of an enabled category is reported logical: for an open
// descriptor through its layout, for a path by reading the header's magic
// and format version, which decides the layout.
#include <fcntl.h>
#include <sys/stat.h>

#include <cstring>

#include "interpose/real_libc.hpp"
#include "interpose/tracked_io.hpp"
#include "interpose/wrappers.hpp"

using namespace ephemeral_crypt;
using namespace ephemeral_crypt::interpose;

namespace {

// Corrects the physical size of a file named by path to logical when it
// carries our header. Only called for paths in an enabled category.
void correct_stat_size(const char* path, int dirfd, struct stat* st) noexcept {
    if (!S_ISREG(st->st_mode) || st->st_size < kHeader) {
        return;
    }
    const int fd = real().openat(dirfd, path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) {
        return;
    }
    std::uint8_t start[header_layout::kVersion + 2];
    const ssize_t n = real().pread(fd, start, sizeof(start), 0);
    real().close(fd);
    if (n == static_cast<ssize_t>(sizeof(start)) &&
        std::memcmp(start, kHeaderMagic, sizeof(kHeaderMagic)) == 0) {
        const auto version = static_cast<std::uint16_t>(start[header_layout::kVersion] |
                                                        (start[header_layout::kVersion + 1] << 8));
        st->st_size =
            static_cast<off_t>(DataLayout::for_version(version).logical_size(st->st_size));
    }
}

int stat_impl(int dirfd, const char* path, struct stat* st, int flags) noexcept {
    const int rc = real().fstatat(dirfd, path, st, flags);
    if (rc == 0 && path != nullptr && path[0] != '\0' && enabled_category_of(dirfd, path)) {
        correct_stat_size(path, dirfd, st);
    }
    return rc;
}

bool names_the_descriptor(const char* path, int flags) noexcept {
    return (flags & AT_EMPTY_PATH) && path != nullptr && path[0] == '\0';
}

}  // namespace

extern "C" {

int ec_fstat(int fd, struct stat* st) noexcept {
    const int rc = real().fstat(fd, st);
    if (rc == 0) {
        if (FileState* state = FdTable::instance().lookup(fd)) {
            st->st_size = static_cast<off_t>(layout_for(state, fd).logical_size(st->st_size));
        }
    }
    return rc;
}

int ec_stat(const char* path, struct stat* st) noexcept {
    return stat_impl(AT_FDCWD, path, st, 0);
}

int ec_lstat(const char* path, struct stat* st) noexcept {
    return stat_impl(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

int ec_fstatat(int dirfd, const char* path, struct stat* st, int flags) noexcept {
    if (names_the_descriptor(path, flags)) {
        return ec_fstat(dirfd, st);
    }
    return stat_impl(dirfd, path, st, flags);
}

int ec_statx(int dirfd, const char* path, int flags, unsigned int mask,
             struct statx* stx) noexcept {
    const int rc = real().statx(dirfd, path, flags, mask, stx);
    if (rc != 0 || !(stx->stx_mask & STATX_SIZE)) {
        return rc;
    }
    if (names_the_descriptor(path, flags)) {
        if (FileState* state = FdTable::instance().lookup(dirfd)) {
            stx->stx_size = static_cast<std::uint64_t>(
                layout_for(state, dirfd).logical_size(static_cast<std::int64_t>(stx->stx_size)));
        }
        return rc;
    }
    if (enabled_category_of(dirfd, path)) {
        struct stat st {};
        st.st_mode = stx->stx_mode;
        st.st_size = static_cast<off_t>(stx->stx_size);
        correct_stat_size(path, dirfd, &st);
        stx->stx_size = static_cast<std::uint64_t>(st.st_size);
    }
    return rc;
}

// The versioned stat entry points of glibc before 2.33; objects built
// against older headers still import them.
int ec_fxstat(int, int fd, struct stat* st) noexcept {
    return ec_fstat(fd, st);
}
int ec_xstat(int, const char* path, struct stat* st) noexcept {
    return ec_stat(path, st);
}
int ec_lxstat(int, const char* path, struct stat* st) noexcept {
    return ec_lstat(path, st);
}
int ec_fxstatat(int, int dirfd, const char* path, struct stat* st, int flags) noexcept {
    return ec_fstatat(dirfd, path, st, flags);
}

}  // extern "C"
