// The encryption policy the control plane declares for an instance (which
// categories are encrypted, how each degrades, under which policy version),
// its canonical rendering and digest, and the signed policy file that carries
// it. The canonical rendering is what gets signed and hashed, so anything that
// reports or compares policies (logs, SQL status, fleet audits) can name one
// by its digest and be sure two equal digests mean the same effective policy.
//
// Canonical rendering (version 1). These six lines, in this order,
// each ending in "\n" (LF, the last one too), no other whitespace:
//
//   ephemeral_crypt policy v1
//   version=<pct(version)>
//   cipher=<pct(cipher)>
//   temp_relation=<encrypted|plaintext>,<fail_closed|fail_open_audit>[,aes-256-gcm]
//   spill=<encrypted|plaintext>,<fail_closed|fail_open_audit>[,aes-256-gcm]
//   wal=<encrypted|plaintext>,<fail_closed|fail_open_audit>
//
// followed by the lifecycle lines, each only when the policy sets it, in
// this order: `serial=<decimal, no leading zeros, '-' when negative>` when the
// serial is not 0, `not_after=<YYYY-MM-DDTHH:MM:SSZ>`, and
// `max_key_age=<seconds>`. A policy that sets none of them (every policy
// signed before they existed) renders, hashes and verifies as before.
//
// `cipher` names the base cipher, AES-256-XTS: WAL's, and every category's
// unless its line says otherwise. A category in AES-256-GCM ends its line with
// ",aes-256-gcm"; one in AES-256-XTS adds nothing, so a policy that chooses no
// cipher renders, hashes and verifies exactly as it did before ciphers could
// be chosen per category.
//
// pct() percent-encodes, as %XX with uppercase hex, every byte outside
// 0x21..0x7E and every '%' and '='; all other bytes are copied. The encoding
// is injective and its output holds no LF or '=', so no version string can
// forge or reorder the other lines. Every setting is rendered, including the
// degradation of a disabled category, so changing any one setting changes
// the bytes. A degradation value outside the enum renders as "invalid".
//
// Policy file. UTF-8/ASCII text of lines, LF or CRLF. Blank lines and lines
// whose first non-blank character is '#' are ignored ('#' elsewhere is part
// of the value). Every other line is `key = value`; blanks around the key and
// the value are ignored. Keys:
//
//   version                    required; 1..256 bytes, no control characters
//   temp_relation, spill, wal  required; on | off
//   temp_relation_degradation  optional; fail_closed (default) | fail_open_audit
//   spill_degradation          optional; fail_closed (default) | fail_open_audit
//   wal_degradation            optional; fail_closed only (WAL never degrades)
//   temp_relation_cipher       optional; aes-256-xts (default) | aes-256-gcm
//   spill_cipher               optional; aes-256-xts (default) | aes-256-gcm
//   serial                     optional; a signed decimal integer (64-bit),
//                              0 when absent: the policy's place in the order
//                              of rollouts (policy_lifecycle.hpp)
//   not_after                  optional; YYYY-MM-DDTHH:MM:SSZ (UTC, years
//                              1970..9999): the policy is stale from then on
//   max_key_age                optional; a positive duration, a number with
//                              an optional unit s, m, h or d (`30d`, `12h`,
//                              `3600` = `3600s`), at most 100 years: the
//                              instance key is stale once older
//   signature                  the last key in the file (only blank lines and
//                              comments may follow); 64 bytes as base64
//                              (88 characters, standard alphabet, padded) or
//                              as 128 hex digits
//
// Unknown, duplicate or missing required keys, invalid values and control
// characters are Malformed, with the line number in the error. WAL's cipher
// is always AES-256-XTS; the file has no key for it but the signed rendering
// names it.
//
// The signature is an Ed25519 detached signature (libsodium) over
// canonical_policy() of the policy parsed from the file, not over the file's
// bytes: comments, blank lines, key order and spacing may change without
// invalidating it, and any change to a setting does invalidate it.
//
// Keys. A public key is 32 bytes, a secret key is libsodium's 64-byte Ed25519
// secret key (seed followed by public key). Both are accepted as hex (64 or
// 128 digits, either case) or standard padded base64 (44 or 88 characters),
// optionally surrounded by whitespace (a trailing newline in a key file is
// fine). generate_keypair() writes lowercase hex.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/category.hpp"
#include "core/enum_names.hpp"
#include "core/file_cipher.hpp"

