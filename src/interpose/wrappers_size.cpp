// The position and size wrappers: lseek, ftruncate and truncate, fallocate
// and posix_fallocate, and the two range hints (posix_fadvise,
// sync_file_range). For a tracked descriptor every offset and size the
// server passes or gets back is logical; the kernel sees it where the file's
// layout puts it (after the header, and in format v2 after the metadata
// blocks), and size changes go through the cipher file, which re-encrypts the
// units whose length they change.
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

#include "interpose/real_libc.hpp"
#include "interpose/tracked_io.hpp"
#include "interpose/wrappers.hpp"

using namespace ephemeral_crypt;
using namespace ephemeral_crypt::interpose;

namespace {

// The logical size lseek(SEEK_END) measures from, or -1 with errno.
off_t logical_end(const TrackedFd& tracked) noexcept {
    // md.c sizes a relation this way before every extension. A file in the
    // categories has one writer at a time (a backend's temp relation, a
    // participant's spill file, a WAL segment of fixed size), and the
    // cipher file's size is what that writer wrote, so it answers without an
    // fstat. A file without a header yet has no cipher file; the kernel answers.
    if (EncryptedFile* cipher_file = cipher_file_for(tracked.state, tracked.fd)) {
        return static_cast<off_t>(cipher_file->size());
    }
    struct stat st {};
    if (real().fstat(tracked.fd, &st) != 0) {
        return -1;
    }
    return static_cast<off_t>(layout_for(tracked.state, tracked.fd).logical_size(st.st_size));
}

off_t seek_tracked(const TrackedFd& tracked, off_t offset, int whence) noexcept {
    const DataLayout layout = layout_for(tracked.state, tracked.fd);
    off_t target = 0;
    switch (whence) {
        case SEEK_SET:
            target = offset;
            break;
        case SEEK_CUR: {
            const off_t current = logical_result(layout, real().lseek(tracked.fd, 0, SEEK_CUR));
            if (current < 0) {
                return -1;
            }
            target = current + offset;
            break;
        }
        case SEEK_END: {
            const off_t end = logical_end(tracked);
            if (end < 0) {
                return -1;
            }
            target = end + offset;
            break;
        }
        case SEEK_DATA:
        case SEEK_HOLE:
            if (offset < 0) {
                errno = ENXIO;
                return -1;
            }
            // A metadata block holding entries is data to the kernel; what it
            // finds there maps to the start of the group it describes, which
            // is never before `offset`.
            return logical_result(
                layout, real().lseek(tracked.fd,
                                     static_cast<off_t>(layout.physical_position(offset)), whence));
        default:
            errno = EINVAL;
            return -1;
    }
    if (target < 0) {
        errno = EINVAL;
        return -1;
    }
    return logical_result(
        layout,
        real().lseek(tracked.fd, static_cast<off_t>(layout.physical_position(target)), SEEK_SET));
}

// Makes `change` (a truncate or an allocate: change(file, io, why) -> 0 or
// -errno) to the cipher file of `tracked`, in libc's convention; a failure
// is reported with `no_header` or `failed`, or the reason the change gave.
template <class Change>
int change_cipher_file(const TrackedFd& tracked, const char* no_header, const char* failed,
                       Change&& change) noexcept {
    EncryptedFile* cipher_file = cipher_file_for(tracked.state, tracked.fd);
    if (cipher_file == nullptr) {
        return fail_with<int>(-EIO, tracked.state, no_header);
    }
    FdIo io(tracked.fd);
    UnitFailure why;
    const int rc = change(*cipher_file, io, &why);
    return rc < 0 ? fail_with<int>(rc, tracked.state, failed, why) : 0;
}

int truncate_tracked(const TrackedFd& tracked, off_t length) noexcept {
    if (length < 0) {
        errno = EINVAL;
        return -1;
    }
    if (!(tracked.mode & kFdWritable)) {
        errno = EINVAL;  // what the kernel says for a descriptor not open for writing
        return -1;
    }
    return change_cipher_file(tracked, "truncate of a file without a header", "truncate failed",
                              [&](EncryptedFile& file, FdIo& io, UnitFailure* why) noexcept {
                                  return file.truncate(io, static_cast<std::uint64_t>(length), why);
                              });
}

int allocate_tracked(const TrackedFd& tracked, int mode, off_t offset, off_t len) noexcept {
    if (offset < 0 || len <= 0) {
        errno = EINVAL;
        return -1;
    }
    if (mode == FALLOC_FL_KEEP_SIZE) {
        const DataLayout layout = layout_for(tracked.state, tracked.fd);
        const off_t first = static_cast<off_t>(layout.physical_position(offset));
        return real().fallocate(tracked.fd, mode, first,
                                static_cast<off_t>(layout.physical_size(offset + len)) - first);
    }
    if (mode != 0) {
        // Punching or zeroing ranges would have to respect data units.
        errno = EOPNOTSUPP;
        return -1;
    }
    return change_cipher_file(tracked, "allocate on a file without a header", "allocate failed",
                              [&](EncryptedFile& file, FdIo& io, UnitFailure* why) noexcept {
                                  return file.allocate(io, static_cast<std::uint64_t>(offset),
                                                       static_cast<std::uint64_t>(len), why);
                              });
}

// A range hint (offset, length; length 0 means to the end) as the kernel
// needs it.
struct HintRange {
    off_t offset;
    off_t len;
};
HintRange hint_range(int fd, off_t offset, off_t len) noexcept {
    FileState* state = FdTable::instance().lookup(fd);
    if (state == nullptr || offset < 0 || len < 0) {
        return {offset, len};
    }
    const DataLayout layout = layout_for(state, fd);
    const off_t first = static_cast<off_t>(layout.physical_position(offset));
    return {first, len == 0 ? 0 : static_cast<off_t>(layout.physical_size(offset + len)) - first};
}

}  // namespace

