// The raw libgcrypt AES-256-XTS that engine_bench and gcm_bench measure as a
// reference: a plain handle under a random key, outside locked memory and
// without the engine's checks, so that it times the cipher alone.
#pragma once

#include <gcrypt.h>
#include <sodium.h>

#include <cstdint>

namespace ephemeral_crypt::bench {

// The keyed handle, or null when libgcrypt refuses AES-256-XTS. The caller
// closes it.
inline gcry_cipher_hd_t open_raw_gcrypt_xts() {
    std::uint8_t key[64];
    randombytes_buf(key, sizeof(key));
    gcry_cipher_hd_t handle = nullptr;
    if (gcry_cipher_open(&handle, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_XTS, 0) != 0 ||
        gcry_cipher_setkey(handle, key, sizeof(key)) != 0) {
        gcry_cipher_close(handle);
        return nullptr;
    }
    return handle;
}

}  // namespace ephemeral_crypt::bench
