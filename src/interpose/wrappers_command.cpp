// system(): archive_command and restore_command on encrypted WAL.
//
// In PostgreSQL 15 to 19 the archiver runs archive_command, and the startup
// process restore_command, through libc's system(), with %p expanded to a
// path in pg_wal (wal_command.hpp). The operator's command (pgBackRest,
// Barman, cp) is an external program that cannot decrypt, so the layer runs
// it on a staged copy instead:
//
//  - archive: the segment is decrypted into a private mode-0700 directory
//    under ephemeral_crypt.wal_staging_directory, under its own file name
//    (pgBackRest and Barman take the segment's name from the path's last
//    component, and pgBackRest checks its page header against pg_control),
//    and the command runs on that copy;
//  - restore: the command writes into the staging directory, and the layer
//    then writes the segment into pg_wal/RECOVERYXLOG encrypted, where the
//    startup process reads it and keeps it under its own name.
//
// The staging directory must be a memory file system (tmpfs or ramfs), so
// plaintext WAL never reaches a disk; the staged file is removed whatever
// the command's outcome. The command's exit status is PostgreSQL's to judge,
// exactly as without the layer. When staging itself fails, the archive
// command counts as failed (exit status 1: the segment stays .ready and is
// retried), and the restore command as failed in a way the startup process
// does not take for "not in the archive" (exit status 126: recovery stops
// with a FATAL rather than ending early and losing what the archive holds).
// Either way a WARNING names the setting.
//
// A process killed while its command runs (the archiver by SIGKILL, the
// whole instance, or PostgreSQL 15's startup process, which exits from its
// SIGTERM handler while restore_command runs) cannot remove its staged copy.
// Staging directories are therefore named after the data directory and the
// role (archive or restore), each of which only one process of an instance
// holds at a time, and each staging first removes what a previous holder of
// the same name left. The layer's own work around the command runs with
// the server's signals held, so no handler exits in the middle of it.
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include "core/wal_command.hpp"
#include "interpose/layer.hpp"
#include "interpose/real_libc.hpp"
#include "interpose/tracked_io.hpp"
#include "interpose/wal_staging.hpp"
#include "interpose/wrappers.hpp"

using namespace ephemeral_crypt;
using namespace ephemeral_crypt::interpose;

namespace {

// linux/magic.h's values; the header is not part of every libc's set.
constexpr long kTmpfsMagic = 0x01021994;
constexpr long kRamfsMagic = static_cast<long>(0x858458f6);

// Exit statuses as system() reports them (see the file's opening).
constexpr int kArchiveStagingFailed = 1 << 8;
constexpr int kRestoreStagingFailed = 126 << 8;

constexpr std::size_t kCopyChunk = 64 * 1024;

bool on_memory_file_system(const char* path) noexcept {
    struct statfs fs {};
    return statfs(path, &fs) == 0 && (fs.f_type == kTmpfsMagic || fs.f_type == kRamfsMagic);
}

}  // namespace

namespace ephemeral_crypt::interpose {

int staging_directory_error(const char* directory) noexcept {
    struct stat st {};
    if (real().stat(directory, &st) != 0) {
        return errno;
    }
    if (!S_ISDIR(st.st_mode)) {
        return ENOTDIR;
    }
    return on_memory_file_system(directory) ? 0 : EXDEV;
}

const char* staging_directory_problem(const char* directory) noexcept {
    const int error = staging_directory_error(directory);
    if (error == 0) {
        return nullptr;
    }
    errno = error;
    return staging_problem(error);
}

const char* staging_problem(int error) noexcept {
    switch (error) {
        case ENOSPC:
        case EDQUOT:
            return "ephemeral_crypt.wal_staging_directory is full";
        case ENOENT:
        case ENOTDIR:
        case EACCES:
        case EPERM:
        case EROFS:
            return "ephemeral_crypt.wal_staging_directory is missing or not writable by the "
                   "server";
        case EXDEV:
            return "ephemeral_crypt.wal_staging_directory is not on a memory file system "
                   "(tmpfs or ramfs), so staged plaintext WAL could reach a disk";
        default:
            return "the WAL file could not be staged in ephemeral_crypt.wal_staging_directory";
    }
}

}  // namespace ephemeral_crypt::interpose

namespace {

// Blocks the signals PostgreSQL's processes handle for as long as it lives,
// except while a Released of it lives: the layer's own work around the
// command is never cut short by a handler that exits.
class SignalsHeld {
  public:
    SignalsHeld() noexcept {
        sigset_t held;
        sigemptyset(&held);
        for (const int signal : {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM}) {
            sigaddset(&held, signal);
        }
        sigprocmask(SIG_BLOCK, &held, &previous_);
    }
    ~SignalsHeld() { sigprocmask(SIG_SETMASK, &previous_, nullptr); }
    SignalsHeld(const SignalsHeld&) = delete;
    SignalsHeld& operator=(const SignalsHeld&) = delete;

