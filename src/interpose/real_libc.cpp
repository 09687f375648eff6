// dlsym(RTLD_NEXT) resolution of the libc functions the layer wraps. This
// library is never patched itself, but resolving explicitly keeps the layer
// correct even if some other interposer sits between it and libc.
#include "interpose/real_libc.hpp"

#include <dlfcn.h>

namespace ephemeral_crypt::interpose {

namespace {
RealLibc g_real{};

template <class Fn>
bool resolve(Fn*& slot, const char* name, const char** missing) noexcept {
    void* sym = dlsym(RTLD_NEXT, name);
    if (sym == nullptr) {
        sym = dlsym(RTLD_DEFAULT, name);
    }
    if (sym == nullptr) {
        if (*missing == nullptr) {
            *missing = name;
        }
        return false;
    }
    slot = reinterpret_cast<Fn*>(sym);
    return true;
}
}  // namespace

bool resolve_real_libc(const char** missing) noexcept {
    *missing = nullptr;
    bool ok = true;
    ok &= resolve(g_real.open, "open", missing);
    ok &= resolve(g_real.openat, "openat", missing);
    ok &= resolve(g_real.close, "close", missing);
    ok &= resolve(g_real.close_range, "close_range", missing);
    ok &= resolve(g_real.read, "read", missing);
    ok &= resolve(g_real.write, "write", missing);
    ok &= resolve(g_real.pread, "pread64", missing);
    ok &= resolve(g_real.pwrite, "pwrite64", missing);
    ok &= resolve(g_real.readv, "readv", missing);
    ok &= resolve(g_real.writev, "writev", missing);
    ok &= resolve(g_real.preadv, "preadv64", missing);
    ok &= resolve(g_real.pwritev, "pwritev64", missing);
    ok &= resolve(g_real.preadv2, "preadv64v2", missing);
    ok &= resolve(g_real.pwritev2, "pwritev64v2", missing);
    ok &= resolve(g_real.lseek, "lseek64", missing);
    ok &= resolve(g_real.ftruncate, "ftruncate64", missing);
    ok &= resolve(g_real.truncate, "truncate64", missing);
    ok &= resolve(g_real.fstat, "fstat64", missing);
    ok &= resolve(g_real.stat, "stat64", missing);
    ok &= resolve(g_real.lstat, "lstat64", missing);
    ok &= resolve(g_real.fstatat, "fstatat64", missing);
    ok &= resolve(g_real.statx, "statx", missing);
    ok &= resolve(g_real.fallocate, "fallocate64", missing);
    ok &= resolve(g_real.posix_fallocate, "posix_fallocate64", missing);
    ok &= resolve(g_real.posix_fadvise, "posix_fadvise64", missing);
    ok &= resolve(g_real.sync_file_range, "sync_file_range", missing);
    ok &= resolve(g_real.dup, "dup", missing);
    ok &= resolve(g_real.dup2, "dup2", missing);
    ok &= resolve(g_real.dup3, "dup3", missing);
    ok &= resolve(g_real.fcntl, "fcntl64", missing);
    ok &= resolve(g_real.mmap, "mmap64", missing);
    ok &= resolve(g_real.copy_file_range, "copy_file_range", missing);
    ok &= resolve(g_real.sendfile, "sendfile64", missing);
    ok &= resolve(g_real.splice, "splice", missing);
    ok &= resolve(g_real.rename, "rename", missing);
    ok &= resolve(g_real.renameat, "renameat", missing);
    ok &= resolve(g_real.unlinkat, "unlinkat", missing);
    ok &= resolve(g_real.fsync, "fsync", missing);
    ok &= resolve(g_real.readlink, "readlink", missing);
    ok &= resolve(g_real.fopen, "fopen64", missing);
    ok &= resolve(g_real.dlopen, "dlopen", missing);
    ok &= resolve(g_real.system, "system", missing);
    return ok;
}

const RealLibc& real() noexcept {
    return g_real;
}

}  // namespace ephemeral_crypt::interpose
