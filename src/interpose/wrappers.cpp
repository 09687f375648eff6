// The libc surface of the layer. Each wrapper looks the descriptor (or path)
// up once; anything outside the encrypted categories goes straight to libc.
// Tracked files are served by the engine on logical offsets: the kernel's
// file position is kept at physical = logical + 4096, so read/write/lseek
// and descriptors shared across dup and fork all agree.
//
// Events for the operator (failures, fallbacks, refusals) are recorded
// during the call and handed to the callback only as the wrapper returns,
// when no lock is held and no C++ object is alive in the frame, because the
// receiver may ereport.
#include "interpose/wrappers.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <optional>

#include "core/file_header.hpp"
#include "interpose/fd_table.hpp"
#include "interpose/layer.hpp"
#include "interpose/real_libc.hpp"

extern "C" [[noreturn]] void __chk_fail(void);

namespace ephemeral_crypt::interpose {

namespace {

constexpr off_t kHeader = static_cast<off_t>(kHeaderBytes);

class FdIo final : public PositionalIo {
  public:
    explicit FdIo(int fd) noexcept : fd_(fd) {}

    std::int64_t read_at(void* buf, std::size_t len, std::uint64_t offset) noexcept override {
        std::size_t done = 0;
        while (done < len) {
            const ssize_t n = real().pread(fd_, static_cast<char*>(buf) + done, len - done,
                                           static_cast<off_t>(offset + done));
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return -errno;
            }
            if (n == 0) {
                break;
            }
            done += static_cast<std::size_t>(n);
        }
        return static_cast<std::int64_t>(done);
    }

    std::int64_t write_at(const void* buf, std::size_t len,
                          std::uint64_t offset) noexcept override {
        std::size_t done = 0;
        while (done < len) {
            const ssize_t n = real().pwrite(fd_, static_cast<const char*>(buf) + done, len - done,
                                            static_cast<off_t>(offset + done));
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return -errno;
            }
            if (n == 0) {
                return -ENOSPC;
            }
            done += static_cast<std::size_t>(n);
        }
        return static_cast<std::int64_t>(done);
    }

    std::int64_t size() noexcept override {
        struct stat st {};
        if (real().fstat(fd_, &st) != 0) {
            return -errno;
        }
        return st.st_size;
    }

    int truncate(std::uint64_t length) noexcept override {
        return real().ftruncate(fd_, static_cast<off_t>(length)) == 0 ? 0 : -errno;
    }

    int allocate(std::uint64_t offset, std::uint64_t len) noexcept override {
        const int rc =
            real().posix_fallocate(fd_, static_cast<off_t>(offset), static_cast<off_t>(len));
        return rc == 0 ? 0 : -rc;
    }

  private:
    int fd_;
};

// One pending operator event per thread, fired as the wrapper returns.
struct PendingEvent {
    bool set = false;
    LayerEvent event = LayerEvent::IoFailure;
    Category category = Category::Spill;
    const char* detail = "";
    char path[PATH_MAX] = {};
};
thread_local PendingEvent t_pending;

void record_event(LayerEvent event, Category category, const char* path,
                  const char* detail) noexcept {
    if (t_pending.set) {
        return;  // the first event of a call is the one worth reporting
    }
    t_pending.set = true;
    t_pending.event = event;
    t_pending.category = category;
    t_pending.detail = detail;
    std::strncpy(t_pending.path, path != nullptr ? path : "", sizeof(t_pending.path) - 1);
    t_pending.path[sizeof(t_pending.path) - 1] = '\0';
}

void fire_pending_event() noexcept {
    if (!t_pending.set) {
        return;
    }
    t_pending.set = false;
    const EventCallback callback = config().on_event;
    if (callback != nullptr) {
        const int saved_errno = errno;
        callback(t_pending.event, t_pending.category, t_pending.path, t_pending.detail);
        errno = saved_errno;
    }
}

// Turns an engine result into libc's convention, counting EIO as a failure.
template <class T>
T fail_with(int negative_errno, FileState* state, const char* detail) noexcept {
    if (negative_errno == -EIO) {
        counters().of(state->category).failures.fetch_add(1, std::memory_order_relaxed);
        record_event(LayerEvent::IoFailure, state->category, state->path.c_str(), detail);
    }
    errno = -negative_errno;
    return static_cast<T>(-1);
}