namespace ephemeral_crypt {

enum class Degradation : std::uint8_t { FailClosed, FailOpenAudit };

// The GUC, policy file and SQL spellings.
inline constexpr EnumName<Degradation> kDegradationNames[] = {
    {Degradation::FailClosed, "fail_closed"}, {Degradation::FailOpenAudit, "fail_open_audit"}};

// "fail_closed", "fail_open_audit", or "invalid".
std::string_view degradation_name(Degradation degradation) noexcept;

struct CategoryPolicy {
    bool enabled = false;
    Degradation degradation = Degradation::FailClosed;
    FileCipher cipher = FileCipher::Aes256Xts;  // GCM only for temp_relation and spill
};

struct Policy {
    std::string version;                      // declared by the control plane, e.g. "2026-11-01.3"
    CategoryPolicy category[kCategoryCount];  // indexed by category_index(Category)
    std::string cipher = "AES-256-XTS";       // the base cipher (see the rendering above)
    std::int64_t serial = 0;                  // order of rollouts; 0 when the file has none
    std::optional<std::int64_t> not_after;    // Unix seconds (UTC) from which it is stale
    std::optional<std::int64_t> max_key_age;  // seconds; the key is stale once older

    CategoryPolicy& of(Category c) noexcept { return category[category_index(c)]; }
    const CategoryPolicy& of(Category c) const noexcept { return category[category_index(c)]; }
};

inline constexpr std::size_t kPolicyPublicKeyBytes = 32;
inline constexpr std::size_t kPolicySecretKeyBytes = 64;
inline constexpr std::size_t kPolicySignatureBytes = 64;
inline constexpr std::size_t kPolicyVersionMaxBytes = 256;
inline constexpr std::size_t kPolicyFileMaxBytes = 1 << 20;

// The rendering described above. Empty only if memory runs out.
std::string canonical_policy(const Policy& policy) noexcept;

// SHA-256 of canonical_policy(), 64 lowercase hex digits. Empty on failure.
std::string policy_digest_hex(const Policy& policy) noexcept;

// The ciphers of the three categories in one phrase, what SQL's
// ephemeral_crypt_status().cipher reports: the cipher's name alone when every
// category uses the same one ("AES-256-XTS", as before ciphers could be
// chosen), else each cipher followed by its categories, in category order:
// "AES-256-GCM (temp_relation, spill), AES-256-XTS (wal)". Disabled
// categories count too: the phrase, like the digest, describes the policy.
std::string cipher_summary(const Policy& policy);

enum class PolicyFileStatus {
    Ok,            // parsed, and the signature verifies under the given public key
    Missing,       // the file does not exist (ENOENT, ENOTDIR)
    Unreadable,    // cannot be opened or read, not a regular file, or out of memory
    Malformed,     // not a valid policy file (or the public key given is not a key)
    Unsigned,      // parsed, but not checked: no signature line, or no public key given
    BadSignature,  // parsed, signature present, and it does not verify
};

// "ok", "missing", "unreadable", "malformed", "unsigned", "bad_signature".
std::string_view policy_file_status_name(PolicyFileStatus status) noexcept;

struct PolicyFileResult {
    PolicyFileStatus status = PolicyFileStatus::Malformed;
    // Filled whenever the text parsed (Ok, Unsigned, BadSignature), so tools
    // can say what a rejected file claimed. Only Ok makes it authentic.
    Policy policy;
    // Empty on Ok; otherwise one human-readable line. For Malformed it names
    // the line ("line 4: ...") or, for a bad public key, starts "public key:".
    std::string error;
    int error_number = 0;            // errno when the file could not be opened, examined or read
    std::size_t signature_line = 0;  // line of the signature, 0 without one
    bool signed_ok = false;          // true exactly when status is Ok
};

// With an empty `public_key_text` the signature is not checked and a file
// that parses is Unsigned (a signature line must still be well-formed). With
// a key, a file without a signature line is Unsigned. A public key that does
// not parse is reported as Malformed with an error starting "public key:",
// after the file itself has been checked. None of these throw.
PolicyFileResult load_policy_file(const std::string& path,
                                  const std::string& public_key_text) noexcept;
PolicyFileResult parse_policy_text(std::string_view text,
                                   const std::string& public_key_text) noexcept;

// Decode a key in the formats above; `error` (may be null) says why not.
bool parse_public_key(std::string_view text, std::uint8_t out[kPolicyPublicKeyBytes],
                      std::string* error) noexcept;
// Also checks that the public half matches the seed, so a damaged key file is
// caught before it signs anything. `out` is wiped on failure.
bool parse_secret_key(std::string_view text, std::uint8_t out[kPolicySecretKeyBytes],
                      std::string* error) noexcept;

// Parses `unsigned_text` (which must be a valid policy file apart from its
// signature; an existing signature line is dropped), signs its canonical
// rendering and returns the text with `signature = <base64>` appended as the
// last line. Returns an empty string and sets `error` (may be null) on failure.
std::string sign_policy_text(std::string_view unsigned_text,
                             const std::uint8_t secret_key[kPolicySecretKeyBytes],
                             std::string* error) noexcept;

// A fresh Ed25519 key pair as lowercase hex (64 and 128 digits). Both strings
// are left empty if libsodium cannot initialise or memory runs out.
void generate_keypair(std::string* public_key_text, std::string* secret_key_text) noexcept;

}  // namespace ephemeral_crypt
