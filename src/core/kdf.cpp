// HKDF-SHA256 via EVP_KDF. The fetched KDF is cached per process because
// EVP_KDF_fetch walks the provider registry, which is far slower than the
// derivation itself; file opens derive one key each.
#include "core/kdf.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

namespace ephemeral_crypt {

namespace {

EVP_KDF* cached_hkdf() noexcept {
    static EVP_KDF* kdf = EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr);
    return kdf;
}

}  // namespace

bool hkdf_sha256(const std::uint8_t* input_key, std::size_t input_key_len, const std::uint8_t* salt,
                 std::size_t salt_len, const std::uint8_t* info, std::size_t info_len,
                 std::uint8_t* out, std::size_t out_len) noexcept {
    EVP_KDF* kdf = cached_hkdf();
    if (kdf == nullptr) {
        OPENSSL_cleanse(out, out_len);
        return false;
    }
    EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
    if (ctx == nullptr) {
        OPENSSL_cleanse(out, out_len);
        return false;
    }
    char digest[] = "SHA256";
    OSSL_PARAM params[5];
    std::size_t n = 0;
    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(input_key), input_key_len);
    if (salt_len > 0) {
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                        const_cast<std::uint8_t*>(salt), salt_len);
    }
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                    const_cast<std::uint8_t*>(info), info_len);
    params[n] = OSSL_PARAM_construct_end();
    const bool ok = EVP_KDF_derive(ctx, out, out_len, params) == 1;
    EVP_KDF_CTX_free(ctx);
    if (!ok) {
        OPENSSL_cleanse(out, out_len);
    }
    return ok;
}

}  // namespace ephemeral_crypt