// Resolves `path` relative to `dirfd` into `out` when it is not absolute and
// dirfd is not the working directory; PostgreSQL itself never does this.
const char* absolute_for(int dirfd, const char* path, char* out, std::size_t out_len) noexcept {
    if (path[0] == '/' || dirfd == AT_FDCWD) {
        return path;
    }
    char link[64];
    std::snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
    const ssize_t n = readlink(link, out, out_len - 1);
    if (n <= 0 || static_cast<std::size_t>(n) + std::strlen(path) + 2 > out_len) {
        return path;
    }
    out[n] = '/';
    std::strcpy(out + n + 1, path);
    return out;
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

// Makes sure a tracked file has its engine: files opened read-only while
// empty get it once someone has written the header.
EncryptedFile* engine_for(FileState* state, int fd) noexcept {
    if (state->engine) {
        return state->engine.get();
    }
    std::lock_guard<std::mutex> guard(FdTable::instance().mutex());
    if (!state->engine) {
        FdIo io(fd);
        if (io.size() >= kHeader) {
            auto outcome = EncryptedFile::open(io, *config().key);
            state->engine = std::move(outcome.file);
        }
    }
    return state->engine.get();
}

int open_tracked(int dirfd, const char* path, int flags, mode_t mode, Category category) noexcept {
    const int access = flags & O_ACCMODE;
    std::uint32_t fd_mode = 0;
    if (access != O_WRONLY) {
        fd_mode |= kFdReadable;
    }
    if (access != O_RDONLY) {
        fd_mode |= kFdWritable;
    }
    if (flags & O_APPEND) {
        fd_mode |= kFdAppend;
    }
    // Read-modify-write needs read access; appends are placed by the layer;
    // O_DIRECT cannot be honoured through bounce buffers.
    int real_flags = flags & ~(O_APPEND | O_DIRECT);
    if (access == O_WRONLY) {
        real_flags = (real_flags & ~O_ACCMODE) | O_RDWR;
    }
    // Whether this call creates the file decides whether a refusal below
    // must remove it again: a refused creation leaves nothing behind.
    struct stat before {};
    const bool may_create = (flags & O_CREAT) != 0;
    const bool existed = may_create && real().fstatat(dirfd, path, &before, 0) == 0;
    const int fd = real().openat(dirfd, path, real_flags, mode);
    if (fd < 0) {
        return fd;
    }
    struct stat st {};
    if (real().fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        return fd;  // not a regular file: nothing to encrypt
    }

    FdTable& table = FdTable::instance();
    int error = 0;
    bool passthrough = false;
    {
        std::lock_guard<std::mutex> guard(table.mutex());
        FileState* state = table.find_or_create(st.st_dev, st.st_ino, category, path);
        FdIo io(fd);
        if (st.st_size == 0) {
            // A new or truncated file: whatever engine this process had for
            // the inode described the old contents.
            state->engine.reset();
            if (fd_mode & kFdWritable) {
                const bool fault = layer_fault(category);
                const bool audit = fault && config().policy[category_index(category)].degradation ==
                                                Degradation::FailOpenAudit;
                if (fault && !audit) {
                    error = EIO;
                    counters().of(category).failures.fetch_add(1, std::memory_order_relaxed);
                    record_event(LayerEvent::IoFailure, category, path,
                                 "could not create an encrypted file (fault injected)");
                } else {
                    auto outcome = EncryptedFile::create(io, *config().key, category, audit);
                    if (!outcome.file) {
                        error = outcome.error != 0 ? outcome.error : EIO;
                        if (error == EIO) {
                            counters().of(category).failures.fetch_add(1,
                                                                       std::memory_order_relaxed);
                            record_event(LayerEvent::IoFailure, category, path,
                                         "could not write the encryption header");
                        }
                    } else {
                        state->engine = std::move(outcome.file);
                        if (audit) {
                            counters().of(category).plaintext_fallbacks.fetch_add(
                                1, std::memory_order_relaxed);
                            record_event(LayerEvent::PlaintextFallback, category, path,
                                         "encryption failed; file written in plaintext under "
                                         "fail_open_audit");
                        } else {
                            counters().of(category).files_encrypted.fetch_add(
                                1, std::memory_order_relaxed);
                        }
                    }
                }
            }
        } else if (!state->engine) {
            auto outcome = EncryptedFile::open(io, *config().key);
            if (outcome.file) {
                state->engine = std::move(outcome.file);
            } else if (outcome.status == HeaderStatus::NotOurs && outcome.error == 0) {
                // Plaintext that predates the layer (or another tool's file):
                // served as it is, never re-encrypted behind the server's back.
                passthrough = true;
            } else {
                error = outcome.error != 0 ? outcome.error : EIO;
                counters().of(category).failures.fetch_add(1, std::memory_order_relaxed);
                record_event(LayerEvent::HeaderRejected, category, path,
                             header_status_name(outcome.status).data());
            }
        }
        if (error == 0 && !passthrough && !table.attach(fd, state, fd_mode)) {
            error = EMFILE;
        }
        if (error != 0 || passthrough) {
            table.forget_if_unused(state);
        }
    }
    if (error != 0) {
        real().close(fd);
        if (may_create && !existed) {
            unlinkat(dirfd, path, 0);
        }
        errno = error;
        return -1;
    }
    if (passthrough) {
        return fd;
    }
    real().lseek(fd, kHeader, SEEK_SET);
    counters().of(category).files_open.fetch_add(1, std::memory_order_relaxed);
    return fd;
}

int open_impl(int dirfd, const char* path, int flags, mode_t mode) noexcept {
    if (!(flags & (O_PATH | O_DIRECTORY))) {
        if (const auto category = enabled_category_of(dirfd, path)) {
            return open_tracked(dirfd, path, flags, mode, *category);
        }
    }
    return real().openat(dirfd, path, flags, mode);
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
    counters().of(category).files_open.fetch_sub(1, std::memory_order_relaxed);
}

void share_fd(int from, int to) noexcept {
    std::uint32_t mode = 0;
    FdTable& table = FdTable::instance();
    FileState* state = table.lookup(from, &mode);
    if (state == nullptr || to < 0) {
        return;
    }
    std::lock_guard<std::mutex> guard(table.mutex());
    if (table.attach(to, state, mode)) {
        counters().of(state->category).files_open.fetch_add(1, std::memory_order_relaxed);
    }
}

ssize_t read_tracked(FileState* state, std::uint32_t mode, int fd, void* buf, size_t count,
                     off_t logical) noexcept {
    if (!(mode & kFdReadable)) {
        errno = EBADF;
        return -1;
    }
    EncryptedFile* engine = engine_for(state, fd);
    if (engine == nullptr) {
        return 0;  // empty file, no header yet
    }
    FdIo io(fd);
    const std::int64_t n = engine->pread(io, buf, count, static_cast<std::uint64_t>(logical));
    if (n < 0) {
        return fail_with<ssize_t>(static_cast<int>(n), state, "decrypting read failed");
    }
    if (!engine->plaintext_audit()) {
        counters()
            .of(state->category)
            .bytes_decrypted.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    }
    return static_cast<ssize_t>(n);
}

ssize_t write_tracked(FileState* state, std::uint32_t mode, int fd, const void* buf, size_t count,
                      off_t logical) noexcept {
    if (!(mode & kFdWritable)) {
        errno = EBADF;
        return -1;
    }
    EncryptedFile* engine = engine_for(state, fd);
    if (engine == nullptr) {
        errno = EIO;
        return fail_with<ssize_t>(-EIO, state, "write to a file without an encryption header");
    }
    FdIo io(fd);
    const std::int64_t n = engine->pwrite(io, buf, count, static_cast<std::uint64_t>(logical));
    if (n < 0) {
        return fail_with<ssize_t>(static_cast<int>(n), state, "encrypting write failed");
    }
    if (!engine->plaintext_audit()) {
        counters()
            .of(state->category)
            .bytes_encrypted.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    }
    return static_cast<ssize_t>(n);
}

// Logical position from the kernel's physical one.
off_t current_logical(int fd) noexcept {
    const off_t physical = real().lseek(fd, 0, SEEK_CUR);
    if (physical < 0) {
        return physical;
    }
    return physical > kHeader ? physical - kHeader : 0;
}

ssize_t stream_io(int fd, void* buf, size_t count, bool writing) noexcept {
    std::uint32_t mode = 0;
    FileState* state = FdTable::instance().lookup(fd, &mode);
    if (state == nullptr) {
        return writing ? real().write(fd, buf, count) : real().read(fd, buf, count);
    }
    off_t logical = current_logical(fd);
    if (logical < 0) {
        return -1;
    }
    if (writing && (mode & kFdAppend)) {
        EncryptedFile* engine = engine_for(state, fd);
        if (engine != nullptr) {
            FdIo io(fd);
            engine->refresh_size(io);
            logical = static_cast<off_t>(engine->size());
        }
    }
    const ssize_t n = writing ? write_tracked(state, mode, fd, buf, count, logical)
                              : read_tracked(state, mode, fd, buf, count, logical);
    if (n > 0) {
        real().lseek(fd, logical + n + kHeader, SEEK_SET);
    }
    return n;
}

ssize_t vector_io(int fd, const struct iovec* iov, int iovcnt, off_t offset, bool positional,
                  bool writing) noexcept {
    std::uint32_t mode = 0;
    FileState* state = FdTable::instance().lookup(fd, &mode);
    if (iovcnt < 0) {
        errno = EINVAL;
        return -1;
    }
    off_t logical = offset;
    if (!positional) {
        logical = current_logical(fd);
        if (logical < 0) {
            return -1;
        }
        if (writing && (mode & kFdAppend)) {
            if (EncryptedFile* engine = engine_for(state, fd)) {
                FdIo io(fd);
                engine->refresh_size(io);
                logical = static_cast<off_t>(engine->size());
            }
        }
    }
    ssize_t total = 0;
    for (int i = 0; i < iovcnt; ++i) {
        if (iov[i].iov_len == 0) {
            continue;
        }
        const ssize_t n =
            writing
                ? write_tracked(state, mode, fd, iov[i].iov_base, iov[i].iov_len, logical + total)
                : read_tracked(state, mode, fd, iov[i].iov_base, iov[i].iov_len, logical + total);
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
        real().lseek(fd, logical + total + kHeader, SEEK_SET);
    }
    return total;
}

// Physical size of a file named by path, corrected to logical when it carries
// our header. Only called for paths in an enabled category.
void correct_stat_size(const char* path, int dirfd, struct stat* st) noexcept {
    if (!S_ISREG(st->st_mode) || st->st_size < kHeader) {
        return;
    }
    const int fd = real().openat(dirfd, path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) {
        return;
    }
    char magic[sizeof(kHeaderMagic)];
    const ssize_t n = real().pread(fd, magic, sizeof(magic), 0);
    real().close(fd);
    if (n == static_cast<ssize_t>(sizeof(magic)) &&
        std::memcmp(magic, kHeaderMagic, sizeof(magic)) == 0) {
        st->st_size -= kHeader;
    }
}

int stat_impl(int dirfd, const char* path, struct stat* st, int flags) noexcept {
    const int rc = real().fstatat(dirfd, path, st, flags);
    if (rc == 0 && path != nullptr && path[0] != '\0' && enabled_category_of(dirfd, path)) {
        correct_stat_size(path, dirfd, st);
    }
    return rc;
}

bool refuse_if_tracked(int fd, const char* what) noexcept {
    FileState* state = FdTable::instance().lookup(fd);
    if (state == nullptr) {
        return false;
    }
    counters().of(state->category).failures.fetch_add(1, std::memory_order_relaxed);
    record_event(LayerEvent::BypassRefused, state->category, state->path.c_str(), what);
    return true;
}

// PostgreSQL writes some files that are not WAL through pg_wal/xlogtemp.<pid>
// and renames them into place (timeline history files). A file that leaves
// the encrypted categories by rename must arrive in plaintext, or every reader
// of the destination (which the layer rightly passes through) sees the
// header. Returns -1 with errno on failure; the source is kept then.
int rename_out_of_category(int olddirfd, const char* oldpath, int newdirfd,
                           const char* newpath) noexcept {
    const int in = open_impl(olddirfd, oldpath, O_RDONLY | O_CLOEXEC, 0);
    if (in < 0) {
        return -1;
    }
    if (FdTable::instance().lookup(in) == nullptr) {
        real().close(in);  // plaintext already: an ordinary rename will do
        return renameat(olddirfd, oldpath, newdirfd, newpath);
    }
    struct stat st {};
    real().fstat(in, &st);
    char temp[PATH_MAX];
    std::snprintf(temp, sizeof(temp), "%s.ephemeral_crypt.%d", newpath, static_cast<int>(getpid()));
    const int out =
        real().openat(newdirfd, temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
    bool ok = out >= 0;
    char buffer[8192];
    off_t offset = 0;
    while (ok) {
        const ssize_t n = ec_pread(in, buffer, sizeof(buffer), offset);
        if (n <= 0) {
            ok = n == 0;
            break;
        }
        ok = real().write(out, buffer, static_cast<size_t>(n)) == n;
        offset += n;
    }
    std::memset(buffer, 0, sizeof(buffer));
    const int saved_errno = errno;
    ok = ok && fsync(out) == 0;
    if (out >= 0) {
        real().close(out);
    }
    ec_close(in);
    if (!ok || renameat(newdirfd, temp, newdirfd, newpath) != 0) {
        const int error = ok ? errno : (saved_errno != 0 ? saved_errno : EIO);
        unlinkat(newdirfd, temp, 0);
        errno = error;
        return -1;
    }
    unlinkat(olddirfd, oldpath, 0);
    return 0;
}

}  // namespace
}  // namespace ephemeral_crypt::interpose

