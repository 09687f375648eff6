// What the wrapper files (wrappers_*.cpp) share, and nothing else includes:
// the one opening of every descriptor wrapper (tracked or straight to libc),
// the per-call operator event, cipher-file I/O on logical offsets, and positions.
//
// The kernel's file position of a tracked descriptor is kept at the physical
// position of its logical one (logical + 64 KiB in format v1; format v2 adds
// the metadata blocks before it), so read/write/lseek and descriptors shared
// across dup and fork all agree. Events for the operator (failures, fallbacks, refusals)
// are recorded during the call and handed to the callback only as the
// wrapper returns (finish()), when no lock is held and no C++ object is alive
// in the frame, because the receiver may ereport.
#pragma once

#include "core/no_postgres.hpp"

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/data_layout.hpp"
#include "core/encrypted_file.hpp"
#include "core/file_header.hpp"
#include "core/positional_io.hpp"
#include "interpose/fd_table.hpp"
#include "interpose/layer.hpp"

namespace ephemeral_crypt::interpose {

inline constexpr off_t kHeader = static_cast<off_t>(kHeaderBytes);

// Positional I/O on a descriptor through libc itself, for the cipher file.
class FdIo final : public PositionalIo {
  public:
    explicit FdIo(int fd) noexcept : fd_(fd) {}
    std::int64_t read_at(void* buf, std::size_t len, std::uint64_t offset) noexcept override;
    std::int64_t write_at(const void* buf, std::size_t len, std::uint64_t offset) noexcept override;
    std::int64_t size() noexcept override;
    int truncate(std::uint64_t length) noexcept override;
    int allocate(std::uint64_t offset, std::uint64_t len) noexcept override;

  private:
    int fd_;
};

// A descriptor the layer serves: its shared file state and access mode.
struct TrackedFd {
    int fd;
    FileState* state;
    std::uint32_t mode;  // FdMode bits
};

// The one opening of every descriptor wrapper: a descriptor the layer does
// not track goes straight to libc (`passthrough()`), one it tracks is served
// by `serve(TrackedFd)`. One lock-free table lookup either way.
template <class Passthrough, class Serve>
inline auto on_descriptor(int fd, Passthrough&& passthrough, Serve&& serve) noexcept {
    std::uint32_t mode = 0;
    FileState* state = FdTable::instance().lookup(fd, &mode);
    if (state == nullptr) {
        return passthrough();
    }
    return serve(TrackedFd{fd, state, mode});
}

// Records the call's operator event (the first one wins) for finish().
void record_event(LayerEvent event, Category category, const char* path, const char* detail,
                  std::int64_t unit = -1) noexcept;
// Counts a failure of `category` and records its event.
void count_failure(Category category, LayerEvent event, const char* path, const char* detail,
                   std::int64_t unit = -1) noexcept;
// Hands the recorded event, if any, to the callback, keeping errno.
void fire_pending_event() noexcept;

// Every wrapper that can record an event returns through this.
template <class T>
T finish(T result) noexcept {
    fire_pending_event();
    return result;
}

// Counts and records what a cipher file's failure (-errno) means, and returns the
// errno the caller gets: EIO is a failure of the file's category, reported
// with `detail` (or `why`'s reason, which the failing call filled in); data
// that failed authentication is an integrity failure, naming `why`'s unit,
// and EIO too.
int account_failure(int negative_errno, FileState* state, const char* detail,
                    const UnitFailure& why = {}) noexcept;

// Turns a cipher file's result (-errno) into libc's convention (account_failure).
template <class T>
T fail_with(int negative_errno, FileState* state, const char* detail,
            const UnitFailure& why = {}) noexcept {
    errno = account_failure(negative_errno, state, detail, why);
    return static_cast<T>(-1);
}

// The enabled category `path` (relative to dirfd) belongs to, if any.
std::optional<Category> enabled_category_of(int dirfd, const char* path) noexcept;

// The file's cipher file; built on first use for a file that was empty (no
// header) when this process opened it and has one now. Null while empty
// (*failure 0), or when the header it has now cannot be served: *failure is
// then -ENOMEM (no locked memory left for its key) or -EIO (the header was
// rejected), and the failure has been counted and reported.
EncryptedFile* cipher_file_for(FileState* state, int fd, int* failure = nullptr) noexcept;

// Where the file's logical bytes live: its cipher file's layout, or, while it has
// no header, the one its category's cipher will give it.
DataLayout layout_for(FileState* state, int fd) noexcept;

enum class Direction { Read, Write };

// Reads or writes through the cipher file at a logical offset, checking the
// descriptor's access mode and counting the bytes. Returns bytes or -1/errno.
ssize_t transfer(const TrackedFd& tracked, Direction direction, void* buf, std::size_t count,
                 off_t logical) noexcept;

// The logical position a read or write without an offset starts at: the
// kernel's position, or the end of the file for a write in append mode.
off_t stream_position(const TrackedFd& tracked, Direction direction) noexcept;
// Moves the kernel's position to `logical`.
void seek_to_logical(int fd, DataLayout layout, off_t logical) noexcept;
// A physical offset libc returned, as a logical one (errors pass through).
inline off_t logical_result(DataLayout layout, off_t physical) noexcept {
    return physical < 0 ? physical : static_cast<off_t>(layout.logical_position(physical));
}

// The open family's common body (wrappers_open.cpp); records, never fires.
int open_impl(int dirfd, const char* path, int flags, mode_t mode) noexcept;

}  // namespace ephemeral_crypt::interpose
