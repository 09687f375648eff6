// The policy's per-category ciphers: how the canonical rendering names them
// (and leaves every policy without them as it was), the policy file's cipher
// keys, the signature over them, a file signed by the 1.0 tool that keeps
// its digest, and the summary SQL reports.
#include <gtest/gtest.h>

#include <string>

#include "core/policy.hpp"
#include "policy_fixture.hpp"

namespace ephemeral_crypt {
namespace {

// sample_policy(), kSampleText, make_keys(), sign(), replace_once().
using namespace ephemeral_crypt::testing;

// The digest of sample_policy() with temp_relation and spill in AES-256-GCM.
constexpr char kBothGcmDigest[] =
    "9884b0c70ecf2775257e77f2021a63d90ac5c451119b9bf5d48b4287aa4172cf";

// A category in AES-256-GCM says so at the end of its line; in AES-256-XTS,
// the default, its line is what it was before ciphers could be chosen.
TEST(PolicyTest, ACategorysCipherIsRenderedOnlyWhenItIsNotXts) {
    Policy policy = sample_policy();
    policy.of(Category::Spill).cipher = FileCipher::Aes256Gcm;
    policy.of(Category::TempRelation).cipher = FileCipher::Aes256Gcm;
    EXPECT_EQ(canonical_policy(policy),
              "ephemeral_crypt policy v1\n"
              "version=2026-11-01.3\n"
              "cipher=AES-256-XTS\n"
              "temp_relation=encrypted,fail_closed,aes-256-gcm\n"
              "spill=encrypted,fail_open_audit,aes-256-gcm\n"
              "wal=plaintext,fail_closed\n");
    // printf '%s\n' 'ephemeral_crypt policy v1' 'version=2026-11-01.3'
    //   'cipher=AES-256-XTS' 'temp_relation=encrypted,fail_closed,aes-256-gcm'
    //   'spill=encrypted,fail_open_audit,aes-256-gcm' 'wal=plaintext,fail_closed' | sha256sum
    EXPECT_EQ(policy_digest_hex(policy), kBothGcmDigest);
    Policy explicit_xts = sample_policy();
    explicit_xts.of(Category::Spill).cipher = FileCipher::Aes256Xts;
    EXPECT_EQ(canonical_policy(explicit_xts), canonical_policy(sample_policy()));
}

TEST(PolicyTest, CipherKeysOfThePolicyFile) {
    const PolicyFileResult both = parse_policy_text(
        std::string(kSampleText) + "temp_relation_cipher = aes-256-gcm\nspill_cipher=aes-256-gcm\n",
        "");
    ASSERT_EQ(both.status, PolicyFileStatus::Unsigned) << both.error;
    EXPECT_EQ(both.policy.of(Category::TempRelation).cipher, FileCipher::Aes256Gcm);
    EXPECT_EQ(both.policy.of(Category::Spill).cipher, FileCipher::Aes256Gcm);
    EXPECT_EQ(both.policy.of(Category::Wal).cipher, FileCipher::Aes256Xts);
    EXPECT_EQ(policy_digest_hex(both.policy), kBothGcmDigest);

    // Naming the default is the same policy as leaving it out.
    const PolicyFileResult xts =
        parse_policy_text(std::string(kSampleText) + "spill_cipher = aes-256-xts\n", "");
    ASSERT_EQ(xts.status, PolicyFileStatus::Unsigned) << xts.error;
    EXPECT_EQ(policy_digest_hex(xts.policy), policy_digest_hex(sample_policy()));

    const struct {
        const char* line;
        const char* error;
    } bad[] = {
        {"spill_cipher = aes-256-cbc", "line 8: spill_cipher must be aes-256-xts or aes-256-gcm"},
        {"temp_relation_cipher = AES-256-GCM",
         "line 8: temp_relation_cipher must be aes-256-xts or aes-256-gcm"},
        {"wal_cipher = aes-256-gcm", "line 8: unknown key 'wal_cipher'"},
        {"spill_cipher = aes-256-gcm\nspill_cipher = aes-256-gcm", "line 9: duplicate key"},
    };
    for (const auto& c : bad) {
        const PolicyFileResult r = parse_policy_text(std::string(kSampleText) + c.line + "\n", "");
        EXPECT_EQ(r.status, PolicyFileStatus::Malformed) << c.line;
        EXPECT_EQ(r.error.rfind(c.error, 0), 0u) << r.error;
    }
}

// The signature covers the ciphers: a file signed with GCM chosen does not
// verify once the choice is removed or changed.
TEST(PolicyTest, TheSignatureCoversTheCiphers) {
    const Keys keys = make_keys();
    const std::string signed_text =
        sign(std::string(kSampleText) + "spill_cipher = aes-256-gcm\n", keys);
    EXPECT_EQ(parse_policy_text(signed_text, keys.public_text).status, PolicyFileStatus::Ok);
    EXPECT_EQ(parse_policy_text(replace_once(signed_text, "spill_cipher = aes-256-gcm\n", ""),
                                keys.public_text)
                  .status,
              PolicyFileStatus::BadSignature);
    EXPECT_EQ(
        parse_policy_text(replace_once(signed_text, "aes-256-gcm", "aes-256-xts"), keys.public_text)
            .status,
        PolicyFileStatus::BadSignature);
}

// A policy file signed by the 1.0 tool, before ciphers could be chosen,
// still verifies, and keeps the digest 1.0 reported for it (the example in
// docs/policy.md).
TEST(PolicyTest, APolicySignedBeforeCiphersCouldBeChosenKeepsItsDigest) {
    constexpr char kSignedBy10[] =
        "# fleet policy, signed by the control plane\n"
        "version = 2026-11-22.1\n"
        "temp_relation = on\n"
        "spill = on\n"
        "wal = off\n"
        "spill_degradation = fail_open_audit\n"
        "signature = "
        "qWsVEGxoEDmwTfcsPlBguU7MrHzh1sqhPTp5GfDvOVU23+tpPils1yEMDvfmtqMYgeyg76G6z7SghHZRlpFxDw=="
        "\n";
    constexpr char kPublicKey[] =
        "5f3b20fae71742b6777f91467334b6809fbd5c48bfe99d4e8c7419ecb4d7c44b";
    const PolicyFileResult result = parse_policy_text(kSignedBy10, kPublicKey);
    ASSERT_EQ(result.status, PolicyFileStatus::Ok) << result.error;
    for (const Category c : kAllCategories) {
        EXPECT_EQ(result.policy.of(c).cipher, FileCipher::Aes256Xts);
    }
    EXPECT_EQ(policy_digest_hex(result.policy),
              "46db1d9dc030dd8cf44ff3845b7805dc277d34d1f0bae7da691c4142ae0b5bfa");
}

TEST(PolicyTest, CipherSummaryNamesEachCategorysCipher) {
    Policy policy = sample_policy();
    EXPECT_EQ(cipher_summary(policy), "AES-256-XTS");
    policy.of(Category::Spill).cipher = FileCipher::Aes256Gcm;
    EXPECT_EQ(cipher_summary(policy), "AES-256-XTS (temp_relation, wal), AES-256-GCM (spill)");
    policy.of(Category::TempRelation).cipher = FileCipher::Aes256Gcm;
    EXPECT_EQ(cipher_summary(policy), "AES-256-GCM (temp_relation, spill), AES-256-XTS (wal)");
}

}  // namespace
}  // namespace ephemeral_crypt