using namespace ephemeral_crypt;
using namespace ephemeral_crypt::interpose;

namespace {
template <class T>
T finish(T result) noexcept {
    fire_pending_event();
    return result;
}
mode_t mode_arg(int flags, va_list ap) noexcept {
    if (flags & (O_CREAT | O_TMPFILE)) {
        return static_cast<mode_t>(va_arg(ap, int));
    }
    return 0;
}
}  // namespace

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
    return static_cast<int>(syscall(SYS_close_range, first, last, flags));
}

void ec_closefrom(int lowfd) noexcept {
    const std::size_t capacity = FdTable::instance().capacity();
    for (std::size_t fd = lowfd < 0 ? 0 : lowfd; fd < capacity; ++fd) {
        release_fd(static_cast<int>(fd));
    }
    syscall(SYS_close_range, static_cast<unsigned int>(lowfd), ~0u, 0);
}

ssize_t ec_read(int fd, void* buf, size_t count) noexcept {
    return finish(stream_io(fd, buf, count, false));
}

ssize_t ec_read_chk(int fd, void* buf, size_t count, size_t buflen) noexcept {
    if (count > buflen) {
        __chk_fail();
    }
    return ec_read(fd, buf, count);
}

ssize_t ec_write(int fd, const void* buf, size_t count) noexcept {
    return finish(stream_io(fd, const_cast<void*>(buf), count, true));
}

