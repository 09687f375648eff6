// EVP glue for AES-256-XTS. The cipher is fetched once per process: fetching
// walks the provider registry and would dominate small-unit throughput.
#include "core/xts_cipher.hpp"

#include <openssl/evp.h>

#include <cstring>

#include "core/crypto_error.hpp"

namespace ephemeral_crypt {

namespace {

const EVP_CIPHER* cached_xts() noexcept {
    static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-XTS", nullptr);
    return cipher;
}

constexpr std::uint64_t kShortUnitTweakBit = std::uint64_t{1} << 63;

inline void tweak_for(std::uint64_t unit_index, std::uint8_t tweak[16]) noexcept {
    for (int i = 0; i < 8; ++i) {
        tweak[i] = static_cast<std::uint8_t>(unit_index >> (8 * i));
    }
    std::memset(tweak + 8, 0, 8);
}

}  // namespace

XtsCipher::XtsCipher(const std::uint8_t key[kFileKeyBytes]) {
    const EVP_CIPHER* cipher = cached_xts();
    if (cipher == nullptr) {
        throw_openssl_error("fetching AES-256-XTS");
    }
    encrypt_ctx_ = EVP_CIPHER_CTX_new();
    decrypt_ctx_ = EVP_CIPHER_CTX_new();
    if (encrypt_ctx_ == nullptr || decrypt_ctx_ == nullptr) {
        EVP_CIPHER_CTX_free(encrypt_ctx_);
        EVP_CIPHER_CTX_free(decrypt_ctx_);
        throw_openssl_error("allocating a cipher context");
    }
    std::uint8_t zero_tweak[16] = {};
    if (EVP_CipherInit_ex2(encrypt_ctx_, cipher, key, zero_tweak, 1, nullptr) != 1 ||
        EVP_CipherInit_ex2(decrypt_ctx_, cipher, key, zero_tweak, 0, nullptr) != 1) {
        EVP_CIPHER_CTX_free(encrypt_ctx_);
        EVP_CIPHER_CTX_free(decrypt_ctx_);
        throw_openssl_error("setting the AES-256-XTS key");
    }
}

XtsCipher::~XtsCipher() {
    // EVP_CIPHER_CTX_free cleanses the key schedule before freeing it.
    EVP_CIPHER_CTX_free(encrypt_ctx_);
    EVP_CIPHER_CTX_free(decrypt_ctx_);
}

bool XtsCipher::run(EVP_CIPHER_CTX* ctx, std::uint64_t unit_index, const std::uint8_t* in,
                    std::uint8_t* out, std::size_t len) noexcept {
    std::uint8_t tweak[16];
    tweak_for(unit_index, tweak);
    // Re-initialising with only an IV keeps the key schedule and allocates nothing.
    if (EVP_CipherInit_ex2(ctx, nullptr, nullptr, tweak, -1, nullptr) != 1) {
        return false;
    }
    int out_len = 0;
    if (EVP_CipherUpdate(ctx, out, &out_len, in, static_cast<int>(len)) != 1) {
        return false;
    }
    return static_cast<std::size_t>(out_len) == len;
}

bool XtsCipher::short_unit(std::uint64_t unit_index, const std::uint8_t* in, std::uint8_t* out,
                           std::size_t len) noexcept {
    std::uint8_t zeros[kXtsMinimumBytes] = {};
    std::uint8_t keystream[kXtsMinimumBytes];
    if (!run(encrypt_ctx_, unit_index | kShortUnitTweakBit, zeros, keystream, sizeof(keystream))) {
        return false;
    }
    for (std::size_t i = 0; i < len; ++i) {
        out[i] = in[i] ^ keystream[i];
    }
    return true;
}

bool XtsCipher::encrypt_unit(std::uint64_t unit_index, const std::uint8_t* in, std::uint8_t* out,
                             std::size_t len) noexcept {
    if (len == 0 || len > kDataUnitBytes) {
        return false;
    }
    if (len < kXtsMinimumBytes) {
        return short_unit(unit_index, in, out, len);
    }
    return run(encrypt_ctx_, unit_index, in, out, len);
}

bool XtsCipher::decrypt_unit(std::uint64_t unit_index, const std::uint8_t* in, std::uint8_t* out,
                             std::size_t len) noexcept {
    if (len == 0 || len > kDataUnitBytes) {
        return false;
    }
    if (len < kXtsMinimumBytes) {
        return short_unit(unit_index, in, out, len);
    }
    return run(decrypt_ctx_, unit_index, in, out, len);
}

}  // namespace ephemeral_crypt
