// Formats OpenSSL's error queue into CryptoError messages for set-up failures.
#include "core/crypto_error.hpp"

#include <openssl/err.h>

namespace ephemeral_crypt {

void throw_openssl_error(const char* operation) {
    std::string message = std::string(operation) + " failed";
    unsigned long code = ERR_get_error();
    if (code != 0) {
        char buffer[256];
        ERR_error_string_n(code, buffer, sizeof(buffer));
        message += ": ";
        message += buffer;
    }
    ERR_clear_error();
    throw CryptoError(message);
}

}  // namespace ephemeral_crypt
