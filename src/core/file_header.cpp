// Header encoding and decoding. The header carries two integrity fields: an
// unkeyed checksum, so damage is recognised as damage whoever reads it, and a
// MAC under the instance key, so a header from this instance is told apart
// from one written by another (whose MAC nobody here can verify) or forged.
#include "core/file_header.hpp"

#include <openssl/crypto.h>

#include <cstring>

#include "core/enum_names.hpp"
#include "core/sha256.hpp"

namespace ephemeral_crypt {

namespace {

namespace L = header_layout;

constexpr EnumName<HeaderStatus> kHeaderStatusNames[] = {
    {HeaderStatus::Ok, "ok"},
    {HeaderStatus::NotOurs, "not_ours"},
    {HeaderStatus::UnsupportedVersion, "unsupported_version"},
    {HeaderStatus::Truncated, "truncated"},
    {HeaderStatus::ForeignInstance, "foreign_instance"},
    {HeaderStatus::Corrupt, "corrupt"}};

void put_u16(std::uint8_t* p, std::uint16_t v) noexcept {
    p[0] = static_cast<std::uint8_t>(v);
    p[1] = static_cast<std::uint8_t>(v >> 8);
}

void put_u32(std::uint8_t* p, std::uint32_t v) noexcept {
    for (int i = 0; i < 4; ++i) {
        p[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
}

std::uint16_t get_u16(const std::uint8_t* p) noexcept {
    return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}

std::uint32_t get_u32(const std::uint8_t* p) noexcept {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return v;
}

bool checksum(const std::uint8_t* header, std::uint8_t out[L::kChecksumBytes]) noexcept {
    std::uint8_t digest[kSha256Bytes];
    if (!sha256(header, L::kChecksum, digest)) {
        return false;
    }
    std::memcpy(out, digest, L::kChecksumBytes);
    return true;
}

}  // namespace

std::string_view header_status_name(HeaderStatus status) noexcept {
    return name_in(kHeaderStatusNames, status, "unknown");
}

bool encode_header(const FileHeader& header, const InstanceKey& key,
                   std::uint8_t out[kHeaderBytes]) noexcept {
    std::memset(out, 0, kHeaderBytes);
    std::memcpy(out + L::kMagic, kHeaderMagic, sizeof(kHeaderMagic));
    put_u16(out + L::kVersion, header.version);
    out[L::kCategory] = static_cast<std::uint8_t>(header.category);
    out[L::kCipher] = header.cipher;
    put_u32(out + L::kDataUnit, header.data_unit_bytes);
    put_u32(out + L::kFlags, header.flags);
    put_u32(out + L::kDataOffset, static_cast<std::uint32_t>(kDataOffsetBytes));
    std::memcpy(out + L::kKeyId, key.id().data(), kKeyIdBytes);
    std::memcpy(out + L::kNonce, header.nonce.data(), kNonceBytes);
    if (!key.header_mac(out, L::kMac, out + L::kMac)) {
        return false;
    }
    return checksum(out, out + L::kChecksum);
}

DecodedHeader decode_header(const std::uint8_t* data, std::size_t len,
                            const InstanceKey* key) noexcept {
    DecodedHeader result;
    const std::size_t magic_len = sizeof(kHeaderMagic);
    const std::size_t compared = len < magic_len ? len : magic_len;
    if (data == nullptr || len == 0 || std::memcmp(data, kHeaderMagic, compared) != 0) {
        result.status = len == 0 ? HeaderStatus::Truncated : HeaderStatus::NotOurs;
        return result;
    }
    if (len < kHeaderBytes) {
        result.status = HeaderStatus::Truncated;
        return result;
    }
    // A newer format may lay out its integrity fields differently, so the
    // version is judged before anything else is trusted.
    result.header.version = get_u16(data + L::kVersion);
    if (result.header.version != kFormatVersionLinear &&
        result.header.version != kFormatVersionAuthenticated) {
        result.status = HeaderStatus::UnsupportedVersion;
        return result;
    }
    std::uint8_t expected_checksum[L::kChecksumBytes];
    if (!checksum(data, expected_checksum) ||
        CRYPTO_memcmp(expected_checksum, data + L::kChecksum, L::kChecksumBytes) != 0) {
        result.status = HeaderStatus::Corrupt;
        return result;
    }
    std::memcpy(result.header.key_id.data(), data + L::kKeyId, kKeyIdBytes);
    const auto category = category_from_byte(data[L::kCategory]);
    result.header.cipher = data[L::kCipher];
    result.header.data_unit_bytes = get_u32(data + L::kDataUnit);
    result.header.flags = get_u32(data + L::kFlags);
    std::memcpy(result.header.nonce.data(), data + L::kNonce, kNonceBytes);
    if (category) {
        result.header.category = *category;
    }
    if (key != nullptr) {
        if (std::memcmp(result.header.key_id.data(), key->id().data(), kKeyIdBytes) != 0) {
            result.status = HeaderStatus::ForeignInstance;
            return result;
        }
        std::uint8_t expected_mac[kMacBytes];
        if (!key->header_mac(data, L::kMac, expected_mac) ||
            CRYPTO_memcmp(expected_mac, data + L::kMac, kMacBytes) != 0) {
            result.status = HeaderStatus::Corrupt;
            return result;
        }
    }
    // Each version carries its own ciphers: v1 XTS or plaintext (audit),
    // v2 GCM only, so the version alone decides the data layout.
    const bool plaintext = (result.header.flags & kFlagPlaintextAudit) != 0;
    const bool cipher_ok = result.header.version == kFormatVersionAuthenticated
                               ? !plaintext && result.header.cipher == kCipherAes256Gcm
                           : plaintext ? result.header.cipher == kCipherNone
                                       : result.header.cipher == kCipherAes256Xts;
    if (!category || !cipher_ok || result.header.data_unit_bytes != 4096 ||
        (result.header.flags & ~kKnownFlags) != 0 ||
        get_u32(data + L::kDataOffset) != kDataOffsetBytes) {
        result.status = HeaderStatus::Corrupt;
        return result;
    }
    result.status = HeaderStatus::Ok;
    return result;
}

}  // namespace ephemeral_crypt
