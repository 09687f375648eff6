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

}  // namespace ephemeral_crypt
