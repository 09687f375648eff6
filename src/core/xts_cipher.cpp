// libgcrypt glue for AES-256-XTS. libgcrypt is used for the bulk cipher
// because its XTS runs on VAES/AVX2 where the CPU has it, while OpenSSL 3.0's
// stays on 128-bit AES-NI, and because re-setting the tweak is a 16-byte copy
// rather than OpenSSL's full parameter negotiation (about 85 ns per unit).
// Both produce the same IEEE 1619 ciphertext; the unit tests check that.
#include "core/xts_cipher.hpp"

#include <gcrypt.h>
#include <sodium.h>

#include <cstring>

#include "core/gcrypt_secure.hpp"

namespace ephemeral_crypt {

namespace {

constexpr std::uint64_t kShortUnitTweakBit = std::uint64_t{1} << 63;

inline void tweak_for(std::uint64_t unit_index, std::uint8_t tweak[16]) noexcept {
    for (int i = 0; i < 8; ++i) {
        tweak[i] = static_cast<std::uint8_t>(unit_index >> (8 * i));
    }
    std::memset(tweak + 8, 0, 8);
}

// Keys a handle, after the check libgcrypt makes only in FIPS mode: IEEE
// 1619 and FIPS IG A.9 require the key's two halves to be distinct.
gcry_cipher_hd_t open_xts_handle(const std::uint8_t key[kFileKeyBytes]) {
    constexpr std::size_t half = kFileKeyBytes / 2;
    if (sodium_memcmp(key, key + half, half) == 0) {
        throw CryptoError("setting the AES-256-XTS key failed: its two halves are equal");
    }
    return open_keyed_handle(GCRY_CIPHER_MODE_XTS, key, kFileKeyBytes, "AES-256-XTS");
}

}  // namespace

XtsCipher::XtsCipher(const std::uint8_t key[kFileKeyBytes]) : KeyedCipher(open_xts_handle(key)) {}

bool XtsCipher::run(bool encrypt, std::uint64_t unit_index, const std::uint8_t* in,
                    std::uint8_t* out, std::size_t len) noexcept {
    std::uint8_t tweak[16];
    tweak_for(unit_index, tweak);
    if (gcry_cipher_setiv(handle(), tweak, sizeof(tweak)) != 0) {
        return false;
    }
    // In place is libgcrypt's (nullptr, 0) form; out == in is not allowed.
    const std::uint8_t* source = in == out ? nullptr : in;
    const std::size_t source_len = in == out ? 0 : len;
    const gcry_error_t error = encrypt
                                   ? gcry_cipher_encrypt(handle(), out, len, source, source_len)
                                   : gcry_cipher_decrypt(handle(), out, len, source, source_len);
    return error == 0;
}

bool XtsCipher::short_unit(std::uint64_t unit_index, const std::uint8_t* in, std::uint8_t* out,
                           std::size_t len) noexcept {
    std::uint8_t keystream[kXtsMinimumBytes] = {};
    if (!run(true, unit_index | kShortUnitTweakBit, keystream, keystream, sizeof(keystream))) {
        return false;
    }
    for (std::size_t i = 0; i < len; ++i) {
        out[i] = in[i] ^ keystream[i];
    }
    return true;
}

bool XtsCipher::transform_unit(bool encrypt, std::uint64_t unit_index, const std::uint8_t* in,
                               std::uint8_t* out, std::size_t len) noexcept {
    if (len == 0 || len > kDataUnitBytes) {
        return false;
    }
    if (len < kXtsMinimumBytes) {
        return short_unit(unit_index, in, out, len);  // XOR: its own inverse
    }
    return run(encrypt, unit_index, in, out, len);
}

bool XtsCipher::encrypt_unit(std::uint64_t unit_index, const std::uint8_t* in, std::uint8_t* out,
                             std::size_t len) noexcept {
    return transform_unit(true, unit_index, in, out, len);
}

bool XtsCipher::decrypt_unit(std::uint64_t unit_index, const std::uint8_t* in, std::uint8_t* out,
                             std::size_t len) noexcept {
    return transform_unit(false, unit_index, in, out, len);
}

}  // namespace ephemeral_crypt
