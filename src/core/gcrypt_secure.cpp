// libgcrypt's initialisation and its secure allocator (see gcrypt_secure.hpp).
//
// gcry_set_allocation_handler takes five functions. Only the secure
// allocation goes to the arena; ordinary allocations stay with libgcrypt's
// own malloc. Reallocation and freeing see every pointer libgcrypt ever
// allocated, so they tell the arena's blocks from the heap's. libgcrypt
// wipes a handle itself before freeing it (gcry_cipher_close), and the arena
// wipes every block it gets back; either alone would leave nothing.
#include "core/gcrypt_secure.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "core/cipher_handle.hpp"
#include "core/crypto_error.hpp"
#include "core/secure_memory.hpp"

namespace ephemeral_crypt {

namespace {

void* secure_allocate(std::size_t bytes) {
    return SecureArena::process().allocate(bytes);
}

int is_secure(const void* p) {
    return SecureArena::process().contains(p) ? 1 : 0;
}

void* reallocate(void* p, std::size_t bytes) {
    SecureArena& arena = SecureArena::process();
    if (!arena.contains(p)) {
        return std::realloc(p, bytes);
    }
    // A block of the arena stays in the arena.
    const std::size_t old_bytes = arena.block_size(p);
    void* moved = arena.allocate(bytes);
    if (moved != nullptr) {
        std::memcpy(moved, p, old_bytes < bytes ? old_bytes : bytes);
        arena.release(p);
    }
    return moved;
}

void release(void* p) {
    SecureArena& arena = SecureArena::process();
    if (arena.contains(p)) {
        arena.release(p);
    } else {
        std::free(p);
    }
}

}  // namespace

void initialise_gcrypt() {
    static std::once_flag once;
    static std::string problem;
    std::call_once(once, [] {
        if (gcry_check_version(kMinimumGcryptVersion) == nullptr) {
            problem = std::string("libgcrypt ") + gcry_check_version(nullptr) +
                      " is older than the required " + kMinimumGcryptVersion;
            return;
        }
        if (gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P) != 0) {
            // Debian's postgres maps libgcrypt through libsystemd, which
            // initialises it only for journal sealing, never in the server.
            problem =
                "libgcrypt was initialised by another component of this process first, so its "
                "cipher state cannot be placed in locked memory";
            return;
        }
        if (gcry_fips_mode_active()) {
            problem =
                "libgcrypt runs in FIPS mode, which ignores custom allocators, so its "
                "cipher state cannot be placed in locked memory";
            return;
        }
        gcry_set_allocation_handler(nullptr, secure_allocate, is_secure, reallocate, release);
        gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    });
    if (!problem.empty()) {
        throw CryptoError(problem);
    }
}

gcry_cipher_hd_t open_secure_cipher(int algorithm, int mode) {
    initialise_gcrypt();
    gcry_cipher_hd_t handle = nullptr;
    const gcry_error_t error = gcry_cipher_open(&handle, algorithm, mode, GCRY_CIPHER_SECURE);
    if (gpg_err_code(error) == GPG_ERR_ENOMEM) {
        throw LockedMemoryExhausted(
            "no locked memory left for a cipher handle (RLIMIT_MEMLOCK is exhausted)");
    }
    if (error != 0) {
        throw CryptoError(std::string("opening a cipher handle failed: ") + gcry_strerror(error));
    }
    // The handle is the start of libgcrypt's block, give or take an
    // alignment offset: if it is in the arena, so is all of its state.
    if (!SecureArena::process().contains(handle)) {
        gcry_cipher_close(handle);
        throw CryptoError("libgcrypt placed a cipher handle outside locked memory");
    }
    return handle;
}

gcry_cipher_hd_t open_keyed_handle(int mode, const std::uint8_t* key, std::size_t key_len,
                                   const char* cipher_name) {
    gcry_cipher_hd_t handle = open_secure_cipher(GCRY_CIPHER_AES256, mode);
    const gcry_error_t error = gcry_cipher_setkey(handle, key, key_len);
    if (error != 0) {
        gcry_cipher_close(handle);
        throw_gcrypt_error((std::string("setting the ") + cipher_name + " key").c_str(), error);
    }
    return handle;
}

void CloseCipherHandle::operator()(gcry_cipher_handle* handle) const noexcept {
    gcry_cipher_close(handle);
}

void throw_gcrypt_error(const char* operation, gcry_error_t error) {
    throw CryptoError(std::string(operation) + " failed: " + gcry_strerror(error));
}

}  // namespace ephemeral_crypt
