// The policy module: the canonical rendering is byte-stable and injective,
// its digest matches an independent sha256sum, and the signed policy file
// rejects every kind of damage with the status the server acts on.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/policy.hpp"
#include "policy_fixture.hpp"
#include "temp_dir_fixture.hpp"
#include "test_support.hpp"

namespace ephemeral_crypt {
namespace {

// sample_policy(), kSampleText, make_keys(), sign(), replace_once().
using namespace ephemeral_crypt::testing;

// Independent of libsodium's codec, so the tests do not check the code under
// test against itself.
constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const std::vector<std::uint8_t>& raw) {
    std::string out;
    for (std::size_t i = 0; i < raw.size(); i += 3) {
        const bool second = i + 1 < raw.size();
        const bool third = i + 2 < raw.size();
        const std::uint32_t chunk = (std::uint32_t{raw[i]} << 16) |
                                    (std::uint32_t{second ? raw[i + 1] : std::uint8_t{0}} << 8) |
                                    (third ? raw[i + 2] : 0u);
        out += kBase64Alphabet[(chunk >> 18) & 63];
        out += kBase64Alphabet[(chunk >> 12) & 63];
        out += second ? kBase64Alphabet[(chunk >> 6) & 63] : '=';
        out += third ? kBase64Alphabet[chunk & 63] : '=';
    }
    return out;
}

std::vector<std::uint8_t> base64_decode(std::string_view text) {
    const std::string_view alphabet = kBase64Alphabet;
    std::vector<std::uint8_t> out;
    std::uint32_t bits = 0;
    int nbits = 0;
    for (const char ch : text) {
        if (ch == '=') {
            break;
        }
        bits = (bits << 6) | static_cast<std::uint32_t>(alphabet.find(ch));
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            out.push_back(static_cast<std::uint8_t>(bits >> nbits));
        }
    }
    return out;
}

TEST(PolicyTest, CanonicalRenderingIsTheDocumentedBytes) {
    EXPECT_EQ(canonical_policy(sample_policy()),
              "ephemeral_crypt policy v1\n"
              "version=2026-11-01.3\n"
              "cipher=AES-256-XTS\n"
              "temp_relation=encrypted,fail_closed\n"
              "spill=encrypted,fail_open_audit\n"
              "wal=plaintext,fail_closed\n");
    EXPECT_EQ(canonical_policy(sample_policy()), canonical_policy(sample_policy()));
}

TEST(PolicyTest, EverySettingChangesTheRendering) {
    std::set<std::string> renderings;
    std::set<std::string> digests;
    const auto add = [&](const Policy& p) {
        renderings.insert(canonical_policy(p));
        digests.insert(policy_digest_hex(p));
    };
    add(sample_policy());
    std::size_t variants = 1;
    for (const Category c : kAllCategories) {
        Policy enabled = sample_policy();
        enabled.of(c).enabled = !enabled.of(c).enabled;
        add(enabled);
        Policy degraded = sample_policy();
        degraded.of(c).degradation = degraded.of(c).degradation == Degradation::FailClosed
                                         ? Degradation::FailOpenAudit
                                         : Degradation::FailClosed;
        add(degraded);
        Policy authenticated = sample_policy();
        authenticated.of(c).cipher = FileCipher::Aes256Gcm;
        add(authenticated);
        variants += 3;
    }
    Policy version = sample_policy();
    version.version += "x";
    add(version);
    Policy cipher = sample_policy();
    cipher.cipher = "none";
    add(cipher);
    variants += 2;
    EXPECT_EQ(renderings.size(), variants);
    EXPECT_EQ(digests.size(), variants);
}

