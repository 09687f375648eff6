// Instance key creation and the derivations that use it. The secrets live in
// one sodium_malloc block so a single mprotect covers both the master key and
// the header-MAC key derived from it. libsodium locks that block and marks it
// non-dumpable but ignores a failure of either; keep_locked() checks both,
// and locks the block again in every child the process forks.
//
// OpenSSL computes the derivations and MACs in contexts of its own, which it
// wipes when they are freed (OPENSSL_clear_free, OPENSSL_cleanse); the one-shot
// calls used here (EVP_KDF_derive on a context freed at once, HMAC) keep
// none alive between calls. What their compression functions leave on the
// stack is overwritten after each call (burn_stack).
#include "core/instance_key.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include <cstring>
#include <new>

#include "core/crypto_error.hpp"
#include "core/hex.hpp"
#include "core/kdf.hpp"
#include "core/secure_memory.hpp"

namespace ephemeral_crypt {

namespace {

constexpr char kKeyIdInfo[] = "ephemeral_crypt key-id v1";
constexpr char kHeaderMacInfo[] = "ephemeral_crypt header-mac v1";
constexpr char kFileKeyInfoPrefix[] = "ephemeral_crypt file-key v1 ";
constexpr char kAuthenticatedFileKeyInfoPrefix[] = "ephemeral_crypt file-key v2 aes-256-gcm ";

}  // namespace

std::string key_id_to_hex(const KeyId& id) {
    return to_hex(id.data(), id.size());
}

std::unique_ptr<InstanceKey> InstanceKey::generate() {
    if (sodium_init() < 0) {
        throw CryptoError("libsodium could not be initialised");
    }
    auto* secrets = static_cast<Secrets*>(sodium_malloc(sizeof(Secrets)));
    if (secrets == nullptr) {
        throw CryptoError("could not allocate guarded memory for the instance key");
    }
    if (const int error = keep_locked(secrets, sizeof(Secrets)); error != 0) {
        sodium_free(secrets);
        throw CryptoError(std::string("could not lock the instance key in memory (") +
                          std::strerror(error) + "); RLIMIT_MEMLOCK may be too low");
    }
    randombytes_buf(secrets->master, sizeof(secrets->master));
    const bool mac_key_derived = hkdf_sha256(secrets->master, sizeof(secrets->master), nullptr, 0,
                                             reinterpret_cast<const std::uint8_t*>(kHeaderMacInfo),
                                             sizeof(kHeaderMacInfo) - 1, secrets->header_mac_key,
                                             sizeof(secrets->header_mac_key));
    burn_stack();
    if (!mac_key_derived) {
        forget_locked(secrets);
        sodium_free(secrets);
        throw CryptoError("HKDF-SHA256 failed while deriving the header MAC key");
    }
    KeyId id{};
    const bool id_derived = hkdf_sha256(secrets->master, sizeof(secrets->master), nullptr, 0,
                                        reinterpret_cast<const std::uint8_t*>(kKeyIdInfo),
                                        sizeof(kKeyIdInfo) - 1, id.data(), id.size());
    burn_stack();
    if (!id_derived) {
        forget_locked(secrets);
        sodium_free(secrets);
        throw CryptoError("HKDF-SHA256 failed while deriving the key id");
    }
    if (sodium_mprotect_readonly(secrets) != 0) {
        forget_locked(secrets);
        sodium_free(secrets);
        throw CryptoError("could not make the instance key read-only");
    }
    std::unique_ptr<InstanceKey> key(new InstanceKey(secrets));
    key->id_ = id;
    return key;
}

InstanceKey::InstanceKey(Secrets* secrets)
    : secrets_(secrets), created_at_(std::chrono::system_clock::now()) {}

InstanceKey::~InstanceKey() {
    // sodium_free makes the block writable, zeroes it and unmaps it.
    forget_locked(secrets_);
    sodium_free(secrets_);
}

bool InstanceKey::derive(const char* info_prefix, std::size_t prefix_len, const std::uint8_t* nonce,
                         std::size_t nonce_len, Category category, std::uint8_t* out,
                         std::size_t out_len) const noexcept {
    char info[96];
    const std::string_view name = category_name(category);
    if (prefix_len + name.size() > sizeof(info)) {
        return false;
    }
    std::memcpy(info, info_prefix, prefix_len);
    std::memcpy(info + prefix_len, name.data(), name.size());
    const bool derived = hkdf_sha256(secrets_->master, sizeof(secrets_->master), nonce, nonce_len,
                                     reinterpret_cast<const std::uint8_t*>(info),
                                     prefix_len + name.size(), out, out_len);
    burn_stack();
    return derived;
}

bool InstanceKey::derive_file_key(const std::uint8_t* nonce, std::size_t nonce_len,
                                  Category category,
                                  std::uint8_t out[kFileKeyBytes]) const noexcept {
    return derive(kFileKeyInfoPrefix, sizeof(kFileKeyInfoPrefix) - 1, nonce, nonce_len, category,
                  out, kFileKeyBytes);
}

bool InstanceKey::derive_authenticated_file_key(
    const std::uint8_t* nonce, std::size_t nonce_len, Category category,
    std::uint8_t out[kAuthenticatedFileKeyBytes]) const noexcept {
    return derive(kAuthenticatedFileKeyInfoPrefix, sizeof(kAuthenticatedFileKeyInfoPrefix) - 1,
                  nonce, nonce_len, category, out, kAuthenticatedFileKeyBytes);
}

bool InstanceKey::header_mac(const std::uint8_t* data, std::size_t len,
                             std::uint8_t out[kMacBytes]) const noexcept {
    unsigned int out_len = 0;
    const unsigned char* result = HMAC(EVP_sha256(), secrets_->header_mac_key,
                                       sizeof(secrets_->header_mac_key), data, len, out, &out_len);
    burn_stack();
    return result != nullptr && out_len == kMacBytes;
}

}  // namespace ephemeral_crypt
