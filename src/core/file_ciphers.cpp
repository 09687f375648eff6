// Per-file cipher state (see file_ciphers.hpp).
#include "core/file_ciphers.hpp"

#include <sodium.h>

#include <new>

namespace ephemeral_crypt {

std::unique_ptr<XtsCipher> make_xts_file_cipher(const InstanceKey& key,
                                                const FileHeader& header) noexcept {
    std::uint8_t file_key[kFileKeyBytes];
    std::unique_ptr<XtsCipher> cipher;
    if (key.derive_file_key(header.nonce.data(), header.nonce.size(), header.category, file_key)) {
        try {
            cipher = std::make_unique<XtsCipher>(file_key);
        } catch (...) {
        }
    }
    sodium_memzero(file_key, sizeof(file_key));
    return cipher;
}

std::unique_ptr<AuthenticatedUnits> make_gcm_file_units(const InstanceKey& key,
                                                        const FileHeader& header) noexcept {
    std::uint8_t file_key[kAuthenticatedFileKeyBytes];
    std::unique_ptr<AuthenticatedUnits> units;
    if (key.derive_authenticated_file_key(header.nonce.data(), header.nonce.size(), header.category,
                                          file_key)) {
        try {
            units = std::make_unique<AuthenticatedUnits>(std::make_unique<GcmCipher>(file_key),
                                                         header.nonce);
        } catch (...) {
        }
    }
    sodium_memzero(file_key, sizeof(file_key));
    return units;
}

}  // namespace ephemeral_crypt