TEST(PolicyTest, DigestKnownValue) {
    // Computed outside this code, as one shell command line:
    //   printf '%s\n' 'ephemeral_crypt policy v1' 'version=2026-11-01.3'
    //     'cipher=AES-256-XTS' 'temp_relation=encrypted,fail_closed'
    //     'spill=encrypted,fail_open_audit' 'wal=plaintext,fail_closed' | sha256sum
    EXPECT_EQ(policy_digest_hex(sample_policy()),
              "df641a1552db1e42cb90b324308e87e2ae53f6770f4ee3de89dec98419efd4f1");
}

TEST(PolicyTest, VersionCannotForgeLines) {
    Policy forged = sample_policy();
    forged.version = "1\ncipher=none\nwal=encrypted,fail_closed";
    const std::string canonical = canonical_policy(forged);
    EXPECT_EQ(canonical,
              "ephemeral_crypt policy v1\n"
              "version=1%0Acipher%3Dnone%0Awal%3Dencrypted,fail_closed\n"
              "cipher=AES-256-XTS\n"
              "temp_relation=encrypted,fail_closed\n"
              "spill=encrypted,fail_open_audit\n"
              "wal=plaintext,fail_closed\n");
    // '%' is itself encoded, so an encoded-looking version stays distinct.
    Policy literal = sample_policy();
    literal.version = "1%0Acipher%3Dnone";
    Policy raw = sample_policy();
    raw.version = "1\ncipher=none";
    EXPECT_NE(canonical_policy(literal), canonical_policy(raw));
    Policy spaced = sample_policy();
    spaced.version = std::string("a b\r\x7f\xff", 6) + std::string(1, '\0');
    EXPECT_NE(canonical_policy(spaced).find("version=a%20b%0D%7F%FF%00\n"), std::string::npos);
}

TEST(PolicyTest, ParsesAGoodFile) {
    const PolicyFileResult result = parse_policy_text(kSampleText, "");
    ASSERT_EQ(result.status, PolicyFileStatus::Unsigned) << result.error;
    EXPECT_FALSE(result.signed_ok);
    EXPECT_EQ(canonical_policy(result.policy), canonical_policy(sample_policy()));
}

TEST(PolicyTest, DegradationDefaultsToFailClosedAndCrlfIsAccepted) {
    const PolicyFileResult ok =
        parse_policy_text("version=v\r\ntemp_relation=off\r\nspill=on\r\n  # c\r\nwal=on", "");
    ASSERT_EQ(ok.status, PolicyFileStatus::Unsigned) << ok.error;
    EXPECT_EQ(ok.policy.version, "v");
    EXPECT_FALSE(ok.policy.of(Category::TempRelation).enabled);
    EXPECT_TRUE(ok.policy.of(Category::Wal).enabled);
    for (const Category c : kAllCategories) {
        EXPECT_EQ(ok.policy.of(c).degradation, Degradation::FailClosed);
    }
}

struct MalformedCase {
    const char* name;
    std::string text;
    const char* expected_error;
};

