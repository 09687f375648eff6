// The fixed 4096-byte header at physical offset 0 of every encrypted file,
// and where the data after it begins (docs/formats.md describes every byte).
// Decoding never trusts the input: every read is bounds-checked against the
// length the caller passes, and each way a header can fail has its own named
// result so the layer and the SQL functions can say exactly what they found.
#pragma once

#include "core/no_postgres.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/category.hpp"
#include "core/instance_key.hpp"

namespace ephemeral_crypt {

inline constexpr std::size_t kHeaderBytes = 4096;
inline constexpr std::size_t kNonceBytes = 32;
// Format v1: AES-256-XTS, or plaintext under fail_open_audit, data linear
// after the header. Format v2: AES-256-GCM, each unit's nonce and tag in a
// metadata block per group of units (core/data_layout.hpp).
inline constexpr std::uint16_t kFormatVersionLinear = 1;
inline constexpr std::uint16_t kFormatVersionAuthenticated = 2;
// The header's cipher byte (core/file_cipher.hpp names them).
inline constexpr std::uint8_t kCipherNone = 0;  // plaintext under fail_open_audit
inline constexpr std::uint8_t kCipherAes256Xts = 1;
inline constexpr std::uint8_t kCipherAes256Gcm = 2;
inline constexpr char kHeaderMagic[8] = {'E', 'P', 'H', 'C', 'R', 'Y', 'P', 'T'};

// Where an encrypted file's data begins: the header, then a hole up to 64 KiB
// that costs no disk block. Why not right after the header: the kernel
// caches a file in folios that must start at a multiple of their own size,
// so a block PostgreSQL writes at an 8 KiB multiple, stored 4096 bytes
// further on, could only be cached in single pages, each with its own
// allocation, LRU entry and buffer head. Measured on ext4 (Linux 6.18):
// 100 MiB written and read back in 8 KiB blocks took about 35% more kernel
// time at offset 4096 than at offset 0, and no more at 65536. 64 KiB keeps
// folios of up to 16 pages aligned, which covers PostgreSQL's writes.
inline constexpr std::size_t kDataOffsetBytes = 64 * 1024;

// Logical offset L of a format-v1 file is stored at physical
// L + kDataOffsetBytes, and its logical size is its physical size minus
// that. Every conversion between the two goes through these; a physical
// value inside the header's region (a file cut short while its header was
// written, or a file holding no data yet) is logical 0.
constexpr std::int64_t logical_from_physical(std::int64_t physical) noexcept {
    return physical > static_cast<std::int64_t>(kDataOffsetBytes)
               ? physical - static_cast<std::int64_t>(kDataOffsetBytes)
               : 0;
}
constexpr std::int64_t physical_from_logical(std::int64_t logical) noexcept {
    return logical + static_cast<std::int64_t>(kDataOffsetBytes);
}

// Header flags.
inline constexpr std::uint32_t kFlagPlaintextAudit = 1u << 0;
inline constexpr std::uint32_t kKnownFlags = kFlagPlaintextAudit;

struct FileHeader {
    std::uint16_t version = kFormatVersionLinear;
    Category category = Category::Spill;
    std::uint8_t cipher = kCipherAes256Xts;
    std::uint32_t data_unit_bytes = 4096;
    std::uint32_t flags = 0;
    KeyId key_id{};
    std::array<std::uint8_t, kNonceBytes> nonce{};

    bool plaintext_audit() const noexcept { return (flags & kFlagPlaintextAudit) != 0; }
    bool authenticated() const noexcept { return cipher == kCipherAes256Gcm; }
};

enum class HeaderStatus {
    Ok,
    NotOurs,             // no magic: a file this extension never wrote
    UnsupportedVersion,  // our magic, a format version this build cannot read (neither 1 nor 2)
    Truncated,           // our magic (or a prefix of it) but fewer than 4096 bytes
    ForeignInstance,     // intact, but written under another instance's key
    Corrupt,             // damaged or forged: checksum or MAC mismatch, bad fields
};

std::string_view header_status_name(HeaderStatus status) noexcept;

// Fills `out` (kHeaderBytes) with the encoded header, MAC'd under `key`.
// The header's key id is taken from `key`, not from `header`.
bool encode_header(const FileHeader& header, const InstanceKey& key,
                   std::uint8_t out[kHeaderBytes]) noexcept;

struct DecodedHeader {
    HeaderStatus status = HeaderStatus::NotOurs;
    FileHeader header;  // filled as far as could be trusted (key id on ForeignInstance)
};

// `key` may be null: the header is then checked for structure and checksum
// only, and an intact header decodes as Ok whatever its key id (used by
// inspection tools that have no key).
DecodedHeader decode_header(const std::uint8_t* data, std::size_t len,
                            const InstanceKey* key) noexcept;

// Layout, exposed for tests and tools that patch single fields.
namespace header_layout {
inline constexpr std::size_t kMagic = 0;        // 8 bytes
inline constexpr std::size_t kVersion = 8;      // u16 LE
inline constexpr std::size_t kCategory = 10;    // u8
inline constexpr std::size_t kCipher = 11;      // u8
inline constexpr std::size_t kDataUnit = 12;    // u32 LE
inline constexpr std::size_t kFlags = 16;       // u32 LE
inline constexpr std::size_t kDataOffset = 20;  // u32 LE, always kDataOffsetBytes
inline constexpr std::size_t kKeyId = 24;       // 8 bytes
inline constexpr std::size_t kNonce = 32;       // 32 bytes
inline constexpr std::size_t kMac = 64;         // 32 bytes, HMAC over [0, 64)
inline constexpr std::size_t kChecksum = 96;    // 16 bytes, SHA-256 over [0, 96)
inline constexpr std::size_t kChecksumBytes = 16;
inline constexpr std::size_t kEnd = 112;  // the rest is zero, reserved
}  // namespace header_layout

}  // namespace ephemeral_crypt
