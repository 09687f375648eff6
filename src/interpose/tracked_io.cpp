// The shared machinery of the wrapper files (see tracked_io.hpp): positional
// I/O for the cipher files, the pending operator event, path classification of
// *at() calls, lazy cipher files, and their reads and writes on logical offsets.
#include "interpose/tracked_io.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "interpose/real_libc.hpp"

namespace ephemeral_crypt::interpose {

namespace {

// Repeats `step(done)`, a pread or pwrite of what is left at offset + done,
// until `len` bytes have moved, retrying EINTR. A read stops at the end of
// the file; a write that moves nothing is out of space.
template <class Step>
std::int64_t move_all(std::size_t len, Direction direction, Step&& step) noexcept {
    std::size_t done = 0;
    while (done < len) {
        const ssize_t n = step(done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            // The cipher file's integrity failure must mean what it says, never
            // a kernel error that happens to share its number.
            return errno == -kIntegrityFailure ? -EIO : -errno;
        }
        if (n == 0) {
            if (direction == Direction::Write) {
                return -ENOSPC;
            }
            break;
        }
        done += static_cast<std::size_t>(n);
    }
    return static_cast<std::int64_t>(done);
}

}  // namespace

std::int64_t FdIo::read_at(void* buf, std::size_t len, std::uint64_t offset) noexcept {
    return move_all(len, Direction::Read, [&](std::size_t done) {
        return real().pread(fd_, static_cast<char*>(buf) + done, len - done,
                            static_cast<off_t>(offset + done));
    });
}

std::int64_t FdIo::write_at(const void* buf, std::size_t len, std::uint64_t offset) noexcept {
    return move_all(len, Direction::Write, [&](std::size_t done) {
        return real().pwrite(fd_, static_cast<const char*>(buf) + done, len - done,
                             static_cast<off_t>(offset + done));
    });
}

std::int64_t FdIo::size() noexcept {
    struct stat st {};
    if (real().fstat(fd_, &st) != 0) {
        return -errno;
    }
    return st.st_size;
}

int FdIo::truncate(std::uint64_t length) noexcept {
    return real().ftruncate(fd_, static_cast<off_t>(length)) == 0 ? 0 : -errno;
}

int FdIo::allocate(std::uint64_t offset, std::uint64_t len) noexcept {
    const int rc = real().posix_fallocate(fd_, static_cast<off_t>(offset), static_cast<off_t>(len));
    return rc == 0 ? 0 : -rc;
}

namespace {

// One pending operator event per thread, fired as the wrapper returns.
struct PendingEvent {
    bool set = false;
    LayerEvent event = LayerEvent::IoFailure;
    Category category = Category::Spill;
    const char* detail = "";
    std::int64_t unit = -1;
    char path[PATH_MAX] = {};
};
thread_local PendingEvent t_pending;

// Resolves `path` relative to `dirfd` into `out` when it is not absolute and
// dirfd is not the working directory; PostgreSQL itself never does this.
const char* absolute_for(int dirfd, const char* path, char* out, std::size_t out_len) noexcept {
    if (path[0] == '/' || dirfd == AT_FDCWD) {
        return path;
    }
    char link[64];
    std::snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
    const ssize_t n = real().readlink(link, out, out_len - 1);
    if (n <= 0 || static_cast<std::size_t>(n) + std::strlen(path) + 2 > out_len) {
        return path;
    }
    out[n] = '/';
    std::strcpy(out + n + 1, path);
    return out;
}

}  // namespace

void record_event(LayerEvent event, Category category, const char* path, const char* detail,
                  std::int64_t unit) noexcept {
    if (t_pending.set) {
        return;  // the first event of a call is the one worth reporting
    }
    t_pending.set = true;
    t_pending.event = event;
    t_pending.category = category;
    t_pending.detail = detail;
    t_pending.unit = unit;
    std::strncpy(t_pending.path, path != nullptr ? path : "", sizeof(t_pending.path) - 1);
    t_pending.path[sizeof(t_pending.path) - 1] = '\0';
}

void count_failure(Category category, LayerEvent event, const char* path, const char* detail,
                   std::int64_t unit) noexcept {
    counters().of(category).failures.fetch_add(1, std::memory_order_relaxed);
    record_event(event, category, path, detail, unit);
}

int account_failure(int negative_errno, FileState* state, const char* detail,
                    const UnitFailure& why) noexcept {
    if (negative_errno == kIntegrityFailure) {
        // Never a plaintext fallback, whatever the category's degradation:
        // the data exists and is not what this instance wrote.
        counters().of(state->category).integrity_failures.fetch_add(1, std::memory_order_relaxed);
        record_event(LayerEvent::IntegrityFailure, state->category, state->path.c_str(),
                     why.reason != nullptr ? why.reason : "The data failed authentication.",
                     why.unit);
        return EIO;
    }
    if (negative_errno == -EIO) {
        count_failure(state->category, LayerEvent::IoFailure, state->path.c_str(),
                      why.reason != nullptr ? why.reason : detail, why.unit);
    }
    return -negative_errno;
}

void fire_pending_event() noexcept {
    if (!t_pending.set) {
        return;
    }
    t_pending.set = false;
    const EventCallback callback = config().on_event;
    if (callback != nullptr) {
        const int saved_errno = errno;
        callback(t_pending.event, t_pending.category, t_pending.path, t_pending.unit,
                 t_pending.detail);
        errno = saved_errno;
    }
}

std::optional<Category> enabled_category_of(int dirfd, const char* path) noexcept {
    if (path == nullptr || !layer_active()) {
        return std::nullopt;
    }
    char buffer[PATH_MAX];
    const char* full = absolute_for(dirfd, path, buffer, sizeof(buffer));
    const auto category = classify_path(full, config().roots);
    if (!category || !category_enabled(*category)) {
        return std::nullopt;
    }
    return category;
}

EncryptedFile* cipher_file_for(FileState* state, int fd, int* failure) noexcept {
    if (failure != nullptr) {
        *failure = 0;
    }
    if (EncryptedFile* cipher_file = state->cipher_file()) {
        return cipher_file;
    }
    if (retired()) {
        if (failure != nullptr) {
            *failure = -EIO;  // the process is exiting and its key is gone
        }
        return nullptr;
    }
    std::lock_guard<std::mutex> guard(FdTable::instance().mutex());
    if (state->cipher_file() == nullptr) {
        FdIo io(fd);
        if (io.size() >= kHeader) {
            auto outcome = EncryptedFile::open(io, *config().key);
            state->set_cipher_file(std::move(outcome.file));
            if (state->cipher_file() == nullptr) {
                // A header is there and cannot be served: fail closed, as
                // the open would have.
                if (outcome.locked_memory_exhausted) {
                    count_failure(state->category, LayerEvent::LockedMemoryExhausted,
                                  state->path.c_str(), kLockedMemoryDetail);
                } else {
                    count_failure(state->category, LayerEvent::HeaderRejected, state->path.c_str(),
                                  header_status_name(outcome.status).data());
                }
                if (failure != nullptr) {
                    *failure = outcome.locked_memory_exhausted ? -ENOMEM : -EIO;
                }
            }
        }
    }
    return state->cipher_file();
}

DataLayout layout_for(FileState* state, int fd) noexcept {
    if (EncryptedFile* cipher_file = cipher_file_for(state, fd)) {
        return cipher_file->layout();
    }
    const FileCipher cipher = live_category_policy(state->category).cipher;
    return DataLayout::for_version(format_version_for(cipher));
}

ssize_t transfer(const TrackedFd& tracked, Direction direction, void* buf, std::size_t count,
                 off_t logical) noexcept {
    const bool writing = direction == Direction::Write;
    if (!(tracked.mode & (writing ? kFdWritable : kFdReadable))) {
        errno = EBADF;
        return -1;
    }
    int failure = 0;
    EncryptedFile* cipher_file = cipher_file_for(tracked.state, tracked.fd, &failure);
    if (cipher_file == nullptr && failure != 0) {
        errno = -failure;
        return -1;
    }
    if (cipher_file == nullptr) {
        // The file is still empty and has no header: a read is at its end, a
        // write has no header to encrypt under.
        if (!writing) {
            return 0;
        }
        return fail_with<ssize_t>(-EIO, tracked.state,
                                  "write to a file without an encryption header");
    }
    FdIo io(tracked.fd);
    const auto offset = static_cast<std::uint64_t>(logical);
    UnitFailure why;
    const std::int64_t n = writing ? cipher_file->pwrite(io, buf, count, offset, &why)
                                   : cipher_file->pread(io, buf, count, offset, &why);
    if (n < 0) {
        return fail_with<ssize_t>(static_cast<int>(n), tracked.state,
                                  writing ? "encrypting write failed" : "decrypting read failed",
                                  why);
    }
    if (!cipher_file->plaintext_audit()) {
        CategoryCounters& counted = counters().of(tracked.state->category);
        (writing ? counted.bytes_encrypted : counted.bytes_decrypted)
            .fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    }
    return static_cast<ssize_t>(n);
}

off_t stream_position(const TrackedFd& tracked, Direction direction) noexcept {
    const off_t physical = real().lseek(tracked.fd, 0, SEEK_CUR);
    if (physical < 0) {
        return physical;
    }
    if (direction == Direction::Write && (tracked.mode & kFdAppend)) {
        // Another descriptor or process may have appended since.
        if (EncryptedFile* cipher_file = cipher_file_for(tracked.state, tracked.fd)) {
            FdIo io(tracked.fd);
            UnitFailure why;
            const int rc = cipher_file->refresh_size(io, &why);
            if (rc < 0) {
                errno =
                    account_failure(rc, tracked.state, "could not find the end of the file", why);
                return -1;
            }
            return static_cast<off_t>(cipher_file->size());
        }
    }
    return logical_result(layout_for(tracked.state, tracked.fd), physical);
}

void seek_to_logical(int fd, DataLayout layout, off_t logical) noexcept {
    real().lseek(fd, static_cast<off_t>(layout.physical_position(logical)), SEEK_SET);
}

}  // namespace ephemeral_crypt::interpose