ssize_t ec_pread(int fd, void* buf, size_t count, off_t offset) noexcept {
    std::uint32_t mode = 0;
    FileState* state = FdTable::instance().lookup(fd, &mode);
    if (state == nullptr) {
        return real().pread(fd, buf, count, offset);
    }
    if (offset < 0) {
        errno = EINVAL;
        return -1;
    }
    return finish(read_tracked(state, mode, fd, buf, count, offset));
}

ssize_t ec_pread_chk(int fd, void* buf, size_t count, off_t offset, size_t buflen) noexcept {
    if (count > buflen) {
        __chk_fail();
    }
    return ec_pread(fd, buf, count, offset);
}

ssize_t ec_pwrite(int fd, const void* buf, size_t count, off_t offset) noexcept {
    std::uint32_t mode = 0;
    FileState* state = FdTable::instance().lookup(fd, &mode);
    if (state == nullptr) {
        return real().pwrite(fd, buf, count, offset);
    }
    if (offset < 0) {
        errno = EINVAL;
        return -1;
    }
    return finish(write_tracked(state, mode, fd, buf, count, offset));
}

ssize_t ec_readv(int fd, const struct iovec* iov, int iovcnt) noexcept {
    if (FdTable::instance().lookup(fd) == nullptr) {
        return real().readv(fd, iov, iovcnt);
    }
    return finish(vector_io(fd, iov, iovcnt, 0, false, false));
}

