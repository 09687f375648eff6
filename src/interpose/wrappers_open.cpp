// The descriptor wrappers: the open family, close and its range forms, dup
// and fcntl. Opening a file of an enabled category gathers the facts (is it
// empty, writable, already served, what does its header say), lets
// decide_open() choose, and carries the choice out: header written or
// checked, counters and operator events updated, descriptor entered in the
// fd table with its logical position at 0. Closing and duplicating keep the
// table and the files_open gauge in step with the kernel's descriptors.
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/stat.h>

#include <cstdarg>
#include <mutex>

#include "interpose/open_decision.hpp"
#include "interpose/real_libc.hpp"
#include "interpose/tracked_io.hpp"
#include "interpose/wrappers.hpp"

extern "C" [[noreturn]] void __chk_fail(void);

namespace ephemeral_crypt::interpose {

namespace {

std::uint32_t fd_mode_for(int flags) noexcept {
    const int access = flags & O_ACCMODE;
    std::uint32_t mode = 0;
    if (access != O_WRONLY) {
        mode |= kFdReadable;
    }
    if (access != O_RDONLY) {
        mode |= kFdWritable;
    }
    if (flags & O_APPEND) {
        mode |= kFdAppend;
    }
    return mode;
}

// Read-modify-write needs read access; appends are placed by the layer;
// O_DIRECT cannot be honoured through bounce buffers.
int kernel_flags_for(int flags) noexcept {
    int kernel_flags = flags & ~(O_APPEND | O_DIRECT);
    if ((flags & O_ACCMODE) == O_WRONLY) {
        kernel_flags = (kernel_flags & ~O_ACCMODE) | O_RDWR;
    }
    return kernel_flags;
}

// Writes a fresh header (encrypted, or plaintext-audit) and counts the file.
// Returns 0 or the errno of the failure.
int create_header(FileState* state, FdIo& io, Category category, const char* path,
                  bool plaintext_audit) noexcept {
    const FileCipher cipher = live_category_policy(category).cipher;
    auto outcome = EncryptedFile::create(io, *config().key, category, cipher, plaintext_audit);
    if (!outcome.file) {
        const int error = outcome.error != 0 ? outcome.error : EIO;
        if (outcome.locked_memory_exhausted) {
            count_failure(category, LayerEvent::LockedMemoryExhausted, path, kLockedMemoryDetail);
        } else if (error == EIO) {
            count_failure(category, LayerEvent::IoFailure, path,
                          "could not write the encryption header");
        }
        return error;
    }
    state->set_cipher_file(std::move(outcome.file));
    CategoryCounters& counted = counters().of(category);
    if (plaintext_audit) {
        counted.plaintext_fallbacks.fetch_add(1, std::memory_order_relaxed);
        record_event(LayerEvent::PlaintextFallback, category, path,
                     "encryption failed; file written in plaintext under fail_open_audit");
    } else {
        counted.files_encrypted.fetch_add(1, std::memory_order_relaxed);
    }
    return 0;
}

// Carries out the open decision for `state`. Returns 0 or the errno the open
// fails with.
int carry_out(OpenAction action, const OpenFacts& facts, FileState* state, FdIo& io,
              Category category, const char* path) noexcept {
    switch (action) {
        case OpenAction::Encrypt:
        case OpenAction::PlaintextAudit:
            return create_header(state, io, category, path, action == OpenAction::PlaintextAudit);
        case OpenAction::FailClosed:
            count_failure(category, LayerEvent::IoFailure, path,
                          "could not create an encrypted file (fault injected)");
            return EIO;
        case OpenAction::RejectHeader:
            count_failure(category, LayerEvent::HeaderRejected, path,
                          header_status_name(facts.header_status).data());
            return facts.header_error != 0 ? facts.header_error : EIO;
        case OpenAction::RefuseNoLockedMemory:
            count_failure(category, LayerEvent::LockedMemoryExhausted, path, kLockedMemoryDetail);
            return ENOMEM;
        case OpenAction::Track:
        case OpenAction::PassThrough:
            break;
    }
    return 0;
}

int open_tracked(int dirfd, const char* path, int flags, mode_t mode, Category category) noexcept {
    if (retired()) {
        errno = EIO;  // the process is exiting and its key is gone
        return -1;
    }
    // Whether this call creates the file decides whether a refusal below
    // must remove it again: a refused creation leaves nothing behind.
    struct stat before {};
    const bool may_create = (flags & O_CREAT) != 0;
    const bool existed = may_create && real().fstatat(dirfd, path, &before, 0) == 0;
    const int fd = real().openat(dirfd, path, kernel_flags_for(flags), mode);
    if (fd < 0) {
        return fd;
    }
    struct stat st {};
    if (real().fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        return fd;  // not a regular file: nothing to encrypt
    }

    const std::uint32_t fd_mode = fd_mode_for(flags);
    FdTable& table = FdTable::instance();
    int error = 0;
    OpenAction action = OpenAction::Track;
    {
        std::lock_guard<std::mutex> guard(table.mutex());
        FileState* state = table.find_or_create(st.st_dev, st.st_ino, category, path);
        FdIo io(fd);
        OpenFacts facts;
        facts.empty = st.st_size == 0;
        facts.writable = (fd_mode & kFdWritable) != 0;
        facts.fault_injected = layer_fault(category);
        facts.degradation = live_category_policy(category).degradation;
        facts.cipher_file_cached = state->cipher_file() != nullptr;
        if (facts.empty) {
            // Whatever cipher file this process had for the inode described the
            // old contents.
            state->set_cipher_file(nullptr);
        } else if (state->cipher_file() == nullptr) {
            auto outcome = EncryptedFile::open(io, *config().key);
            facts.header_accepted = outcome.file != nullptr;
            facts.header_status = outcome.status;
            facts.header_error = outcome.error;
            facts.locked_memory_exhausted = outcome.locked_memory_exhausted;
            state->set_cipher_file(std::move(outcome.file));
        }
        action = decide_open(facts);
        error = carry_out(action, facts, state, io, category, path);
        const bool tracked = error == 0 && action != OpenAction::PassThrough;
        if (tracked && !table.attach(fd, state, fd_mode)) {
            error = EMFILE;
        }
        if (!tracked || error != 0) {
            table.forget_if_unused(state);
        }
    }
    if (error != 0) {
        real().close(fd);
        if (may_create && !existed) {
            real().unlinkat(dirfd, path, 0);
        }
        errno = error;
        return -1;
    }
    if (action == OpenAction::PassThrough) {
        return fd;
    }
    FileState* state = table.lookup(fd);
    seek_to_logical(fd, layout_for(state, fd), 0);
    counters().of(category).files_open.fetch_add(1, std::memory_order_relaxed);
    return fd;
}

void release_fd(int fd) noexcept {
    FdTable& table = FdTable::instance();
    FileState* state = table.lookup(fd);
    if (state == nullptr) {
        return;
    }
    const Category category = state->category;
    std::unique_ptr<FileState> last;
    {
        std::lock_guard<std::mutex> guard(table.mutex());
        last = table.detach(fd);
    }
    if (!retired()) {  // retire() gave back the gauge of every descriptor it found
        counters().of(category).files_open.fetch_sub(1, std::memory_order_relaxed);
    }
}

void share_fd(int from, int to) noexcept {
    std::uint32_t mode = 0;
    FdTable& table = FdTable::instance();
    FileState* state = table.lookup(from, &mode);
    if (state == nullptr || to < 0) {
        return;
    }
    std::lock_guard<std::mutex> guard(table.mutex());
    if (table.attach(to, state, mode) && !retired()) {
        counters().of(state->category).files_open.fetch_add(1, std::memory_order_relaxed);
    }
}

mode_t mode_arg(int flags, va_list ap) noexcept {
    if (flags & (O_CREAT | O_TMPFILE)) {
        return static_cast<mode_t>(va_arg(ap, int));
    }
    return 0;
}

}  // namespace

int open_impl(int dirfd, const char* path, int flags, mode_t mode) noexcept {
    if (!(flags & (O_PATH | O_DIRECTORY))) {
        if (const auto category = enabled_category_of(dirfd, path)) {
            return open_tracked(dirfd, path, flags, mode, *category);
        }
    }
    return real().openat(dirfd, path, flags, mode);
}

}  // namespace ephemeral_crypt::interpose

