// AES-256-XTS (IEEE 1619) over 4096-byte data units, through libgcrypt, whose
// XTS uses VAES/AVX2 and AES-NI when present. One object holds one cipher
// handle keyed once per file, in locked, non-dumpable memory
// (core/gcrypt_secure.hpp); per-unit calls only reset the tweak, so they
// never allocate. Throws only from the constructor: LockedMemoryExhausted
// when no locked memory is left, CryptoError otherwise.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>

#include "core/cipher_handle.hpp"
#include "core/crypto_error.hpp"
#include "core/instance_key.hpp"

namespace ephemeral_crypt {

inline constexpr std::size_t kDataUnitBytes = 4096;
inline constexpr std::size_t kXtsMinimumBytes = 16;

class XtsCipher : public KeyedCipher {
  public:
    // Throws CryptoError if libgcrypt is unusable or rejects the key, and
    // LockedMemoryExhausted if no locked memory is left for the handle. The
    // key should be in locked memory too (SecureBytes): it is read, never kept.
    explicit XtsCipher(const std::uint8_t key[kFileKeyBytes]);

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
    bool transform_unit(bool encrypt, std::uint64_t unit_index, const std::uint8_t* in,
                        std::uint8_t* out, std::size_t len) noexcept;
    bool run(bool encrypt, std::uint64_t unit_index, const std::uint8_t* in, std::uint8_t* out,
             std::size_t len) noexcept;
    bool short_unit(std::uint64_t unit_index, const std::uint8_t* in, std::uint8_t* out,
                    std::size_t len) noexcept;
};

}  // namespace ephemeral_crypt
