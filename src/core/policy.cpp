// The signed policy file (format in policy.hpp): parsing, keys, signing and
// verifying; the rendering it signs is in policy_rendering.cpp. The parser is deliberately strict:
// a file the control plane signs is machine-written, so anything unexpected is more likely
// tampering or a broken generator than a typo worth tolerating, and a policy that fails to load
// must never be half-applied. Every entry point is noexcept because src/pg calls them from
// _PG_init, where an escaping exception would take the postmaster down without a message.
#include "core/policy.hpp"

#include <sodium.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <exception>
#include <new>
#include <optional>

#include "core/file_io.hpp"
#include "core/hex.hpp"
#include "core/policy_lifecycle.hpp"

namespace ephemeral_crypt {

namespace {

bool sodium_ready() noexcept {
    // sodium_init is idempotent and thread-safe; caching only saves the call.
    static const bool ready = sodium_init() >= 0;
    return ready;
}

std::string to_base64(const std::uint8_t* data, std::size_t len) {
    std::string out(sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(out.data(), out.size(), data, len, sodium_base64_VARIANT_ORIGINAL);
    out.pop_back();  // the terminating NUL sodium writes
    return out;
}

bool is_blank(char ch) noexcept {
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && is_blank(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_blank(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

// Hex and base64 have different lengths for every size used here, so the
// length alone says which one the text is.
bool decode_fixed(std::string_view text, std::uint8_t* out, std::size_t len) noexcept {
    text = trim(text);
    if (text.size() == 2 * len) {
        return from_hex(text, out, len);
    }
    if (text.size() + 1 == sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL)) {
        std::size_t written = 0;
        const char* end = nullptr;
        return sodium_base642bin(out, len, text.data(), text.size(), nullptr, &written, &end,
                                 sodium_base64_VARIANT_ORIGINAL) == 0 &&
               written == len && end == text.data() + text.size();
    }
    return false;
}

// Shown in error messages; bounded so a hostile file cannot flood the log.
std::string quoted(std::string_view value) {
    constexpr std::size_t kShown = 64;
    std::string out = "'";
    out.append(value.substr(0, kShown));
    if (value.size() > kShown) {
        out.append("...");
    }
    out.push_back('\'');
    return out;
}

enum class Key : std::size_t {
    Version,
    TempRelation,
    Spill,
    Wal,
    TempRelationDegradation,
    SpillDegradation,
    WalDegradation,
    TempRelationCipher,
    SpillCipher,
    Serial,
    NotAfter,
    MaxKeyAge,
    Signature,
    Count,
};

struct KeySpec {
    std::string_view name;
    Key key;
    bool required;
};

constexpr KeySpec kKeys[] = {
    {"version", Key::Version, true},
    {"temp_relation", Key::TempRelation, true},
    {"spill", Key::Spill, true},
    {"wal", Key::Wal, true},
    {"temp_relation_degradation", Key::TempRelationDegradation, false},
    {"spill_degradation", Key::SpillDegradation, false},
    {"wal_degradation", Key::WalDegradation, false},
    {"temp_relation_cipher", Key::TempRelationCipher, false},
    {"spill_cipher", Key::SpillCipher, false},
    {"serial", Key::Serial, false},
    {"not_after", Key::NotAfter, false},
    {"max_key_age", Key::MaxKeyAge, false},
    {"signature", Key::Signature, false},
};

// Stores what a value parser read, when it read something.
template <class Field>
bool assign_parsed(const std::optional<std::int64_t>& parsed_value, Field& field) {
    if (!parsed_value) {
        return false;
    }
    field = *parsed_value;
    return true;
}

const KeySpec* find_key(std::string_view name) noexcept {
    for (const KeySpec& spec : kKeys) {
        if (spec.name == name) {
            return &spec;
        }
    }
    return nullptr;
}

Category key_category(Key key) noexcept {
    switch (key) {
        case Key::TempRelation:
        case Key::TempRelationDegradation:
        case Key::TempRelationCipher:
            return Category::TempRelation;
        case Key::Spill:
        case Key::SpillDegradation:
        case Key::SpillCipher:
            return Category::Spill;
        default:
            return Category::Wal;
    }
}

struct Parsed {
    Policy policy;
    bool has_signature = false;
    std::uint8_t signature[kPolicySignatureBytes] = {};
    // Byte range of the signature line including its newline, so signing can
    // replace it without touching the rest of the file.
    std::size_t signature_begin = 0;
    std::size_t signature_end = 0;
    std::size_t signature_line = 0;
};

// Returns an empty string on success, else the Malformed message. With
// `decode_signature` false the signature value is not checked, so a file can
// be re-signed whatever its old signature line holds.
std::string parse_lines(std::string_view text, bool decode_signature, Parsed& parsed) {
    if (text.size() > kPolicyFileMaxBytes) {
        return "policy text is larger than " + std::to_string(kPolicyFileMaxBytes) + " bytes";
    }
    std::size_t seen_on_line[static_cast<std::size_t>(Key::Count)] = {};
    std::size_t line_number = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        ++line_number;
        const std::size_t line_begin = pos;
        std::size_t newline = text.find('\n', pos);
        const std::size_t line_end = newline == std::string_view::npos ? text.size() : newline;
        pos = newline == std::string_view::npos ? text.size() : newline + 1;
        std::string_view line = text.substr(line_begin, line_end - line_begin);
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        const std::string where = "line " + std::to_string(line_number) + ": ";
        for (const char ch : line) {
            const auto byte = static_cast<unsigned char>(ch);
            if ((byte < 0x20 && ch != '\t') || byte == 0x7f) {
                return where + "control character 0x" + to_hex(&byte, 1);
            }
        }
        line = trim(line);
        if (line.empty() || line.front() == '#') {
            continue;
        }
        const std::size_t equals = line.find('=');
        if (equals == std::string_view::npos || trim(line.substr(0, equals)).empty()) {
            return where + "expected 'key = value', got " + quoted(line);
        }
        const std::string_view name = trim(line.substr(0, equals));
        const std::string_view value = trim(line.substr(equals + 1));
        const KeySpec* spec = find_key(name);
        if (spec == nullptr) {
            return where + "unknown key " + quoted(name);
        }
        const auto slot = static_cast<std::size_t>(spec->key);
        if (seen_on_line[slot] != 0) {
            return where + "duplicate key '" + std::string(spec->name) + "' (first set on line " +
                   std::to_string(seen_on_line[slot]) + ")";
        }
        if (parsed.has_signature) {
            return where + "'" + std::string(spec->name) +
                   "' after the signature; signature must be the last setting";
        }
        seen_on_line[slot] = line_number;

        switch (spec->key) {
            case Key::Version:
                if (value.empty()) {
                    return where + "version is empty";
                }
                if (value.size() > kPolicyVersionMaxBytes) {
                    return where + "version is longer than " +
                           std::to_string(kPolicyVersionMaxBytes) + " bytes";
                }
                if (value.find('\t') != std::string_view::npos) {
                    return where + "version contains a tab";
                }
                parsed.policy.version.assign(value);
                break;
            case Key::TempRelation:
            case Key::Spill:
            case Key::Wal:
                if (value != "on" && value != "off") {
                    return where + std::string(spec->name) + " must be on or off, not " +
                           quoted(value);
                }
                parsed.policy.of(key_category(spec->key)).enabled = value == "on";
                break;
            case Key::TempRelationDegradation:
            case Key::SpillDegradation:
            case Key::WalDegradation: {
                const std::optional<Degradation> degradation =
                    value_named(kDegradationNames, value);
                if (!degradation) {
                    return where + std::string(spec->name) +
                           " must be fail_closed or fail_open_audit, not " + quoted(value);
                }
                // Plaintext WAL would outlive the instance in archives and on
                // standbys; the server refuses it too, so the file must.
                if (spec->key == Key::WalDegradation && *degradation != Degradation::FailClosed) {
                    return where + "wal_degradation: WAL accepts only fail_closed";
                }
                parsed.policy.of(key_category(spec->key)).degradation = *degradation;
                break;
            }
            case Key::TempRelationCipher:
            case Key::SpillCipher: {
                const std::optional<FileCipher> cipher = file_cipher_from_setting(value);
                if (!cipher) {
                    return where + std::string(spec->name) +
                           " must be aes-256-xts or aes-256-gcm, not " + quoted(value);
                }
                parsed.policy.of(key_category(spec->key)).cipher = *cipher;
                break;
            }
            case Key::Serial:
                if (!assign_parsed(parse_serial(value), parsed.policy.serial)) {
                    return where + "serial must be a signed 64-bit decimal integer, not " +
                           quoted(value);
                }
                break;
            case Key::NotAfter:
                if (!assign_parsed(parse_utc_time(value), parsed.policy.not_after)) {
                    return where +
                           "not_after must be a UTC time such as 2027-01-01T00:00:00Z, not " +
                           quoted(value);
                }
                break;
            case Key::MaxKeyAge:
                if (!assign_parsed(parse_duration(value), parsed.policy.max_key_age)) {
                    return where +
                           "max_key_age must be a positive duration such as 30d, 12h, 90m or "
                           "3600s (at most 100 years), not " +
                           quoted(value);
                }
                break;
            case Key::Signature:
                if (decode_signature &&
                    !decode_fixed(value, parsed.signature, kPolicySignatureBytes)) {
                    return where + "signature is not 64 bytes of base64 or hex";
                }
                parsed.has_signature = true;
                parsed.signature_begin = line_begin;
                parsed.signature_end = pos;
                parsed.signature_line = line_number;
                break;
            case Key::Count:
                break;
        }
    }
    for (const KeySpec& spec : kKeys) {
        if (spec.required && seen_on_line[static_cast<std::size_t>(spec.key)] == 0) {
            return "missing required key '" + std::string(spec.name) + "'";
        }
    }
    return {};
}

bool verify_signature(const Policy& policy, const std::uint8_t signature[kPolicySignatureBytes],
                      const std::uint8_t public_key[kPolicyPublicKeyBytes]) {
    const std::string canonical = canonical_policy(policy);
    if (canonical.empty() || !sodium_ready()) {
        return false;
    }
    return crypto_sign_verify_detached(signature,
                                       reinterpret_cast<const unsigned char*>(canonical.data()),
                                       canonical.size(), public_key) == 0;
}

// False, with `reason` in *error when the caller asked for one. Can throw
// (the assignment allocates); the public parsers catch it.
bool refuse_key(std::string* error, const char* reason) {
    if (error != nullptr) {
        *error = reason;
    }
    return false;
}

// Fills `out` with the `size` bytes `text` spells in hex or base64; else
// refuses with `expected`, which says what a key of that size looks like.
bool decode_key(std::string_view text, std::uint8_t* out, std::size_t size, const char* expected,
                std::string* error) {
    if (!sodium_ready()) {
        return refuse_key(error, "libsodium could not be initialised");
    }
    return decode_fixed(text, out, size) || refuse_key(error, expected);
}

// What a result says when building it threw: the parsing and reading below
// allocate (strings) and can throw nothing else but a standard exception on
// a bug (std::out_of_range from a substr). Each message fits the
// small-string buffer, so setting it cannot throw in turn.
PolicyFileResult unreadable_because(const char* reason) noexcept {
    PolicyFileResult result;
    result.status = PolicyFileStatus::Unreadable;
    result.error = reason;
    return result;
}
constexpr const char* kOutOfMemory = "out of memory";
constexpr const char* kInternalError = "internal error";

}  // namespace

std::string_view policy_file_status_name(PolicyFileStatus status) noexcept {
    switch (status) {
        case PolicyFileStatus::Ok:
            return "ok";
        case PolicyFileStatus::Missing:
            return "missing";
        case PolicyFileStatus::Unreadable:
            return "unreadable";
        case PolicyFileStatus::Malformed:
            return "malformed";
        case PolicyFileStatus::Unsigned:
            return "unsigned";
        case PolicyFileStatus::BadSignature:
            return "bad_signature";
    }
    return "unknown";
}

bool parse_public_key(std::string_view text, std::uint8_t out[kPolicyPublicKeyBytes],
                      std::string* error) noexcept {
    try {
        return decode_key(text, out, kPolicyPublicKeyBytes,
                          "expected 32 bytes as 64 hex digits or 44 base64 characters", error);
    } catch (...) {
        return false;
    }
}

bool parse_secret_key(std::string_view text, std::uint8_t out[kPolicySecretKeyBytes],
                      std::string* error) noexcept {
    try {
        if (!decode_key(text, out, kPolicySecretKeyBytes,
                        "expected 64 bytes as 128 hex digits or 88 base64 characters", error)) {
            sodium_memzero(out, kPolicySecretKeyBytes);
            return false;
        }
        // The public half is stored in the key and used as-is when signing; a
        // mismatch would yield signatures no holder of the real public key
        // accepts, discovered only at the server.
        unsigned char public_key[crypto_sign_PUBLICKEYBYTES];
        unsigned char rebuilt[crypto_sign_SECRETKEYBYTES];
        const bool derived = crypto_sign_seed_keypair(public_key, rebuilt, out) == 0;
        sodium_memzero(rebuilt, sizeof rebuilt);
        if (!derived || sodium_memcmp(public_key, out + crypto_sign_SEEDBYTES,
                                      crypto_sign_PUBLICKEYBYTES) != 0) {
            sodium_memzero(out, kPolicySecretKeyBytes);
            return refuse_key(error, "the public half does not match the seed (damaged key?)");
        }
        return true;
    } catch (...) {
        sodium_memzero(out, kPolicySecretKeyBytes);
        return false;
    }
}

PolicyFileResult parse_policy_text(std::string_view text,
                                   const std::string& public_key_text) noexcept {
    try {
        PolicyFileResult result;
        Parsed parsed;
        std::string error = parse_lines(text, /*decode_signature=*/true, parsed);
        if (!error.empty()) {
            result.status = PolicyFileStatus::Malformed;
            result.error = std::move(error);
            return result;
        }
        result.policy = std::move(parsed.policy);
        result.signature_line = parsed.has_signature ? parsed.signature_line : 0;
        if (public_key_text.empty()) {
            result.status = PolicyFileStatus::Unsigned;
            result.error = "signature not checked: no public key given";
            return result;
        }
        std::uint8_t public_key[kPolicyPublicKeyBytes];
        std::string key_error;
        if (!parse_public_key(public_key_text, public_key, &key_error)) {
            result.status = PolicyFileStatus::Malformed;
            result.error = "public key: " + key_error;
            return result;
        }
        if (!parsed.has_signature) {
            result.status = PolicyFileStatus::Unsigned;
            result.error = "no signature line";
            return result;
        }
        if (!verify_signature(result.policy, parsed.signature, public_key)) {
            result.status = PolicyFileStatus::BadSignature;
            result.error =
                "bad signature: it does not verify under the public key given (settings changed "
                "after signing, or signed with another key)";
            return result;
        }
        result.status = PolicyFileStatus::Ok;
        result.signed_ok = true;
        return result;
    } catch (const std::bad_alloc&) {
        return unreadable_because(kOutOfMemory);
    } catch (const std::exception&) {
        return unreadable_because(kInternalError);
    }
}

PolicyFileResult load_policy_file(const std::string& path,
                                  const std::string& public_key_text) noexcept {
    try {
        std::string text;
        const ReadOutcome read = read_small_file(path, kPolicyFileMaxBytes, true, &text);
        if (read.ok()) {
            return parse_policy_text(text, public_key_text);
        }
        PolicyFileResult result;
        result.status = PolicyFileStatus::Unreadable;
        result.error_number = read.error;
        switch (read.failed_at) {
            case ReadStep::Open:
                if (read.error == ENOENT || read.error == ENOTDIR) {
                    result.status = PolicyFileStatus::Missing;
                }
                result.error = "cannot open: " + errno_text(read.error);
                break;
            case ReadStep::Stat:
                result.error = "cannot stat: " + errno_text(read.error);
                break;
            case ReadStep::NotRegular:
                result.error = "not a regular file";
                break;
            case ReadStep::TooLarge:
                result.status = PolicyFileStatus::Malformed;
                result.error =
                    "file is larger than " + std::to_string(kPolicyFileMaxBytes) + " bytes";
                break;
            case ReadStep::Read:
            case ReadStep::Done:
                result.error = "cannot read: " + errno_text(read.error);
                break;
        }
        return result;
    } catch (const std::bad_alloc&) {
        return unreadable_because(kOutOfMemory);
    } catch (const std::exception&) {
        return unreadable_because(kInternalError);
    }
}

std::string sign_policy_text(std::string_view unsigned_text,
                             const std::uint8_t secret_key[kPolicySecretKeyBytes],
                             std::string* error) noexcept {
    try {
        if (!sodium_ready()) {
            if (error != nullptr) {
                *error = "libsodium could not be initialised";
            }
            return {};
        }
        Parsed parsed;
        std::string parse_error = parse_lines(unsigned_text, /*decode_signature=*/false, parsed);
        if (!parse_error.empty()) {
            if (error != nullptr) {
                *error = std::move(parse_error);
            }
            return {};
        }
        const std::string canonical = canonical_policy(parsed.policy);
        std::uint8_t signature[kPolicySignatureBytes];
        if (canonical.empty() ||
            crypto_sign_detached(signature, nullptr,
                                 reinterpret_cast<const unsigned char*>(canonical.data()),
                                 canonical.size(), secret_key) != 0) {
            if (error != nullptr) {
                *error = "signing failed";
            }
            return {};
        }
        std::string out;
        if (parsed.has_signature) {
            out.assign(unsigned_text.substr(0, parsed.signature_begin));
            out.append(unsigned_text.substr(parsed.signature_end));
        } else {
            out.assign(unsigned_text);
        }
        if (!out.empty() && out.back() != '\n') {
            out.push_back('\n');
        }
        out.append("signature = ");
        out.append(to_base64(signature, sizeof signature));
        out.push_back('\n');

        // Checking the result against the key's own public half catches a
        // rendering or splicing bug here before a server rejects the file.
        unsigned char public_key[crypto_sign_PUBLICKEYBYTES];
        crypto_sign_ed25519_sk_to_pk(public_key, secret_key);
        const PolicyFileResult check =
            parse_policy_text(out, to_hex(public_key, sizeof public_key));
        if (check.status != PolicyFileStatus::Ok) {
            if (error != nullptr) {
                *error = "the signed text does not verify: " + check.error;
            }
            return {};
        }
        return out;
    } catch (const std::bad_alloc&) {
        if (error != nullptr) {
            *error = kOutOfMemory;
        }
        return {};
    } catch (const std::exception&) {
        if (error != nullptr) {
            *error = kInternalError;
        }
        return {};
    }
}

void generate_keypair(std::string* public_key_text, std::string* secret_key_text) noexcept {
    public_key_text->clear();
    secret_key_text->clear();
    if (!sodium_ready()) {
        return;
    }
    unsigned char public_key[crypto_sign_PUBLICKEYBYTES];
    unsigned char secret_key[crypto_sign_SECRETKEYBYTES];
    if (crypto_sign_keypair(public_key, secret_key) != 0) {
        sodium_memzero(secret_key, sizeof secret_key);
        return;
    }
    try {
        *public_key_text = to_hex(public_key, sizeof public_key);
        *secret_key_text = to_hex(secret_key, sizeof secret_key);
    } catch (...) {
        public_key_text->clear();
        secret_key_text->clear();
    }
    sodium_memzero(secret_key, sizeof secret_key);
}

}  // namespace ephemeral_crypt
