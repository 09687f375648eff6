// The small-file I/O every room shares: reading a whole small file under a
// size bound (policy files, keys), and replacing a file
// durably.
//
// A durable replacement writes the new contents to a temporary file beside
// the target, fsyncs it, renames it over the target and then fsyncs the
// directory, so a crash leaves the old file or the new one, never a torn one,
// and the rename itself survives. Every fsync and close is checked. Callers
// write through different calls: the engine encrypts by writing through the
// libc layer's wrappers, the layer writes plaintext through libc itself, the
// policy tool uses plain libc. So the calls are a parameter, and this header
// depends on nothing but libc.
#pragma once

#include "core/no_postgres.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <string>

namespace ephemeral_crypt {

// Where read_small_file stopped; Done when it read the whole file.
enum class ReadStep { Done, Open, Stat, NotRegular, Read, TooLarge };

struct ReadOutcome {
    ReadStep failed_at = ReadStep::Done;
    int error = 0;  // errno of the failing call (Open, Stat, Read)
    bool ok() const noexcept { return failed_at == ReadStep::Done; }
};

// Reads all of `path` into `out`, refusing files longer than `max_bytes`
// (TooLarge). With `regular_only`, anything but a regular file is refused
// (NotRegular) and the open never blocks on a FIFO or device.
ReadOutcome read_small_file(const std::string& path, std::size_t max_bytes, bool regular_only,
                            std::string* out) noexcept;

// The message for an errno value ("No such file or directory"), for the
// errors read_small_file and the durable replacement report.
std::string errno_text(int error);

// The file calls a caller makes through one route: libc itself, or the libc
// layer's wrappers (interpose/layer.hpp), which encrypt what they write to a
// file of an enabled category. The durable replacement below uses openat,
// close, fsync, renameat and unlinkat; the engine reads and writes files
// through the rest, so that it names a route, never a libc function or a
// wrapper. A member is null only where its provider says so.
struct FileCalls {
    int (*open)(const char* path, int flags, ...) = nullptr;
    int (*openat)(int dirfd, const char* path, int flags, ...) = nullptr;
    int (*close)(int fd) = nullptr;
    ssize_t (*write)(int fd, const void* buf, size_t count) = nullptr;
    ssize_t (*pread)(int fd, void* buf, size_t count, off_t offset) = nullptr;
    ssize_t (*pwrite)(int fd, const void* buf, size_t count, off_t offset) = nullptr;
    int (*ftruncate)(int fd, off_t length) = nullptr;
    int (*stat)(const char* path, struct stat* st) = nullptr;
    int (*fsync)(int fd) = nullptr;
    int (*renameat)(int olddirfd, const char* oldpath, int newdirfd, const char* newpath) = nullptr;
    int (*unlinkat)(int dirfd, const char* path, int flags) = nullptr;
};

// libc's own functions, for callers outside the server process and for this
// library's own plaintext files (it is never patched).
const FileCalls& libc_file_calls() noexcept;

// fsyncs the directory `directory` (relative to dirfd). 0, or -1 with errno.
int sync_directory(const FileCalls& calls, int dirfd, const char* directory) noexcept;
// fsyncs the directory that holds `path` (relative to dirfd; "." when the
// path has no slash). 0, or -1 with errno.
int sync_parent_directory(const FileCalls& calls, int dirfd, const char* path) noexcept;

// Creates (or truncates) `temp` with `mode`, lets `fill(fd)` write it (fill
// returns false with errno set when it fails), fsyncs and closes it, renames
// it over `target` (both relative to dirfd) and fsyncs their directory.
// Returns 0, or -1 with the errno of the call that failed; the temporary file
// is removed then, and the target is untouched unless only the final
// directory fsync failed.
template <class Fill>
int replace_file_durably(const FileCalls& calls, int dirfd, const char* temp, const char* target,
                         mode_t mode, Fill&& fill) noexcept {
    const int fd = calls.openat(dirfd, temp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        return -1;
    }
    bool ok = fill(fd) && calls.fsync(fd) == 0;
    int error = ok ? 0 : errno;
    if (calls.close(fd) != 0 && ok) {
        ok = false;
        error = errno;
    }
    if (ok && calls.renameat(dirfd, temp, dirfd, target) != 0) {
        ok = false;
        error = errno;
    }
    if (!ok) {
        calls.unlinkat(dirfd, temp, 0);
        errno = error;
        return -1;
    }
    return sync_parent_directory(calls, dirfd, target);
}

}  // namespace ephemeral_crypt
