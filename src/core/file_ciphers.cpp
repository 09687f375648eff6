// Per-file cipher state (see file_ciphers.hpp).
#include "core/file_ciphers.hpp"

#include <new>

#include "core/crypto_error.hpp"
#include "core/secure_memory.hpp"

namespace ephemeral_crypt {

namespace {

// Derives a key of `Bytes` into locked memory and builds `make(key)` from
// it; the block is wiped when it goes back, on every path.
template <std::size_t Bytes, typename Derive, typename Make>
auto with_locked_key(Derive derive, Make make, CipherSetupFailure* failure) noexcept
    -> decltype(make(static_cast<const std::uint8_t*>(nullptr))) {
    *failure = CipherSetupFailure::None;
    SecureBytes file_key(Bytes);
    if (!file_key) {
        *failure = CipherSetupFailure::NoLockedMemory;
        return nullptr;
    }
    if (!derive(file_key.data())) {
        *failure = CipherSetupFailure::Refused;
        return nullptr;
    }
    try {
        return make(file_key.data());
    } catch (const LockedMemoryExhausted&) {
        *failure = CipherSetupFailure::NoLockedMemory;
    } catch (...) {
        *failure = CipherSetupFailure::Refused;
    }
    return nullptr;
}

}  // namespace

std::unique_ptr<XtsCipher> make_xts_file_cipher(const InstanceKey& key, const FileHeader& header,
                                                CipherSetupFailure* failure) noexcept {
    return with_locked_key<kFileKeyBytes>(
        [&](std::uint8_t* out) {
            return key.derive_file_key(header.nonce.data(), header.nonce.size(), header.category,
                                       out);
        },
        [](const std::uint8_t* file_key) { return std::make_unique<XtsCipher>(file_key); },
        failure);
}

std::unique_ptr<AuthenticatedUnits> make_gcm_file_units(const InstanceKey& key,
                                                        const FileHeader& header,
                                                        CipherSetupFailure* failure) noexcept {
    return with_locked_key<kAuthenticatedFileKeyBytes>(
        [&](std::uint8_t* out) {
            return key.derive_authenticated_file_key(header.nonce.data(), header.nonce.size(),
                                                     header.category, out);
        },
        [&](const std::uint8_t* file_key) {
            return std::make_unique<AuthenticatedUnits>(std::make_unique<GcmCipher>(file_key),
                                                        header.nonce);
        },
        failure);
}

}  // namespace ephemeral_crypt
