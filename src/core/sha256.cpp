// SHA-256 through OpenSSL's EVP interface. The digest implementation is
// fetched once per process: OpenSSL 3 otherwise looks it up in the provider
// registry on every call, which costs more than hashing a 96-byte header.
#include "core/sha256.hpp"

#include <openssl/evp.h>

namespace ephemeral_crypt {

namespace {

EVP_MD* cached_sha256() noexcept {
    static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return md;
}

}  // namespace

bool sha256(const void* data, std::size_t len, std::uint8_t out[kSha256Bytes]) noexcept {
    EVP_MD* md = cached_sha256();
    unsigned int out_len = 0;
    return md != nullptr && EVP_Digest(data, len, out, &out_len, md, nullptr) == 1 &&
           out_len == kSha256Bytes;
}

}  // namespace ephemeral_crypt
