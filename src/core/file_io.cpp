// Whole small-file reads, the directory fsync that completes a durable
// rename, and libc's calls for replace_file_durably (see file_io.hpp).
#include "core/file_io.hpp"

#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <system_error>

namespace ephemeral_crypt {

ReadOutcome read_small_file(const std::string& path, std::size_t max_bytes, bool regular_only,
                            std::string* out) noexcept {
    ReadOutcome outcome;
    const int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | (regular_only ? O_NONBLOCK : 0);
    const int fd = ::open(path.c_str(), flags);
    if (fd < 0) {
        return {ReadStep::Open, errno};
    }
    struct stat st {};
    if (regular_only && ::fstat(fd, &st) != 0) {
        outcome = {ReadStep::Stat, errno};
    } else if (regular_only && !S_ISREG(st.st_mode)) {
        outcome = {ReadStep::NotRegular, 0};
    }
    out->clear();
    char buffer[8192];
    while (outcome.ok()) {
        const ssize_t n = ::read(fd, buffer, sizeof(buffer));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            outcome = {ReadStep::Read, errno};
        } else if (n == 0) {
            break;
        } else if (out->size() + static_cast<std::size_t>(n) > max_bytes) {
            outcome = {ReadStep::TooLarge, 0};
        } else {
            try {
                out->append(buffer, static_cast<std::size_t>(n));
            } catch (const std::bad_alloc&) {
                outcome = {ReadStep::Read, ENOMEM};
            }
        }
    }
    ::close(fd);
    return outcome;
}

std::string errno_text(int error) {
    return std::error_code(error, std::generic_category()).message();
}

const FileCalls& libc_file_calls() noexcept {
    static const FileCalls calls = [] {
        FileCalls libc;
        libc.open = ::open;
        libc.openat = ::openat;
        libc.close = ::close;
        libc.write = ::write;
        libc.pread = ::pread;
        libc.pwrite = ::pwrite;
        libc.ftruncate = ::ftruncate;
        libc.stat = ::stat;
        libc.fsync = ::fsync;
        libc.renameat = ::renameat;
        libc.unlinkat = ::unlinkat;
        return libc;
    }();
    return calls;
}

int sync_parent_directory(const FileCalls& calls, int dirfd, const char* path) noexcept {
    char directory[PATH_MAX];
    const char* slash = std::strrchr(path, '/');
    if (slash == nullptr) {
        std::strcpy(directory, ".");
    } else {
        const std::size_t len = slash == path ? 1 : static_cast<std::size_t>(slash - path);
        if (len >= sizeof(directory)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        std::memcpy(directory, path, len);
        directory[len] = '\0';
    }
    return sync_directory(calls, dirfd, directory);
}

int sync_directory(const FileCalls& calls, int dirfd, const char* directory) noexcept {
    const int fd = calls.openat(dirfd, directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    const int rc = calls.fsync(fd);
    const int error = errno;
    calls.close(fd);
    errno = error;
    return rc == 0 ? 0 : -1;
}

}  // namespace ephemeral_crypt
