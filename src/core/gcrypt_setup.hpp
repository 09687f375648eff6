// libgcrypt's one-time set-up, shared by the ciphers that use it (XTS and
// GCM), and the error they throw when libgcrypt refuses something.
#pragma once

#include "core/no_postgres.hpp"

#include <gcrypt.h>

#include <cstddef>
#include <cstdint>

namespace ephemeral_crypt {

// XTS arrived in libgcrypt 1.8; its VAES/AVX2 path, which the throughput
// figures in bench/RESULTS.md rely on, in 1.9. GCM is older than both.
inline constexpr const char* kMinimumGcryptVersion = "1.8.0";

// Checks the version and finishes libgcrypt's initialisation unless another
// component of the process already did (Debian's postgres maps libgcrypt
// through libsystemd). Throws CryptoError if the library is too old.
void initialise_gcrypt();

// Throws CryptoError "<operation> failed: <libgcrypt's reason>".
[[noreturn]] void throw_gcrypt_error(const char* operation, gcry_error_t error);

// Opens an AES-256 handle in `mode` (GCRY_CIPHER_MODE_XTS, _GCM) and sets
// `key` in it: where every file's cipher handle is allocated and keyed,
// whichever its cipher. Throws CryptoError naming `cipher_name`.
gcry_cipher_hd_t open_keyed_handle(int mode, const std::uint8_t* key, std::size_t key_len,
                                   const char* cipher_name);

}  // namespace ephemeral_crypt
