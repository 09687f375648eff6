// libgcrypt glue for AES-256-GCM. The tag is always the full 16 bytes, and
// the nonce always 96 bits, the length SP 800-38D recommends, which becomes
// the counter block's prefix as it is (other lengths are hashed first).
// libgcrypt buffers a partial last block itself and closes the hash when the
// tag is taken, so one encrypt or decrypt call per unit is the whole job.
#include "core/gcm_cipher.hpp"

#include <gcrypt.h>

#include "core/gcrypt_secure.hpp"

namespace ephemeral_crypt {

namespace {

// libgcrypt's in-place form is (nullptr, 0) for the input; out == in is not
// allowed.
const std::uint8_t* source_of(const std::uint8_t* in, const std::uint8_t* out) noexcept {
    return in == out ? nullptr : in;
}
std::size_t source_length(const std::uint8_t* in, const std::uint8_t* out,
                          std::size_t len) noexcept {
    return in == out ? 0 : len;
}

}  // namespace

GcmCipher::GcmCipher(const std::uint8_t key[kGcmKeyBytes]) {
    handle_ = open_keyed_handle(GCRY_CIPHER_MODE_GCM, key, kGcmKeyBytes, "AES-256-GCM");
}

GcmCipher::~GcmCipher() {
    // gcry_cipher_close wipes the key schedule and GHASH tables before freeing them.
    gcry_cipher_close(handle_);
}

bool GcmCipher::start(const std::uint8_t nonce[kGcmNonceBytes], const std::uint8_t* aad,
                      std::size_t aad_len) noexcept {
    // setiv resets the handle's GCM state, including a failed tag check's.
    return gcry_cipher_setiv(handle_, nonce, kGcmNonceBytes) == 0 &&
           (aad_len == 0 || gcry_cipher_authenticate(handle_, aad, aad_len) == 0);
}

bool GcmCipher::seal(const std::uint8_t nonce[kGcmNonceBytes], const std::uint8_t* aad,
                     std::size_t aad_len, const std::uint8_t* in, std::uint8_t* out,
                     std::size_t len, std::uint8_t tag[kGcmTagBytes]) noexcept {
    if (!start(nonce, aad, aad_len)) {
        return false;
    }
    if (len > 0) {
        if (gcry_cipher_encrypt(handle_, out, len, source_of(in, out),
                                source_length(in, out, len)) != 0) {
            return false;
        }
    }
    return gcry_cipher_gettag(handle_, tag, kGcmTagBytes) == 0;
}

bool GcmCipher::open(const std::uint8_t nonce[kGcmNonceBytes], const std::uint8_t* aad,
                     std::size_t aad_len, const std::uint8_t* in, std::uint8_t* out,
                     std::size_t len, const std::uint8_t tag[kGcmTagBytes]) noexcept {
    if (!start(nonce, aad, aad_len)) {
        return false;
    }
    if (len > 0) {
        if (gcry_cipher_decrypt(handle_, out, len, source_of(in, out),
                                source_length(in, out, len)) != 0) {
            return false;
        }
    }
    return gcry_cipher_checktag(handle_, tag, kGcmTagBytes) == 0;
}

}  // namespace ephemeral_crypt
