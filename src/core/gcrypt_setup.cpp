// libgcrypt initialisation (see gcrypt_setup.hpp). Its secure memory pool is
// not used: key schedules live in cipher handles, which gcry_cipher_close
// wipes.
#include "core/gcrypt_setup.hpp"

#include <mutex>
#include <string>

#include "core/crypto_error.hpp"

namespace ephemeral_crypt {

void initialise_gcrypt() {
    static std::once_flag once;
    static bool usable = false;
    std::call_once(once, [] {
        if (gcry_check_version(kMinimumGcryptVersion) == nullptr) {
            return;
        }
        if (gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P) == 0) {
            gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
            gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
        }
        usable = true;
    });
    if (!usable) {
        throw CryptoError(std::string("libgcrypt ") + gcry_check_version(nullptr) +
                          " is older than the required " + kMinimumGcryptVersion);
    }
}

void throw_gcrypt_error(const char* operation, gcry_error_t error) {
    throw CryptoError(std::string(operation) + " failed: " + gcry_strerror(error));
}

gcry_cipher_hd_t open_keyed_handle(int mode, const std::uint8_t* key, std::size_t key_len,
                                   const char* cipher_name) {
    initialise_gcrypt();
    gcry_cipher_hd_t handle = nullptr;
    gcry_error_t error = gcry_cipher_open(&handle, GCRY_CIPHER_AES256, mode, 0);
    if (error != 0) {
        throw_gcrypt_error((std::string("opening an ") + cipher_name + " handle").c_str(), error);
    }
    error = gcry_cipher_setkey(handle, key, key_len);
    if (error != 0) {
        gcry_cipher_close(handle);
        throw_gcrypt_error((std::string("setting the ") + cipher_name + " key").c_str(), error);
    }
    return handle;
}

}  // namespace ephemeral_crypt
