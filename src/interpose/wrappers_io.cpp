// The data wrappers: read and write (at the file position), pread and pwrite
// (at an offset), their fortified _chk forms, and the vectored calls. A
// tracked descriptor is served by its cipher file on logical offsets; the calls
// that use the file position move the kernel's position to match, so every
// descriptor sharing it (dup, fork) sees the same logical position.
#include <sys/uio.h>

#include <cerrno>

#include "interpose/real_libc.hpp"
#include "interpose/tracked_io.hpp"
#include "interpose/wrappers.hpp"

extern "C" [[noreturn]] void __chk_fail(void);

namespace ephemeral_crypt::interpose {

namespace {

// read/write: at the file position (the end, for appends), which moves.
ssize_t stream_transfer(const TrackedFd& tracked, Direction direction, void* buf,
                        std::size_t count) noexcept {
    const off_t logical = stream_position(tracked, direction);
    if (logical < 0) {
        return -1;
    }
    const ssize_t n = transfer(tracked, direction, buf, count, logical);
    if (n > 0) {
        seek_to_logical(tracked.fd, layout_for(tracked.state, tracked.fd), logical + n);
    }
    return n;
}

// pread/pwrite: at an offset; the file position stays.
ssize_t positional_transfer(const TrackedFd& tracked, Direction direction, void* buf,
                            std::size_t count, off_t offset) noexcept {
    if (offset < 0) {
        errno = EINVAL;
        return -1;
    }
    return transfer(tracked, direction, buf, count, offset);
}

// The vectored calls: buffer after buffer from one start, stopping at the
// first short transfer. With `positional` false the start is the file
// position, which moves by what was transferred.
ssize_t vector_transfer(const TrackedFd& tracked, Direction direction, const struct iovec* iov,
                        int iovcnt, off_t offset, bool positional) noexcept {
    if (iovcnt < 0) {
        errno = EINVAL;
        return -1;
    }
    const off_t start = positional ? offset : stream_position(tracked, direction);
    if (start < 0) {
        return -1;
    }
    ssize_t total = 0;
    for (int i = 0; i < iovcnt; ++i) {
        if (iov[i].iov_len == 0) {
            continue;
        }
        const ssize_t n =
            transfer(tracked, direction, iov[i].iov_base, iov[i].iov_len, start + total);
        if (n < 0) {
            if (total > 0) {
                break;
            }
            return -1;
        }
        total += n;
        if (static_cast<size_t>(n) < iov[i].iov_len) {
            break;
        }
    }
    if (!positional && total > 0) {
        seek_to_logical(tracked.fd, layout_for(tracked.state, tracked.fd), start + total);
    }
    return total;
}

}  // namespace

}  // namespace ephemeral_crypt::interpose

using namespace ephemeral_crypt::interpose;

extern "C" {

ssize_t ec_read(int fd, void* buf, size_t count) noexcept {
    return on_descriptor(
        fd, [&] { return real().read(fd, buf, count); },
        [&](const TrackedFd& tracked) {
            return finish(stream_transfer(tracked, Direction::Read, buf, count));
        });
}

ssize_t ec_read_chk(int fd, void* buf, size_t count, size_t buflen) noexcept {
    if (count > buflen) {
        __chk_fail();
    }
    return ec_read(fd, buf, count);
}

ssize_t ec_write(int fd, const void* buf, size_t count) noexcept {
    return on_descriptor(
        fd, [&] { return real().write(fd, buf, count); },
        [&](const TrackedFd& tracked) {
            return finish(
                stream_transfer(tracked, Direction::Write, const_cast<void*>(buf), count));
        });
}

ssize_t ec_pread(int fd, void* buf, size_t count, off_t offset) noexcept {
    return on_descriptor(
        fd, [&] { return real().pread(fd, buf, count, offset); },
        [&](const TrackedFd& tracked) {
            return finish(positional_transfer(tracked, Direction::Read, buf, count, offset));
        });
}

ssize_t ec_pread_chk(int fd, void* buf, size_t count, off_t offset, size_t buflen) noexcept {
    if (count > buflen) {
        __chk_fail();
    }
    return ec_pread(fd, buf, count, offset);
}

ssize_t ec_pwrite(int fd, const void* buf, size_t count, off_t offset) noexcept {
    return on_descriptor(
        fd, [&] { return real().pwrite(fd, buf, count, offset); },
        [&](const TrackedFd& tracked) {
            return finish(positional_transfer(tracked, Direction::Write, const_cast<void*>(buf),
                                              count, offset));
        });
}

ssize_t ec_readv(int fd, const struct iovec* iov, int iovcnt) noexcept {
    return on_descriptor(
        fd, [&] { return real().readv(fd, iov, iovcnt); },
        [&](const TrackedFd& tracked) {
            return finish(vector_transfer(tracked, Direction::Read, iov, iovcnt, 0, false));
        });
}

ssize_t ec_writev(int fd, const struct iovec* iov, int iovcnt) noexcept {
    return on_descriptor(
        fd, [&] { return real().writev(fd, iov, iovcnt); },
        [&](const TrackedFd& tracked) {
            return finish(vector_transfer(tracked, Direction::Write, iov, iovcnt, 0, false));
        });
}

ssize_t ec_preadv(int fd, const struct iovec* iov, int iovcnt, off_t offset) noexcept {
    return on_descriptor(
        fd, [&] { return real().preadv(fd, iov, iovcnt, offset); },
        [&](const TrackedFd& tracked) {
            return finish(vector_transfer(tracked, Direction::Read, iov, iovcnt, offset, true));
        });
}

ssize_t ec_pwritev(int fd, const struct iovec* iov, int iovcnt, off_t offset) noexcept {
    return on_descriptor(
        fd, [&] { return real().pwritev(fd, iov, iovcnt, offset); },
        [&](const TrackedFd& tracked) {
            return finish(vector_transfer(tracked, Direction::Write, iov, iovcnt, offset, true));
        });
}

// Flags are hints (RWF_HIPRI, RWF_NOWAIT...); offset -1 means the file position.
ssize_t ec_preadv2(int fd, const struct iovec* iov, int iovcnt, off_t offset, int flags) noexcept {
    return on_descriptor(
        fd, [&] { return real().preadv2(fd, iov, iovcnt, offset, flags); },
        [&](const TrackedFd& tracked) {
            return finish(
                vector_transfer(tracked, Direction::Read, iov, iovcnt, offset, offset != -1));
        });
}

ssize_t ec_pwritev2(int fd, const struct iovec* iov, int iovcnt, off_t offset, int flags) noexcept {
    return on_descriptor(
        fd, [&] { return real().pwritev2(fd, iov, iovcnt, offset, flags); },
        [&](const TrackedFd& tracked) -> ssize_t {
            if (flags & RWF_APPEND) {
                errno = EOPNOTSUPP;
                return -1;
            }
            return finish(
                vector_transfer(tracked, Direction::Write, iov, iovcnt, offset, offset != -1));
        });
}

}  // extern "C"