TEST(PolicyTest, MalformedFilesNameTheProblem) {
    const std::string base = "version = 1\ntemp_relation = on\nspill = on\nwal = off\n";
    const MalformedCase cases[] = {
        {"unknown key", base + "colour = blue\n", "line 5: unknown key 'colour'"},
        {"duplicate key", base + "spill = off\n",
         "line 5: duplicate key 'spill' (first set on line 3)"},
        {"no equals", base + "spill off\n", "line 5: expected 'key = value'"},
        {"empty key", base + " = on\n", "line 5: expected 'key = value'"},
        {"bad on/off", "version = 1\ntemp_relation = yes\nspill = on\nwal = off\n",
         "line 2: temp_relation must be on or off, not 'yes'"},
        {"case matters", "version = 1\ntemp_relation = ON\nspill = on\nwal = off\n",
         "line 2: temp_relation must be on or off"},
        {"bad degradation", base + "spill_degradation = fail_soft\n",
         "line 5: spill_degradation must be fail_closed or fail_open_audit"},
        {"wal fail open", base + "wal_degradation = fail_open_audit\n",
         "line 5: wal_degradation: WAL accepts only fail_closed"},
        {"missing version", "temp_relation = on\nspill = on\nwal = off\n",
         "missing required key 'version'"},
        {"missing wal", "version = 1\ntemp_relation = on\nspill = on\n",
         "missing required key 'wal'"},
        {"empty version", "version =\ntemp_relation = on\nspill = on\nwal = off\n",
         "line 1: version is empty"},
        {"long version",
         "version = " + std::string(kPolicyVersionMaxBytes + 1, 'v') +
             "\ntemp_relation = on\nspill = on\nwal = off\n",
         "line 1: version is longer than 256 bytes"},
        {"tab in version", "version = a\tb\ntemp_relation = on\nspill = on\nwal = off\n",
         "line 1: version contains a tab"},
        {"control character",
         "version = a\x01"
         "b\ntemp_relation = on\nspill = on\nwal = off\n",
         "line 1: control character 0x01"},
        {"NUL byte", std::string("version = a\0b\n", 14) + "temp_relation = on\nspill = on\n",
         "line 1: control character 0x00"},
        {"bare CR splits nothing", "version = 1\rwal = on\ntemp_relation = on\nspill = on\n",
         "line 1: control character 0x0d"},
        {"bad signature encoding", base + "signature = not-base64\n",
         "line 5: signature is not 64 bytes of base64 or hex"},
        {"short signature", base + "signature = " + std::string(126, 'a') + "\n",
         "line 5: signature is not 64 bytes"},
        {"setting after signature",
         "version = 1\ntemp_relation = on\nspill = on\nsignature = " + std::string(128, '0') +
             "\nwal = off\n",
         "line 5: 'wal' after the signature; signature must be the last setting"},
        {"duplicate signature",
         base + "signature = " + std::string(128, '0') + "\nsignature = " + std::string(128, '0') +
             "\n",
         "line 6: duplicate key 'signature'"},
        {"too large", base + "#" + std::string(kPolicyFileMaxBytes, 'x') + "\n",
         "larger than 1048576 bytes"},
    };
    for (const MalformedCase& c : cases) {
        SCOPED_TRACE(c.name);
        const PolicyFileResult result = parse_policy_text(c.text, "");
        EXPECT_EQ(result.status, PolicyFileStatus::Malformed);
        EXPECT_NE(result.error.find(c.expected_error), std::string::npos) << result.error;
        EXPECT_FALSE(result.signed_ok);
    }
}

TEST(PolicyTest, HostileValuesAreTruncatedInErrors) {
    const PolicyFileResult result =
        parse_policy_text("version = 1\ntemp_relation = " + std::string(5000, 'z') + "\n", "");
    EXPECT_EQ(result.status, PolicyFileStatus::Malformed);
    EXPECT_LT(result.error.size(), 200u) << result.error;
}

TEST(PolicyTest, StatusNames) {
    EXPECT_EQ(policy_file_status_name(PolicyFileStatus::Ok), "ok");
    EXPECT_EQ(policy_file_status_name(PolicyFileStatus::Missing), "missing");
    EXPECT_EQ(policy_file_status_name(PolicyFileStatus::Unreadable), "unreadable");
    EXPECT_EQ(policy_file_status_name(PolicyFileStatus::Malformed), "malformed");
    EXPECT_EQ(policy_file_status_name(PolicyFileStatus::Unsigned), "unsigned");
    EXPECT_EQ(policy_file_status_name(PolicyFileStatus::BadSignature), "bad_signature");
    EXPECT_EQ(degradation_name(Degradation::FailOpenAudit), "fail_open_audit");
    EXPECT_EQ(degradation_name(static_cast<Degradation>(7)), "invalid");
}

