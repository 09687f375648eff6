// The instance key: 256 random bits created once per postmaster, held in
// libsodium guarded memory (locked, guard pages, excluded from core dumps,
// read-only once written), locked again in every forked child, and wiped
// when the process lets go of it. Callers get a printable fingerprint, the
// creation time and derived keys; the key bytes themselves never leave this
// class.
#pragma once

#include "core/no_postgres.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/category.hpp"

namespace ephemeral_crypt {

inline constexpr std::size_t kInstanceKeyBytes = 32;
inline constexpr std::size_t kKeyIdBytes = 8;
inline constexpr std::size_t kFileKeyBytes = 64;               // AES-256-XTS takes two 256-bit keys
inline constexpr std::size_t kAuthenticatedFileKeyBytes = 32;  // AES-256-GCM
inline constexpr std::size_t kMacBytes = 32;

using KeyId = std::array<std::uint8_t, kKeyIdBytes>;

std::string key_id_to_hex(const KeyId& id);

class InstanceKey {
  public:
    // Draws a fresh key from the OS CSPRNG. Throws CryptoError if libsodium
    // cannot initialise or guarded memory cannot be had.
    static std::unique_ptr<InstanceKey> generate();

    ~InstanceKey();
    InstanceKey(const InstanceKey&) = delete;
    InstanceKey& operator=(const InstanceKey&) = delete;

    const KeyId& id() const noexcept { return id_; }
    std::string id_hex() const { return key_id_to_hex(id_); }
    std::chrono::system_clock::time_point created_at() const noexcept { return created_at_; }

    // Per-file XTS key: HKDF-SHA256(instance key, salt = file nonce,
    // info = format version and category), written straight into `out`,
    // which should be locked memory (SecureBytes).
    bool derive_file_key(const std::uint8_t* nonce, std::size_t nonce_len, Category category,
                         std::uint8_t out[kFileKeyBytes]) const noexcept;
    // Per-file AES-256-GCM key (format v2), under its own info label, so
    // it shares nothing with an XTS key for the same nonce.
    bool derive_authenticated_file_key(const std::uint8_t* nonce, std::size_t nonce_len,
                                       Category category,
                                       std::uint8_t out[kAuthenticatedFileKeyBytes]) const noexcept;

    // HMAC-SHA256 under a header-MAC key derived from the instance key.
    bool header_mac(const std::uint8_t* data, std::size_t len,
                    std::uint8_t out[kMacBytes]) const noexcept;

    // Test builds only: they let a test search logs and files for the key
    // and probe its memory. They are defined in instance_key_test_hooks.cpp,
    // which is empty unless EPHEMERAL_CRYPT_TEST_HOOKS is defined, so a
    // production build that calls them does not link.
    void copy_key_bytes_for_testing(std::uint8_t out[kInstanceKeyBytes]) const noexcept;
    const void* secrets_address_for_testing() const noexcept;

  private:
    bool derive(const char* info_prefix, std::size_t prefix_len, const std::uint8_t* nonce,
                std::size_t nonce_len, Category category, std::uint8_t* out,
                std::size_t out_len) const noexcept;

    struct Secrets {
        std::uint8_t master[kInstanceKeyBytes];
        std::uint8_t header_mac_key[kMacBytes];
    };

    explicit InstanceKey(Secrets* secrets);

    Secrets* secrets_;  // sodium_malloc'd, read-only after construction
    KeyId id_{};
    std::chrono::system_clock::time_point created_at_;
};

}  // namespace ephemeral_crypt