ssize_t ec_writev(int fd, const struct iovec* iov, int iovcnt) noexcept {
    if (FdTable::instance().lookup(fd) == nullptr) {
        return real().writev(fd, iov, iovcnt);
    }
    return finish(vector_io(fd, iov, iovcnt, 0, false, true));
}

ssize_t ec_preadv(int fd, const struct iovec* iov, int iovcnt, off_t offset) noexcept {
    if (FdTable::instance().lookup(fd) == nullptr) {
        return real().preadv(fd, iov, iovcnt, offset);
    }
    return finish(vector_io(fd, iov, iovcnt, offset, true, false));
}

ssize_t ec_pwritev(int fd, const struct iovec* iov, int iovcnt, off_t offset) noexcept {
    if (FdTable::instance().lookup(fd) == nullptr) {
        return real().pwritev(fd, iov, iovcnt, offset);
    }
    return finish(vector_io(fd, iov, iovcnt, offset, true, true));
}

ssize_t ec_preadv2(int fd, const struct iovec* iov, int iovcnt, off_t offset, int flags) noexcept {
    if (FdTable::instance().lookup(fd) == nullptr) {
        return real().preadv2(fd, iov, iovcnt, offset, flags);
    }
    // Flags are hints (RWF_HIPRI, RWF_NOWAIT...); offset -1 means the file position.
    return finish(vector_io(fd, iov, iovcnt, offset, offset != -1, false));
}