TEST(PolicyTest, SignatureVerifies) {
    const Keys keys = make_keys();
    const std::string signed_text = sign(kSampleText, keys);
    EXPECT_EQ(signed_text.rfind(kSampleText, 0), 0u) << "the original text is not kept";
    const std::size_t last_line = signed_text.rfind('\n', signed_text.size() - 2) + 1;
    EXPECT_EQ(signed_text.compare(last_line, 12, "signature = "), 0) << signed_text;
    EXPECT_EQ(signed_text.size() - last_line, 12u + 88u + 1u) << "not base64 of 64 bytes";
    const PolicyFileResult result = parse_policy_text(signed_text, keys.public_text);
    ASSERT_EQ(result.status, PolicyFileStatus::Ok) << result.error;
    EXPECT_TRUE(result.signed_ok);
    EXPECT_TRUE(result.error.empty());
    EXPECT_EQ(canonical_policy(result.policy), canonical_policy(sample_policy()));

    // Without a key the signature is not checked, and the result says so.
    const PolicyFileResult unchecked = parse_policy_text(signed_text, "");
    EXPECT_EQ(unchecked.status, PolicyFileStatus::Unsigned);
    EXPECT_FALSE(unchecked.signed_ok);
}

TEST(PolicyTest, UnsignedFileWithAKeyIsUnsigned) {
    const Keys keys = make_keys();
    const PolicyFileResult result = parse_policy_text(kSampleText, keys.public_text);
    EXPECT_EQ(result.status, PolicyFileStatus::Unsigned);
    EXPECT_FALSE(result.signed_ok);
    EXPECT_EQ(result.error, "no signature line");
}

TEST(PolicyTest, TamperedSettingIsBadSignature) {
    const Keys keys = make_keys();
    const std::string signed_text = sign(kSampleText, keys);
    const std::pair<std::string, std::string> tampers[] = {
        {"spill = on", "spill = off"},
        {"wal = off", "wal = on"},
        {"spill_degradation = fail_open_audit", "spill_degradation = fail_closed"},
        {"version = 2026-11-01.3", "version = 2026-11-01.4"},
        {"temp_relation = on\n",
         "temp_relation = on\ntemp_relation_degradation = fail_open_audit\n"},
        {"spill_degradation = fail_open_audit\n", ""},
    };
    for (const auto& [from, to] : tampers) {
        SCOPED_TRACE(from + " -> " + to);
        const PolicyFileResult result =
            parse_policy_text(replace_once(signed_text, from, to), keys.public_text);
        EXPECT_EQ(result.status, PolicyFileStatus::BadSignature) << result.error;
        EXPECT_FALSE(result.signed_ok);
        EXPECT_NE(result.error.find("bad signature"), std::string::npos);
    }
}

TEST(PolicyTest, TamperedSignatureIsBadSignature) {
    const Keys keys = make_keys();
    const std::string signed_text = sign(kSampleText, keys);
    const std::size_t value = signed_text.rfind("signature = ") + 12;
    // 64 bytes are 85 full base64 characters; the 86th also holds padding bits
    // a decoder may ignore, and the last two are '='.
    for (std::size_t i = 0; i < 85; i += 4) {
        std::string tampered = signed_text;
        tampered[value + i] = tampered[value + i] == 'A' ? 'B' : 'A';
        const PolicyFileResult result = parse_policy_text(tampered, keys.public_text);
        EXPECT_TRUE(result.status == PolicyFileStatus::BadSignature ||
                    result.status == PolicyFileStatus::Malformed)
            << i << ": " << policy_file_status_name(result.status);
        EXPECT_FALSE(result.signed_ok);
    }
}

TEST(PolicyTest, WrongPublicKeyIsBadSignature) {
    const Keys keys = make_keys();
    const Keys other = make_keys();
    const PolicyFileResult result = parse_policy_text(sign(kSampleText, keys), other.public_text);
    EXPECT_EQ(result.status, PolicyFileStatus::BadSignature);
    EXPECT_FALSE(result.signed_ok);
}

