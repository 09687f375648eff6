// The ciphers a category's files can be written in, chosen per category by
// policy. AES-256-XTS (format v1) hides the bytes; AES-256-GCM (format v2)
// also detects their change. WAL is always XTS: a torn write of a WAL page
// must damage only what it tore, which an authenticated unit cannot offer.
// The values are the header's cipher byte; the names are the setting, policy
// file and SQL spellings, and stay stable.
#pragma once

#include "core/no_postgres.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/file_header.hpp"

namespace ephemeral_crypt {

enum class FileCipher : std::uint8_t {
    Aes256Xts = kCipherAes256Xts,
    Aes256Gcm = kCipherAes256Gcm,
};

inline constexpr FileCipher kAllFileCiphers[] = {FileCipher::Aes256Xts, FileCipher::Aes256Gcm};

// "AES-256-XTS", "AES-256-GCM": what SQL and the log report.
constexpr std::string_view file_cipher_name(FileCipher cipher) noexcept {
    return cipher == FileCipher::Aes256Gcm ? "AES-256-GCM" : "AES-256-XTS";
}

// "aes-256-xts", "aes-256-gcm": the settings' and the policy file's values.
constexpr std::string_view file_cipher_setting(FileCipher cipher) noexcept {
    return cipher == FileCipher::Aes256Gcm ? "aes-256-gcm" : "aes-256-xts";
}

constexpr std::optional<FileCipher> file_cipher_from_setting(std::string_view value) noexcept {
    for (const FileCipher cipher : kAllFileCiphers) {
        if (file_cipher_setting(cipher) == value) {
            return cipher;
        }
    }
    return std::nullopt;
}

// The format version a file of `cipher` is written in.
constexpr std::uint16_t format_version_for(FileCipher cipher) noexcept {
    return cipher == FileCipher::Aes256Gcm ? kFormatVersionAuthenticated : kFormatVersionLinear;
}

}  // namespace ephemeral_crypt