ssize_t ec_pwritev2(int fd, const struct iovec* iov, int iovcnt, off_t offset, int flags) noexcept {
    if (FdTable::instance().lookup(fd) == nullptr) {
        return real().pwritev2(fd, iov, iovcnt, offset, flags);
    }
    if (flags & RWF_APPEND) {
        errno = EOPNOTSUPP;
        return -1;
    }
    return finish(vector_io(fd, iov, iovcnt, offset, offset != -1, true));
}

off_t ec_lseek(int fd, off_t offset, int whence) noexcept {
    FileState* state = FdTable::instance().lookup(fd);
    if (state == nullptr) {
        return real().lseek(fd, offset, whence);
    }
    off_t target = 0;
    switch (whence) {
        case SEEK_SET:
            target = offset;
            break;
        case SEEK_CUR: {
            const off_t current = current_logical(fd);
            if (current < 0) {
                return -1;
            }
            target = current + offset;
            break;
        }
        case SEEK_END: {
            // md.c sizes a relation this way before every extension. A file in
            // the categories has one writer at a time (a backend's temp
            // relation, a participant's spill file, a WAL segment of fixed
            // size), and the engine's size is what that writer wrote, so it
            // answers without an fstat. A file without a header yet has no
            // engine; the kernel answers for it.
            off_t size = 0;
            if (EncryptedFile* engine = engine_for(state, fd)) {
                size = static_cast<off_t>(engine->size());
            } else {
                struct stat st {};
                if (real().fstat(fd, &st) != 0) {
                    return -1;
                }
                size = st.st_size > kHeader ? st.st_size - kHeader : 0;
            }
            target = size + offset;
            break;
        }
        case SEEK_DATA:
        case SEEK_HOLE: {
            if (offset < 0) {
                errno = ENXIO;
                return -1;
            }
            const off_t physical = real().lseek(fd, offset + kHeader, whence);
            return physical < 0 ? physical : physical - kHeader;
        }
        default:
            errno = EINVAL;
            return -1;
    }
    if (target < 0) {
        errno = EINVAL;
        return -1;
    }
    const off_t physical = real().lseek(fd, target + kHeader, SEEK_SET);
    return physical < 0 ? physical : physical - kHeader;
}

