// The policy's canonical rendering (the bytes policy.hpp documents), its
// digest, and the one-phrase summary of its ciphers. Kept apart from the
// policy file's parser and signatures, which sign and hash what this renders.
#include "core/policy.hpp"

#include <algorithm>
#include <cctype>
#include <iterator>

#include "core/hex.hpp"
#include "core/policy_lifecycle.hpp"
#include "core/sha256.hpp"

namespace ephemeral_crypt {

namespace {

void append_percent_encoded(std::string& out, std::string_view value) {
    for (const char ch : value) {
        const auto byte = static_cast<unsigned char>(ch);
        if (byte < 0x21 || byte > 0x7e || ch == '%' || ch == '=') {
            out.push_back('%');
            for (const char digit : to_hex(&byte, 1)) {
                out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(digit))));
            }
        } else {
            out.push_back(ch);
        }
    }
}

}  // namespace

std::string_view degradation_name(Degradation degradation) noexcept {
    return name_in(kDegradationNames, degradation, "invalid");
}

std::string canonical_policy(const Policy& policy) noexcept {
    try {
        std::string out = "ephemeral_crypt policy v1\nversion=";
        append_percent_encoded(out, policy.version);
        out.append("\ncipher=");
        append_percent_encoded(out, policy.cipher);
        out.push_back('\n');
        for (const Category category : kAllCategories) {
            const CategoryPolicy& setting = policy.of(category);
            out.append(category_name(category));
            out.append(setting.enabled ? "=encrypted," : "=plaintext,");
            out.append(degradation_name(setting.degradation));
            if (setting.cipher != FileCipher::Aes256Xts) {
                out.push_back(',');
                out.append(file_cipher_setting(setting.cipher));
            }
            out.push_back('\n');
        }
        // The lifecycle lines only when set, so older policies keep their
        // bytes; a time in its one canonical spelling, a duration in seconds.
        if (policy.serial != 0) {
            out.append("serial=").append(std::to_string(policy.serial)).push_back('\n');
        }
        if (policy.not_after) {
            out.append("not_after=").append(format_utc_time(*policy.not_after)).push_back('\n');
        }
        if (policy.max_key_age) {
            out.append("max_key_age=").append(std::to_string(*policy.max_key_age)).push_back('\n');
        }
        return out;
    } catch (...) {
        return {};
    }
}

std::string policy_digest_hex(const Policy& policy) noexcept {
    try {
        const std::string canonical = canonical_policy(policy);
        if (canonical.empty()) {
            return {};
        }
        std::uint8_t digest[kSha256Bytes];
        if (!sha256(canonical.data(), canonical.size(), digest)) {
            return {};
        }
        return to_hex(digest, sizeof(digest));
    } catch (...) {
        return {};
    }
}

std::string cipher_summary(const Policy& policy) {
    const FileCipher first = policy.of(kAllCategories[0]).cipher;
    const bool uniform = std::all_of(std::begin(kAllCategories), std::end(kAllCategories),
                                     [&](Category c) { return policy.of(c).cipher == first; });
    if (uniform) {
        return std::string(file_cipher_name(first));
    }
    std::string out;
    bool listed[kCategoryCount] = {};
    for (const Category category : kAllCategories) {
        if (listed[category_index(category)]) {
            continue;
        }
        const FileCipher cipher = policy.of(category).cipher;
        out.append(out.empty() ? "" : ", ").append(file_cipher_name(cipher)).append(" (");
        const char* separator = "";
        for (const Category member : kAllCategories) {
            if (policy.of(member).cipher == cipher) {
                out.append(separator).append(category_name(member));
                listed[category_index(member)] = true;
                separator = ", ";
            }
        }
        out.push_back(')');
    }
    return out;
}

}  // namespace ephemeral_crypt
