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

GcmCipher::GcmCipher(const std::uint8_t key[kGcmKeyBytes])
    : KeyedCipher(open_keyed_handle(GCRY_CIPHER_MODE_GCM, key, kGcmKeyBytes, "AES-256-GCM")) {}

bool GcmCipher::transform(bool encrypt, const std::uint8_t nonce[kGcmNonceBytes],
                          const std::uint8_t* aad, std::size_t aad_len, const std::uint8_t* in,
                          std::uint8_t* out, std::size_t len) noexcept {
    // setiv resets the handle's GCM state, including a failed tag check's.
    if (gcry_cipher_setiv(handle(), nonce, kGcmNonceBytes) != 0 ||
        (aad_len != 0 && gcry_cipher_authenticate(handle(), aad, aad_len) != 0)) {
        return false;
    }
    if (len == 0) {
        return true;
    }
    const std::uint8_t* source = source_of(in, out);
    const std::size_t source_len = source_length(in, out, len);
    const gcry_error_t error = encrypt
                                   ? gcry_cipher_encrypt(handle(), out, len, source, source_len)
                                   : gcry_cipher_decrypt(handle(), out, len, source, source_len);
    return error == 0;
}

bool GcmCipher::seal(const std::uint8_t nonce[kGcmNonceBytes], const std::uint8_t* aad,
                     std::size_t aad_len, const std::uint8_t* in, std::uint8_t* out,
                     std::size_t len, std::uint8_t tag[kGcmTagBytes]) noexcept {
    return transform(true, nonce, aad, aad_len, in, out, len) &&
           gcry_cipher_gettag(handle(), tag, kGcmTagBytes) == 0;
}

bool GcmCipher::open(const std::uint8_t nonce[kGcmNonceBytes], const std::uint8_t* aad,
                     std::size_t aad_len, const std::uint8_t* in, std::uint8_t* out,
                     std::size_t len, const std::uint8_t tag[kGcmTagBytes]) noexcept {
    return transform(false, nonce, aad, aad_len, in, out, len) &&
           gcry_cipher_checktag(handle(), tag, kGcmTagBytes) == 0;
}

}  // namespace ephemeral_crypt