TEST(PolicyTest, CommentsWhitespaceAndOrderKeepTheSignature) {
    const Keys keys = make_keys();
    const std::string signed_text = sign(kSampleText, keys);
    const std::string signature_line = signed_text.substr(signed_text.rfind("signature = "));
    const std::string rewritten =
        "\n\n   # rewritten by hand\n"
        "wal=off\r\n"
        "\tspill_degradation   =   fail_open_audit   \n"
        "spill =on\n"
        "temp_relation= on\n"
        "version\t=\t2026-11-01.3\n"
        "# explicit default, same effective policy\n"
        "wal_degradation = fail_closed\n" +
        signature_line + "# trailing comment\n\n";
    const PolicyFileResult result = parse_policy_text(rewritten, keys.public_text);
    EXPECT_EQ(result.status, PolicyFileStatus::Ok) << result.error;
}

TEST(PolicyTest, SignatureAcceptedAsHex) {
    const Keys keys = make_keys();
    const std::string signed_text = sign(kSampleText, keys);
    const std::size_t at = signed_text.rfind("signature = ");
    const std::vector<std::uint8_t> raw = base64_decode(signed_text.substr(at + 12, 88));
    ASSERT_EQ(raw.size(), kPolicySignatureBytes);
    std::string hex;
    char digits[3];
    for (const std::uint8_t byte : raw) {
        std::snprintf(digits, sizeof digits, "%02X", byte);
        hex += digits;
    }
    const std::string hex_text = signed_text.substr(0, at) + "signature = " + hex + "\n";
    EXPECT_EQ(parse_policy_text(hex_text, keys.public_text).status, PolicyFileStatus::Ok);
}

TEST(PolicyTest, ResigningReplacesTheSignatureLine) {
    const Keys keys = make_keys();
    const Keys other = make_keys();
    const std::string once = sign(kSampleText, keys);
    const std::string twice = sign(once, other);
    EXPECT_EQ(twice.find("signature = "), twice.rfind("signature = "));
    EXPECT_EQ(parse_policy_text(twice, other.public_text).status, PolicyFileStatus::Ok);
    EXPECT_EQ(parse_policy_text(twice, keys.public_text).status, PolicyFileStatus::BadSignature);
    // A garbled old signature does not stop re-signing.
    const std::string garbled = replace_once(once, "signature = ", "signature = !!");
    EXPECT_EQ(parse_policy_text(sign(garbled, keys), keys.public_text).status,
              PolicyFileStatus::Ok);
}

TEST(PolicyTest, SigningRefusesMalformedText) {
    const Keys keys = make_keys();
    std::string error;
    EXPECT_TRUE(sign_policy_text("version = 1\ntemp_relation = on\nspill = on\nwal = on\n"
                                 "wal_degradation = fail_open_audit\n",
                                 keys.secret, &error)
                    .empty());
    EXPECT_NE(error.find("WAL accepts only fail_closed"), std::string::npos) << error;
}

TEST(PolicyTest, KeyParsing) {
    const Keys keys = make_keys();
    std::uint8_t public_key[kPolicyPublicKeyBytes];
    std::string error;
    EXPECT_TRUE(parse_public_key(keys.public_text, public_key, &error)) << error;
    EXPECT_TRUE(parse_public_key("  " + keys.public_text + "\n", public_key, &error));
    const std::vector<std::uint8_t> raw = testing::from_hex(keys.public_text);
    // The same key as base64 (44 characters) is accepted and equal.
    const std::string b64 = base64_encode(raw);
    ASSERT_EQ(b64.size(), 44u);
    std::uint8_t from_b64[kPolicyPublicKeyBytes];
    EXPECT_TRUE(parse_public_key(b64, from_b64, &error)) << error;
    EXPECT_EQ(0, std::memcmp(public_key, from_b64, sizeof public_key));

    EXPECT_FALSE(parse_public_key("", public_key, &error));
    EXPECT_FALSE(parse_public_key(keys.public_text.substr(2), public_key, &error));
    EXPECT_FALSE(parse_public_key(keys.secret_text, public_key, &error));
    EXPECT_FALSE(parse_public_key(std::string(63, 'a') + "g", public_key, &error));

    // A secret key whose public half was damaged is refused.
    std::string damaged = keys.secret_text;
    damaged[127] = damaged[127] == '0' ? '1' : '0';
    std::uint8_t secret[kPolicySecretKeyBytes];
    EXPECT_FALSE(parse_secret_key(damaged, secret, &error));
    EXPECT_NE(error.find("does not match"), std::string::npos) << error;

    // A malformed key given for verification is reported, not ignored.
    const PolicyFileResult result = parse_policy_text(kSampleText, "zz");
    EXPECT_EQ(result.status, PolicyFileStatus::Malformed);
    EXPECT_EQ(result.error.rfind("public key:", 0), 0u) << result.error;
}