using namespace ephemeral_crypt::interpose;

extern "C" {

int ec_open(const char* path, int flags, ...) noexcept {
    va_list ap;
    va_start(ap, flags);
    const mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return finish(open_impl(AT_FDCWD, path, flags, mode));
}

int ec_openat(int dirfd, const char* path, int flags, ...) noexcept {
    va_list ap;
    va_start(ap, flags);
    const mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return finish(open_impl(dirfd, path, flags, mode));
}

int ec_open_2(const char* path, int flags) noexcept {
    if (flags & (O_CREAT | O_TMPFILE)) {
        __chk_fail();  // what glibc's __open_2 does: a create needs a mode
    }
    return finish(open_impl(AT_FDCWD, path, flags, 0));
}

int ec_openat_2(int dirfd, const char* path, int flags) noexcept {
    if (flags & (O_CREAT | O_TMPFILE)) {
        __chk_fail();
    }
    return finish(open_impl(dirfd, path, flags, 0));
}

int ec_creat(const char* path, mode_t mode) noexcept {
    return finish(open_impl(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode));
}

int ec_close(int fd) noexcept {
    release_fd(fd);
    return real().close(fd);
}

int ec_close_range(unsigned int first, unsigned int last, int flags) noexcept {
    const std::size_t capacity = FdTable::instance().capacity();
    if (!(flags & CLOSE_RANGE_CLOEXEC)) {
        for (std::size_t fd = first; fd <= last && fd < capacity; ++fd) {
            release_fd(static_cast<int>(fd));
        }
    }
    return real().close_range(first, last, flags);
}

void ec_closefrom(int lowfd) noexcept {
    const std::size_t capacity = FdTable::instance().capacity();
    for (std::size_t fd = lowfd < 0 ? 0 : lowfd; fd < capacity; ++fd) {
        release_fd(static_cast<int>(fd));
    }
    real().close_range(static_cast<unsigned int>(lowfd), ~0u, 0);
}

int ec_dup(int fd) noexcept {
    const int result = real().dup(fd);
    if (result >= 0) {
        share_fd(fd, result);
    }
    return result;
}

int ec_dup2(int fd, int fd2) noexcept {
    if (fd == fd2) {
        return real().dup2(fd, fd2);
    }
    const int result = real().dup2(fd, fd2);
    if (result >= 0) {
        release_fd(fd2);
        share_fd(fd, fd2);
    }
    return result;
}

int ec_dup3(int fd, int fd2, int flags) noexcept {
    const int result = real().dup3(fd, fd2, flags);
    if (result >= 0) {
        release_fd(fd2);
        share_fd(fd, fd2);
    }
    return result;
}

int ec_fcntl(int fd, int cmd, ...) noexcept {
    va_list ap;
    va_start(ap, cmd);
    // Every fcntl argument is an int or a pointer, both passed in one
    // integer register on the supported ABIs.
    const unsigned long arg = va_arg(ap, unsigned long);
    va_end(ap);
    return on_descriptor(
        fd, [&] { return real().fcntl(fd, cmd, arg); },
        [&](const TrackedFd& tracked) {
            switch (cmd) {
                case F_DUPFD:
                case F_DUPFD_CLOEXEC: {
                    const int result = real().fcntl(fd, cmd, arg);
                    if (result >= 0) {
                        share_fd(fd, result);
                    }
                    return result;
                }
                case F_GETFL: {
                    int flags = real().fcntl(fd, cmd);
                    if (flags < 0) {
                        return flags;
                    }
                    // Report the access mode and append flag the caller asked for.
                    const std::uint32_t mode = tracked.mode;
                    flags &= ~O_ACCMODE;
                    flags |= (mode & kFdReadable) ? ((mode & kFdWritable) ? O_RDWR : O_RDONLY)
                                                  : O_WRONLY;
                    if (mode & kFdAppend) {
                        flags |= O_APPEND;
                    }
                    return flags;
                }
                case F_SETFL: {
                    const int flags = static_cast<int>(arg);
                    const std::uint32_t new_mode = (flags & O_APPEND) ? (tracked.mode | kFdAppend)
                                                                      : (tracked.mode & ~kFdAppend);
                    const int result = real().fcntl(fd, cmd, flags & ~(O_APPEND | O_DIRECT));
                    if (result == 0) {
                        FdTable::instance().set_mode(fd, new_mode);
                    }
                    return result;
                }
                default:
                    return real().fcntl(fd, cmd, arg);
            }
        });
}

}  // extern "C"
