// Layer configuration and installation. install() builds the table of libc
// symbols and their wrappers and hands it to the GOT patcher for every loaded
// object except this library and the system libraries that never touch
// PostgreSQL's files; dlopen'ed objects are patched by the dlopen wrapper.
#include "interpose/layer.hpp"

#include <dlfcn.h>
#include <fcntl.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <type_traits>

#include "interpose/fd_table.hpp"
#include "interpose/got_patcher.hpp"
#include "interpose/real_libc.hpp"
#include "interpose/wrappers.hpp"

namespace ephemeral_crypt::interpose {

namespace {

LayerConfig g_config;
std::atomic<bool> g_active{false};
std::atomic<bool> g_retired{false};
std::atomic<bool> g_installed{false};
std::atomic<bool> g_fault[kCategoryCount];
std::mutex g_patch_mutex;
std::atomic<const SharedPolicy*> g_shared_policy{nullptr};

// Each thread's copy of the shared policy's ciphers and degradations, and
// the stamp it was copied at.
struct LivePolicyCache {
    const SharedPolicy* block = nullptr;
    std::uint64_t stamp = 0;
    CategoryPolicy policy[kCategoryCount];
};
thread_local LivePolicyCache t_live_policy;

template <class Fn>
void* as_void(Fn* fn) noexcept {
    return reinterpret_cast<void*>(fn);
}

// Every name under which an object may import a call the layer serves: the
// plain, 64-bit, fortified and pre-2.33 versioned entry points.
const SymbolReplacement* replacement_table(std::size_t* count) noexcept {
    static const SymbolReplacement table[] = {
        {"open", as_void(ec_open)},
        {"open64", as_void(ec_open)},
        {"openat", as_void(ec_openat)},
        {"openat64", as_void(ec_openat)},
        {"__open_2", as_void(ec_open_2)},
        {"__open64_2", as_void(ec_open_2)},
        {"__openat_2", as_void(ec_openat_2)},
        {"__openat64_2", as_void(ec_openat_2)},
        {"creat", as_void(ec_creat)},
        {"creat64", as_void(ec_creat)},
        {"close", as_void(ec_close)},
        {"close_range", as_void(ec_close_range)},
        {"closefrom", as_void(ec_closefrom)},
        {"read", as_void(ec_read)},
        {"__read_chk", as_void(ec_read_chk)},
        {"write", as_void(ec_write)},
        {"pread", as_void(ec_pread)},
        {"pread64", as_void(ec_pread)},
        {"__pread_chk", as_void(ec_pread_chk)},
        {"__pread64_chk", as_void(ec_pread_chk)},
        {"pwrite", as_void(ec_pwrite)},
        {"pwrite64", as_void(ec_pwrite)},
        {"readv", as_void(ec_readv)},
        {"writev", as_void(ec_writev)},
        {"preadv", as_void(ec_preadv)},
        {"preadv64", as_void(ec_preadv)},
        {"pwritev", as_void(ec_pwritev)},
        {"pwritev64", as_void(ec_pwritev)},
        {"preadv2", as_void(ec_preadv2)},
        {"preadv64v2", as_void(ec_preadv2)},
        {"pwritev2", as_void(ec_pwritev2)},
        {"pwritev64v2", as_void(ec_pwritev2)},
        {"lseek", as_void(ec_lseek)},
        {"lseek64", as_void(ec_lseek)},
        {"ftruncate", as_void(ec_ftruncate)},
        {"ftruncate64", as_void(ec_ftruncate)},
        {"truncate", as_void(ec_truncate)},
        {"truncate64", as_void(ec_truncate)},
        {"fstat", as_void(ec_fstat)},
        {"fstat64", as_void(ec_fstat)},
        {"stat", as_void(ec_stat)},
        {"stat64", as_void(ec_stat)},
        {"lstat", as_void(ec_lstat)},
        {"lstat64", as_void(ec_lstat)},
        {"fstatat", as_void(ec_fstatat)},
        {"fstatat64", as_void(ec_fstatat)},
        {"statx", as_void(ec_statx)},
        {"__fxstat", as_void(ec_fxstat)},
        {"__fxstat64", as_void(ec_fxstat)},
        {"__xstat", as_void(ec_xstat)},
        {"__xstat64", as_void(ec_xstat)},
        {"__lxstat", as_void(ec_lxstat)},
        {"__lxstat64", as_void(ec_lxstat)},
        {"__fxstatat", as_void(ec_fxstatat)},
        {"__fxstatat64", as_void(ec_fxstatat)},
        {"fallocate", as_void(ec_fallocate)},
        {"fallocate64", as_void(ec_fallocate)},
        {"posix_fallocate", as_void(ec_posix_fallocate)},
        {"posix_fallocate64", as_void(ec_posix_fallocate)},
        {"posix_fadvise", as_void(ec_posix_fadvise)},
        {"posix_fadvise64", as_void(ec_posix_fadvise)},
        {"sync_file_range", as_void(ec_sync_file_range)},
        {"dup", as_void(ec_dup)},
        {"dup2", as_void(ec_dup2)},
        {"dup3", as_void(ec_dup3)},
        {"fcntl", as_void(ec_fcntl)},
        {"fcntl64", as_void(ec_fcntl)},
        {"mmap", as_void(ec_mmap)},
        {"mmap64", as_void(ec_mmap)},
        {"copy_file_range", as_void(ec_copy_file_range)},
        {"sendfile", as_void(ec_sendfile)},
        {"sendfile64", as_void(ec_sendfile)},
        {"splice", as_void(ec_splice)},
        {"fopen", as_void(ec_fopen)},
        {"fopen64", as_void(ec_fopen)},
        {"rename", as_void(ec_rename)},
        {"renameat", as_void(ec_renameat)},
        {"dlopen", as_void(ec_dlopen)},
        {"system", as_void(ec_system)},
    };
    *count = sizeof(table) / sizeof(table[0]);
    return table;
}

bool name_contains(const char* path, const char* needle) noexcept {
    return path != nullptr && std::strstr(path, needle) != nullptr;
}

// Libraries that never open PostgreSQL's files, and this library itself,
// whose calls must reach libc directly.
bool skip_object(const char* path, void* base) noexcept {
    Dl_info self{};
    if (dladdr(reinterpret_cast<void*>(&skip_object), &self) != 0 && self.dli_fbase == base) {
        return true;
    }
    static const char* const kSystemLibraries[] = {
        "/libc.so",      "/ld-linux",     "/libcrypto.so", "/libssl.so",   "/libsodium.so",
        "/libgcrypt.so", "/libstdc++.so", "/libgcc_s.so",  "/libm.so",     "/libpthread.so",
        "/libdl.so",     "linux-vdso",    "/libasan.so",   "/libubsan.so",
    };
    for (const char* library : kSystemLibraries) {
        if (name_contains(path, library)) {
            return true;
        }
    }
    return false;
}

}  // namespace

void configure(const LayerConfig& config) {
    g_config = config;
    (void)FdTable::instance();  // allocate the table before any child is forked
    prepare_process_counters();
    const char* missing = nullptr;
    resolve_real_libc(&missing);
    g_retired.store(false, std::memory_order_release);
    g_active.store(config.key != nullptr, std::memory_order_release);
}

void retire() noexcept {
    g_retired.store(true, std::memory_order_release);
    // The kernel closes a process's descriptors at exit without telling us:
    // give back their share of the shared files_open gauge now (a close
    // after this point does not count), and destroy their files' engines,
    // which wipes each file's cipher state. The descriptors stay tracked, so
    // a call on one fails (EIO) instead of reaching the file as plaintext.
    FdTable& table = FdTable::instance();
    std::lock_guard<std::mutex> guard(table.mutex());
    std::size_t seen = 0;
    for (std::size_t fd = 0; fd < table.capacity() && seen < table.tracked(); ++fd) {
        if (FileState* state = table.lookup(static_cast<int>(fd))) {
            ++seen;
            counters().of(state->category).files_open.fetch_sub(1, std::memory_order_relaxed);
            state->set_cipher_file(nullptr);
        }
    }
    g_config.key = nullptr;
    // With the gauge given back, this process's counts join the shared total
    // (nothing is counted after this).
    release_process_counters();
}

bool retired() noexcept {
    return g_retired.load(std::memory_order_acquire);
}

InstallReport install() {
    InstallReport report;
    const char* missing = nullptr;
    if (!resolve_real_libc(&missing)) {
        report.error = std::string("libc function not found: ") + (missing ? missing : "?");
        return report;
    }
    std::size_t count = 0;
    const SymbolReplacement* table = replacement_table(&count);
    PatchReport patched;
    {
        std::lock_guard<std::mutex> guard(g_patch_mutex);
        patched = patch_loaded_objects(table, count, skip_object);
    }
    report.objects_patched = patched.objects_patched;
    report.slots_patched = patched.slots_patched + patched.slots_already_patched;
    if (patched.failures > 0) {
        report.error = std::string("could not patch ") + std::to_string(patched.failures) +
                       " slot(s); first: " + patched.first_failure;
        return report;
    }
    // The server's own file calls must now reach the layer.
    static const char* const kEssential[] = {"open",  "close", "pread", "pwrite",   "read",
                                             "write", "lseek", "fstat", "ftruncate"};
    int essential_found = 0;
    for (const char* name : kEssential) {
        void* slot = current_slot_value(nullptr, name);
        if (slot == nullptr) {
            continue;
        }
        ++essential_found;
        bool ours = false;
        for (std::size_t i = 0; i < count; ++i) {
            if (std::strcmp(table[i].symbol, name) == 0 && table[i].replacement == slot) {
                ours = true;
            }
        }
        if (!ours) {
            report.error = std::string("the main program's ") + name + " still bypasses the layer";
            return report;
        }
    }
    if (essential_found == 0) {
        report.error = "the main program imports none of open, pread, pwrite, read, write";
        return report;
    }
    g_installed.store(true, std::memory_order_release);
    report.ok = true;
    return report;
}

bool installed() noexcept {
    return g_installed.load(std::memory_order_acquire);
}

void patch_new_objects() noexcept {
    if (!installed()) {
        return;
    }
    std::size_t count = 0;
    const SymbolReplacement* table = replacement_table(&count);
    std::lock_guard<std::mutex> guard(g_patch_mutex);
    (void)patch_loaded_objects(table, count, skip_object);
}

SlotAudit audit_patched_slots() noexcept {
    SlotAudit audit;
    if (!installed()) {
        return audit;
    }
    std::size_t count = 0;
    const SymbolReplacement* table = replacement_table(&count);
    PatchReport report;
    {
        std::lock_guard<std::mutex> guard(g_patch_mutex);
        report = audit_loaded_objects(table, count, skip_object);
    }
    audit.objects_scanned = report.objects_scanned;
    audit.slots_in_place = report.slots_already_patched;
    audit.slots_not_in_place = report.slots_not_patched;
    audit.unreadable = report.failures;
    static_assert(sizeof(audit.first_not_in_place) == sizeof(report.first_not_patched) &&
                  sizeof(audit.first_unreadable) == sizeof(report.first_failure));
    std::memcpy(audit.first_not_in_place, report.first_not_patched,
                sizeof(audit.first_not_in_place));
    std::memcpy(audit.first_unreadable, report.first_failure, sizeof(audit.first_unreadable));
    return audit;
}

bool divert_slot_for_testing() noexcept {
#ifdef EPHEMERAL_CRYPT_TEST_HOOKS
    if (!installed()) {
        return false;
    }
    const SymbolReplacement table[] = {
        {"lseek", as_void(real().lseek)},
        {"lseek64", as_void(real().lseek)},
    };
    // Every object but the main program (the only one without a name) is
    // skipped.
    const SkipObject all_but_main = [](const char* path, void*) noexcept {
        return path != nullptr && path[0] != '\0';
    };
    std::lock_guard<std::mutex> guard(g_patch_mutex);
    const PatchReport report =
        patch_loaded_objects(table, sizeof(table) / sizeof(table[0]), all_but_main);
    return report.failures == 0 && report.slots_patched > 0;
#else
    return false;
#endif
}

void set_fault(Category category, bool fail) noexcept {
    g_fault[category_index(category)].store(fail, std::memory_order_relaxed);
}

bool layer_fault(Category category) noexcept {
    return g_fault[category_index(category)].load(std::memory_order_relaxed);
}

const LayerConfig& config() noexcept {
    return g_config;
}

void attach_shared_policy(const SharedPolicy* shared) noexcept {
    g_shared_policy.store(shared, std::memory_order_release);
    t_live_policy.block = nullptr;
}

CategoryPolicy live_category_policy(Category category) noexcept {
    const std::size_t index = category_index(category);
    const SharedPolicy* shared = g_shared_policy.load(std::memory_order_acquire);
    if (shared == nullptr) {
        return g_config.policy[index];
    }
    LivePolicyCache& cache = t_live_policy;
    const std::uint64_t stamp = shared->stamp();
    if (cache.block != shared || cache.stamp != stamp) {
        PolicySnapshot snapshot;
        if (!shared->read(&snapshot)) {
            return g_config.policy[index];
        }
        for (std::size_t i = 0; i < kCategoryCount; ++i) {
            cache.policy[i].enabled = g_config.policy[i].enabled;
            cache.policy[i].degradation = static_cast<Degradation>(snapshot.degradation[i]);
            cache.policy[i].cipher = static_cast<FileCipher>(snapshot.cipher[i]);
        }
        cache.block = shared;
        cache.stamp = stamp;
    }
    return cache.policy[index];
}

bool category_enabled(Category category) noexcept {
    return g_config.policy[category_index(category)].enabled;
}

bool layer_active() noexcept {
    return g_active.load(std::memory_order_acquire);
}

bool fd_is_tracked(int fd, Category* category) noexcept {
    FileState* state = FdTable::instance().lookup(fd);
    if (state != nullptr && category != nullptr) {
        *category = state->category;
    }
    return state != nullptr;
}

std::size_t tracked_fd_count() noexcept {
    return FdTable::instance().tracked();
}

FileCalls encrypting_file_calls() noexcept {
    FileCalls calls;
    calls.open = ec_open;
    calls.openat = ec_openat;
    calls.close = ec_close;
    calls.write = ec_write;
    calls.pread = ec_pread;
    calls.pwrite = ec_pwrite;
    calls.ftruncate = ec_ftruncate;
    calls.stat = ec_stat;
    // Neither needs the layer: an fsync has no bytes to encrypt, and the
    // rename and unlink of a temporary file beside its target change no
    // file's category.
    calls.fsync = real().fsync;
    calls.renameat = real().renameat;
    calls.unlinkat = real().unlinkat;
    return calls;
}

FileCalls plaintext_file_calls() noexcept {
    const RealLibc& libc = real();
    FileCalls calls;
    calls.open = libc.open;
    calls.openat = libc.openat;
    calls.close = libc.close;
    calls.write = libc.write;
    calls.pread = libc.pread;
    calls.pwrite = libc.pwrite;
    calls.ftruncate = libc.ftruncate;
    calls.stat = libc.stat;
    calls.fsync = libc.fsync;
    calls.renameat = libc.renameat;
    calls.unlinkat = libc.unlinkat;
    return calls;
}

FileCalls server_file_calls() noexcept {
    // The slot's value, as the type of the member it fills.
    const auto slot = [](auto& member, const char* symbol) noexcept {
        member = reinterpret_cast<std::remove_reference_t<decltype(member)>>(
            current_slot_value(nullptr, symbol));
    };
    FileCalls calls;
    slot(calls.open, "open");
    slot(calls.openat, "openat");
    slot(calls.close, "close");
    slot(calls.write, "write");
    slot(calls.pread, "pread");
    slot(calls.pwrite, "pwrite");
    slot(calls.ftruncate, "ftruncate");
    slot(calls.stat, "stat");
    slot(calls.fsync, "fsync");
    slot(calls.renameat, "renameat");
    slot(calls.unlinkat, "unlinkat");
    return calls;
}

}  // namespace ephemeral_crypt::interpose

// dlopen is wrapped so that objects loaded later (archive modules, other
// extensions) are patched as they load and read through the layer too.
extern "C" void* ec_dlopen(const char* file, int mode) noexcept {
    void* handle = ephemeral_crypt::interpose::real().dlopen(file, mode);
    if (handle != nullptr) {
        ephemeral_crypt::interpose::patch_new_objects();
    }
    return handle;
}