int ec_ftruncate(int fd, off_t length) noexcept {
    std::uint32_t mode = 0;
    FileState* state = FdTable::instance().lookup(fd, &mode);
    if (state == nullptr) {
        return real().ftruncate(fd, length);
    }
    if (length < 0) {
        errno = EINVAL;
        return -1;
    }
    if (!(mode & kFdWritable)) {
        errno = EINVAL;  // what the kernel says for a descriptor not open for writing
        return -1;
    }
    EncryptedFile* engine = engine_for(state, fd);
    if (engine == nullptr) {
        return finish(fail_with<int>(-EIO, state, "truncate of a file without a header"));
    }
    FdIo io(fd);
    const int rc = engine->truncate(io, static_cast<std::uint64_t>(length));
    return finish(rc < 0 ? fail_with<int>(rc, state, "truncate failed") : 0);
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

int ec_fstat(int fd, struct stat* st) noexcept {
    const int rc = real().fstat(fd, st);
    if (rc == 0 && FdTable::instance().lookup(fd) != nullptr) {
        st->st_size = st->st_size > kHeader ? st->st_size - kHeader : 0;
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
    if ((flags & AT_EMPTY_PATH) && path != nullptr && path[0] == '\0') {
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
    if ((flags & AT_EMPTY_PATH) && path != nullptr && path[0] == '\0') {
        if (FdTable::instance().lookup(dirfd) != nullptr) {
            stx->stx_size = stx->stx_size > kHeaderBytes ? stx->stx_size - kHeaderBytes : 0;
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

int ec_fallocate(int fd, int mode, off_t offset, off_t len) noexcept {
    FileState* state = FdTable::instance().lookup(fd);
    if (state == nullptr) {
        return real().fallocate(fd, mode, offset, len);
    }
    if (offset < 0 || len <= 0) {
        errno = EINVAL;
        return -1;
    }
    if (mode == FALLOC_FL_KEEP_SIZE) {
        return real().fallocate(fd, mode, offset + kHeader, len);
    }
    if (mode != 0) {
        // Punching or zeroing ranges would have to respect data units.
        errno = EOPNOTSUPP;
        return -1;
    }
    EncryptedFile* engine = engine_for(state, fd);
    if (engine == nullptr) {
        return finish(fail_with<int>(-EIO, state, "allocate on a file without a header"));
    }
    FdIo io(fd);
    const int rc =
        engine->allocate(io, static_cast<std::uint64_t>(offset), static_cast<std::uint64_t>(len));
    return finish(rc < 0 ? fail_with<int>(rc, state, "allocate failed") : 0);
}

int ec_posix_fallocate(int fd, off_t offset, off_t len) noexcept {
    if (FdTable::instance().lookup(fd) == nullptr) {
        return real().posix_fallocate(fd, offset, len);
    }
    const int saved = errno;
    const int rc = ec_fallocate(fd, 0, offset, len);
    const int error = rc == 0 ? 0 : errno;
    errno = saved;  // posix_fallocate reports through its result, not errno
    return error;
}

int ec_posix_fadvise(int fd, off_t offset, off_t len, int advice) noexcept {
    if (FdTable::instance().lookup(fd) != nullptr) {
        offset += kHeader;
    }
    return real().posix_fadvise(fd, offset, len, advice);
}

int ec_sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags) noexcept {
    if (FdTable::instance().lookup(fd) != nullptr) {
        offset += kHeader;
    }
    return real().sync_file_range(fd, offset, nbytes, flags);
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
    std::uint32_t mode = 0;
    FileState* state = FdTable::instance().lookup(fd, &mode);
    if (state == nullptr) {
        return real().fcntl(fd, cmd, arg);
    }
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
            flags &= ~O_ACCMODE;
            flags |= (mode & kFdReadable) ? ((mode & kFdWritable) ? O_RDWR : O_RDONLY) : O_WRONLY;
            if (mode & kFdAppend) {
                flags |= O_APPEND;
            }
            return flags;
        }
        case F_SETFL: {
            const int flags = static_cast<int>(arg);
            const std::uint32_t new_mode =
                (flags & O_APPEND) ? (mode | kFdAppend) : (mode & ~kFdAppend);
            const int result = real().fcntl(fd, cmd, flags & ~(O_APPEND | O_DIRECT));
            if (result == 0) {
                FdTable::instance().set_mode(fd, new_mode);
            }
            return result;
        }
        default:
            return real().fcntl(fd, cmd, arg);
    }
}

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
    // stdio opens through libc's internal open, which no GOT patch reaches.
    if (const auto category = enabled_category_of(AT_FDCWD, path)) {
        counters().of(*category).failures.fetch_add(1, std::memory_order_relaxed);
        record_event(LayerEvent::BypassRefused, *category, path,
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
    return renameat(olddirfd, oldpath, newdirfd, newpath);
}

int ec_rename(const char* oldpath, const char* newpath) noexcept {
    return ec_renameat(AT_FDCWD, oldpath, AT_FDCWD, newpath);
}

void* ec_dlopen(const char* file, int mode) noexcept {
    void* handle = real().dlopen(file, mode);
    if (handle != nullptr) {
        patch_new_objects();
    }
    return handle;
}

}  // extern "C"