    // The caller's own mask again, while the command runs.
    class Released {
      public:
        explicit Released(const SignalsHeld& held) noexcept {
            sigprocmask(SIG_SETMASK, &held.previous_, &during_);
        }
        ~Released() { sigprocmask(SIG_SETMASK, &during_, nullptr); }
        Released(const Released&) = delete;
        Released& operator=(const Released&) = delete;

      private:
        sigset_t during_;
    };

  private:
    sigset_t previous_;
};

// "ephemeral_crypt.<data directory's hash>.<role>.": the names of the
// staging directories of one role of one instance.
void staging_prefix(const char* role, char* out, std::size_t size) noexcept {
    std::uint64_t hash = 14695981039346656037ull;  // FNV-1a: a name, not a secret
    for (const char c : config().roots.data_dir) {
        hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    }
    std::snprintf(out, size, "ephemeral_crypt.%016llx.%s.", static_cast<unsigned long long>(hash),
                  role);
}

// Removes what a killed process of the same role and instance left under
// `base`: its directory and the staged file in it.
void remove_leftovers(const char* base, const char* prefix) noexcept {
    DIR* dir = opendir(base);
    if (dir == nullptr) {
        return;
    }
    const std::size_t prefix_length = std::strlen(prefix);
    while (const dirent* entry = readdir(dir)) {
        if (std::strncmp(entry->d_name, prefix, prefix_length) != 0) {
            continue;
        }
        char leftover[PATH_MAX];
        std::snprintf(leftover, sizeof(leftover), "%s/%s", base, entry->d_name);
        if (DIR* inner = opendir(leftover)) {
            while (const dirent* file = readdir(inner)) {
                if (std::strcmp(file->d_name, ".") != 0 && std::strcmp(file->d_name, "..") != 0) {
                    real().unlinkat(dirfd(inner), file->d_name, 0);
                }
            }
            closedir(inner);
        }
        real().unlinkat(AT_FDCWD, leftover, AT_REMOVEDIR);
    }
    closedir(dir);
}

// A private directory under the staging directory holding one staged file;
// everything in it is removed when it goes.
class StagingArea {
  public:
    StagingArea(const std::string& name, const char* role) noexcept {
        const std::string& base = config().wal_staging_dir;
        char prefix[64];
        staging_prefix(role, prefix, sizeof(prefix));
        if (!is_shell_safe_path(base) ||
            std::snprintf(directory_, sizeof(directory_), "%s/%sXXXXXX", base.c_str(), prefix) >=
                static_cast<int>(sizeof(directory_))) {
            error_ = EINVAL;
            return;
        }
        remove_leftovers(base.c_str(), prefix);
        if (mkdtemp(directory_) == nullptr) {  // mode 0700
            error_ = errno;
            directory_[0] = '\0';
            return;
        }
        if (!on_memory_file_system(directory_)) {
            error_ = EXDEV;
            return;
        }
        if (std::snprintf(file_, sizeof(file_), "%s/%s", directory_, name.c_str()) >=
            static_cast<int>(sizeof(file_))) {
            file_[0] = '\0';
            error_ = ENAMETOOLONG;
        }
    }

    ~StagingArea() {
        if (file_[0] != '\0') {
            real().unlinkat(AT_FDCWD, file_, 0);
        }
        if (directory_[0] != '\0') {
            real().unlinkat(AT_FDCWD, directory_, AT_REMOVEDIR);
        }
    }

    StagingArea(const StagingArea&) = delete;
    StagingArea& operator=(const StagingArea&) = delete;

    bool ready() const noexcept { return file_[0] != '\0'; }
    int error() const noexcept { return error_; }
    const char* file() const noexcept { return file_; }

