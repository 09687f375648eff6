// AES-256-GCM (NIST SP 800-38D) through libgcrypt, which measured faster
// than OpenSSL at the format's shape (bench/gcm_bench.cpp). One object holds
// one cipher handle keyed once per file; each call sets a 96-bit nonce,
// authenticates the additional data and seals or opens one buffer, so no
// call allocates. Throws CryptoError only from the constructor.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>

#include "core/cipher_handle.hpp"
#include "core/crypto_error.hpp"

namespace ephemeral_crypt {

inline constexpr std::size_t kGcmKeyBytes = 32;
inline constexpr std::size_t kGcmNonceBytes = 12;
inline constexpr std::size_t kGcmTagBytes = 16;

class GcmCipher : public KeyedCipher {
  public:
    // Throws CryptoError if libgcrypt is unusable or rejects the key.
    explicit GcmCipher(const std::uint8_t key[kGcmKeyBytes]);

    // Encrypts `len` bytes (0 allowed: the tag then authenticates `aad`
    // alone) from `in` into `out`, which may be the same buffer, and writes
    // the 16-byte tag.
    bool seal(const std::uint8_t nonce[kGcmNonceBytes], const std::uint8_t* aad,
              std::size_t aad_len, const std::uint8_t* in, std::uint8_t* out, std::size_t len,
              std::uint8_t tag[kGcmTagBytes]) noexcept;

    // Decrypts `len` bytes from `in` into `out`, which may be the same
    // buffer, and checks the tag. False when the tag does not verify: `out`
    // then holds unauthenticated bytes, which the caller must wipe and never
    // hand on.
    bool open(const std::uint8_t nonce[kGcmNonceBytes], const std::uint8_t* aad,
              std::size_t aad_len, const std::uint8_t* in, std::uint8_t* out, std::size_t len,
              const std::uint8_t tag[kGcmTagBytes]) noexcept;

  private:
    // Sets the nonce, authenticates `aad` and encrypts or decrypts the
    // buffer: everything but taking or checking the tag.
    bool transform(bool encrypt, const std::uint8_t nonce[kGcmNonceBytes], const std::uint8_t* aad,
                   std::size_t aad_len, const std::uint8_t* in, std::uint8_t* out,
                   std::size_t len) noexcept;
};

}  // namespace ephemeral_crypt