extern "C" {

off_t ec_lseek(int fd, off_t offset, int whence) noexcept {
    return on_descriptor(
        fd, [&] { return real().lseek(fd, offset, whence); },
        [&](const TrackedFd& tracked) { return finish(seek_tracked(tracked, offset, whence)); });
}

int ec_ftruncate(int fd, off_t length) noexcept {
    return on_descriptor(
        fd, [&] { return real().ftruncate(fd, length); },
        [&](const TrackedFd& tracked) { return finish(truncate_tracked(tracked, length)); });
}

int ec_truncate(const char* path, off_t length) noexcept {
    if (!enabled_category_of(AT_FDCWD, path)) {
        return real().truncate(path, length);
    }
    const int fd = ec_open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    const int rc = ec_ftruncate(fd, length);
    const int saved = errno;
    ec_close(fd);
    errno = saved;
    return rc;
}

int ec_fallocate(int fd, int mode, off_t offset, off_t len) noexcept {
    return on_descriptor(
        fd, [&] { return real().fallocate(fd, mode, offset, len); },
        [&](const TrackedFd& tracked) {
            return finish(allocate_tracked(tracked, mode, offset, len));
        });
}

int ec_posix_fallocate(int fd, off_t offset, off_t len) noexcept {
    return on_descriptor(
        fd, [&] { return real().posix_fallocate(fd, offset, len); },
        [&](const TrackedFd&) {
            const int saved = errno;
            const int rc = ec_fallocate(fd, 0, offset, len);
            const int error = rc == 0 ? 0 : errno;
            errno = saved;  // posix_fallocate reports through its result, not errno
            return error;
        });
}

int ec_posix_fadvise(int fd, off_t offset, off_t len, int advice) noexcept {
    const HintRange range = hint_range(fd, offset, len);
    return real().posix_fadvise(fd, range.offset, range.len, advice);
}

int ec_sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags) noexcept {
    const HintRange range = hint_range(fd, offset, nbytes);
    return real().sync_file_range(fd, range.offset, range.len, flags);
}

}  // extern "C"