  private:
    char directory_[PATH_MAX] = {};
    char file_[PATH_MAX] = {};
    int error_ = 0;
};

// Copies `in` to `out` from offset 0 with the given calls; false with errno.
template <class ReadAt, class WriteAt>
bool copy_file(ReadAt read_at, WriteAt write_at) noexcept {
    static thread_local char buffer[kCopyChunk];
    bool ok = true;
    for (off_t offset = 0;;) {
        const ssize_t n = read_at(buffer, sizeof(buffer), offset);
        if (n <= 0) {
            ok = n == 0;
            break;
        }
        const ssize_t written = write_at(buffer, static_cast<size_t>(n), offset);
        if (written != n) {
            if (written >= 0) {
                errno = ENOSPC;  // a short write to a file system is one that filled up
            }
            ok = false;
            break;
        }
        offset += n;
    }
    const int error = errno;
    std::memset(buffer, 0, sizeof(buffer));
    errno = error;
    return ok;
}

int staging_failed(const char* wal_path, int error, int status) noexcept {
    record_event(LayerEvent::StagingFailed, Category::Wal, wal_path, staging_problem(error));
    return status;
}

// archive_command on an encrypted segment: the command reads a decrypted
// copy under the segment's own name.
int archive_through_staging(const char* command, const WalCommand& found) noexcept {
    const SignalsHeld held;
    char wal_path[PATH_MAX];
    std::snprintf(wal_path, sizeof(wal_path), "pg_wal/%s", found.name.c_str());
    const int in = open_impl(AT_FDCWD, wal_path, O_RDONLY | O_CLOEXEC, 0);
    if (in < 0) {
        return staging_failed(wal_path, errno, kArchiveStagingFailed);
    }
    if (FdTable::instance().lookup(in) == nullptr) {
        real().close(in);  // plaintext (written before WAL encryption): nothing to stage
        const SignalsHeld::Released released(held);
        return real().system(command);
    }
    StagingArea area(found.name, "archive");
    if (!area.ready()) {
        ec_close(in);
        return staging_failed(wal_path, area.error(), kArchiveStagingFailed);
    }
    const int out = real().openat(AT_FDCWD, area.file(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                                  S_IRUSR | S_IWUSR);
    if (out < 0) {
        const int error = errno;
        ec_close(in);
        return staging_failed(wal_path, error, kArchiveStagingFailed);
    }
    const bool copied = copy_file(
        [in](void* buf, size_t n, off_t at) { return ec_pread(in, buf, n, at); },
        [out](const void* buf, size_t n, off_t at) { return real().pwrite(out, buf, n, at); });
    const int error = errno;
    ec_close(in);
    real().close(out);
    if (!copied) {
        return staging_failed(wal_path, error, kArchiveStagingFailed);
    }
    std::string rewritten;
    try {
        rewritten = rewrite_wal_command(command, found, area.file());
    } catch (const std::bad_alloc&) {
        return staging_failed(wal_path, ENOMEM, kArchiveStagingFailed);
    }
    const SignalsHeld::Released released(held);
    return real().system(rewritten.c_str());
}

// Writes the restored plaintext at `staged` into pg_wal/RECOVERYXLOG through
// the layer, which encrypts it. A partial result is removed.
bool encrypt_into_wal(const char* staged, const char* wal_path) noexcept {
    const int in = real().openat(AT_FDCWD, staged, O_RDONLY | O_CLOEXEC, 0);
    if (in < 0) {
        return false;
    }
    // A new inode, never one this process may still serve from a cache.
    real().unlinkat(AT_FDCWD, wal_path, 0);
    const int out = ec_open(wal_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, S_IRUSR | S_IWUSR);
    if (out < 0) {
        const int error = errno;
        real().close(in);
        errno = error;
        return false;
    }
    const bool copied = copy_file(
        [in](void* buf, size_t n, off_t at) { return real().pread(in, buf, n, at); },
        [out](const void* buf, size_t n, off_t at) { return ec_pwrite(out, buf, n, at); });
    int error = errno;
    real().close(in);
    const bool closed = ec_close(out) == 0;
    if (copied && !closed) {
        error = errno;
    }
    if (!copied || !closed) {
        real().unlinkat(AT_FDCWD, wal_path, 0);
        errno = error;
        return false;
    }
    return true;
}

// restore_command: the command writes into memory, and the segment reaches
// pg_wal encrypted under this instance's key.
int restore_through_staging(const char* command, const WalCommand& found) noexcept {
    const SignalsHeld held;
    char wal_path[PATH_MAX];
    std::snprintf(wal_path, sizeof(wal_path), "pg_wal/%s", found.name.c_str());
    StagingArea area(found.name, "restore");
    if (!area.ready()) {
        return staging_failed(wal_path, area.error(), kRestoreStagingFailed);
    }
    std::string rewritten;
    try {
        rewritten = rewrite_wal_command(command, found, area.file());
    } catch (const std::bad_alloc&) {
        return staging_failed(wal_path, ENOMEM, kRestoreStagingFailed);
    }
    int status;
    {
        const SignalsHeld::Released released(held);
        status = real().system(rewritten.c_str());
    }
    struct stat st {};
    if (status != 0 || real().stat(area.file(), &st) != 0) {
        // Not in the archive, or the command failed: PostgreSQL decides, as
        // it would without the layer, and finds no file in pg_wal.
        return status;
    }
    if (!encrypt_into_wal(area.file(), wal_path)) {
        return staging_failed(wal_path, errno, kRestoreStagingFailed);
    }
    return status;
}

}  // namespace

extern "C" {

int ec_system(const char* command) noexcept {
    if (command == nullptr || !layer_active() || retired() || !category_enabled(Category::Wal)) {
        return real().system(command);
    }
    std::optional<WalCommand> found;
    try {
        found = find_wal_command(command);
    } catch (const std::bad_alloc&) {
        errno = ENOMEM;
        return -1;
    }
    if (!found) {
        return real().system(command);
    }
    return finish(found->kind == WalCommandKind::Archive
                      ? archive_through_staging(command, *found)
                      : restore_through_staging(command, *found));
}

}  // extern "C"