class PolicyFileTest : public TempDirTest {
  protected:
    std::string write(const std::string& name, const std::string& text) {
        std::ofstream(path(name), std::ios::binary) << text;
        return path(name);
    }
};

TEST_F(PolicyFileTest, LoadsASignedFile) {
    const Keys keys = make_keys();
    const std::string path = write("policy.conf", sign(kSampleText, keys));
    const PolicyFileResult result = load_policy_file(path, keys.public_text);
    ASSERT_EQ(result.status, PolicyFileStatus::Ok) << result.error;
    EXPECT_TRUE(result.signed_ok);
    EXPECT_EQ(policy_digest_hex(result.policy), policy_digest_hex(sample_policy()));
}

TEST_F(PolicyFileTest, MissingFile) {
    EXPECT_EQ(load_policy_file(dir_ + "/absent.conf", "").status, PolicyFileStatus::Missing);
    EXPECT_EQ(load_policy_file(dir_ + "/absent/deeper.conf", "").status, PolicyFileStatus::Missing);
}

TEST_F(PolicyFileTest, DirectoryIsUnreadable) {
    // A directory opens but is not a regular file.
    const PolicyFileResult directory = load_policy_file(dir_, "");
    EXPECT_EQ(directory.status, PolicyFileStatus::Unreadable);
    EXPECT_EQ(directory.error, "not a regular file");
}

TEST_F(PolicyFileTest, FifoIsUnreadableWithoutBlocking) {
    const std::string path = dir_ + "/fifo";
    ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
    EXPECT_EQ(load_policy_file(path, "").status, PolicyFileStatus::Unreadable);
}

TEST_F(PolicyFileTest, OpenFailureIsUnreadable) {
    // A symlink loop fails to open for root too, unlike a mode-0 file, so the
    // test means the same under any user.
    const std::string loop = dir_ + "/loop";
    ASSERT_EQ(symlink(loop.c_str(), loop.c_str()), 0);
    const PolicyFileResult looped = load_policy_file(loop, "");
    EXPECT_EQ(looped.status, PolicyFileStatus::Unreadable);
    EXPECT_EQ(looped.error.rfind("cannot open: ", 0), 0u) << looped.error;

    if (geteuid() != 0) {
        const std::string path = write("secret.conf", kSampleText);
        ASSERT_EQ(chmod(path.c_str(), 0), 0);
        const PolicyFileResult denied = load_policy_file(path, "");
        EXPECT_EQ(denied.status, PolicyFileStatus::Unreadable);
        EXPECT_NE(denied.error.find("Permission denied"), std::string::npos) << denied.error;
    }
}

TEST_F(PolicyFileTest, MalformedFileNamesTheLine) {
    const std::string path = write("bad.conf", std::string(kSampleText) + "wal = maybe\n");
    const PolicyFileResult result = load_policy_file(path, "");
    EXPECT_EQ(result.status, PolicyFileStatus::Malformed);
    EXPECT_NE(result.error.find("line 8: duplicate key 'wal'"), std::string::npos) << result.error;
}

}  // namespace
}  // namespace ephemeral_crypt
