// AES-256-XTS (IEEE 1619) over 4096-byte data units, through OpenSSL EVP so
// AES-NI and VAES are used when present. One object holds an encrypt and a
// decrypt context set up once per file; per-unit calls only reset the tweak,
// so they never allocate.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>

#include "core/crypto_error.hpp"
#include "core/instance_key.hpp"

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace ephemeral_crypt {

inline constexpr std::size_t kDataUnitBytes = 4096;
inline constexpr std::size_t kXtsMinimumBytes = 16;

class XtsCipher {
  public:
    // Throws CryptoError if OpenSSL rejects the key (for instance equal halves).
    explicit XtsCipher(const std::uint8_t key[kFileKeyBytes]);
    ~XtsCipher();
    XtsCipher(const XtsCipher&) = delete;
    XtsCipher& operator=(const XtsCipher&) = delete;

    // Encrypts or decrypts one data unit of 1..kDataUnitBytes bytes; `in` and
    // `out` may be the same buffer. The tweak is the unit index, little-endian.
    // Units shorter than one AES block cannot be XTS-encrypted; they use a
    // keystream taken from XTS under a tweak with the top bit set, which no
    // real unit index reaches.
    bool encrypt_unit(std::uint64_t unit_index, const std::uint8_t* in, std::uint8_t* out,
                      std::size_t len) noexcept;
    bool decrypt_unit(std::uint64_t unit_index, const std::uint8_t* in, std::uint8_t* out,
                      std::size_t len) noexcept;

  private:
    bool run(EVP_CIPHER_CTX* ctx, std::uint64_t unit_index, const std::uint8_t* in,
             std::uint8_t* out, std::size_t len) noexcept;
    bool short_unit(std::uint64_t unit_index, const std::uint8_t* in, std::uint8_t* out,
                    std::size_t len) noexcept;

    EVP_CIPHER_CTX* encrypt_ctx_ = nullptr;
    EVP_CIPHER_CTX* decrypt_ctx_ = nullptr;
};

}  // namespace ephemeral_crypt
