// The engine's start-up decisions and its C interface: which policy is in
// force (settings, signed and unsigned files, refusals), the self-test
// through the layer, the counters' bounds, and the fence that carries errno
// and a message across the C boundary.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "core/policy.hpp"
#include "engine/engine_api.h"
#include "engine/errors.hpp"
#include "engine/policy_loading.hpp"
#include "engine/self_test.hpp"
#include "engine_fixture.hpp"

namespace ephemeral_crypt::engine {
namespace {

using testing::EngineTest;
using testing::slurp;
using testing::spit;

constexpr char kPolicyText[] =
    "version = fleet-7\ntemp_relation = on\nspill = off\nwal = on\n"
    "temp_relation_degradation = fail_open_audit\n";

class PolicyResolutionTest : public EngineTest {
  protected:
    void SetUp() override {
        EngineTest::SetUp();
        generate_keypair(&public_key_, &secret_key_);
        settings_.version = "from-settings";
        settings_.of(Category::Spill).enabled = true;
        spit(path("unsigned.policy"), kPolicyText);
        std::uint8_t secret[kPolicySecretKeyBytes];
        ASSERT_TRUE(parse_secret_key(secret_key_, secret, nullptr));
        spit(path("signed.policy"), sign_policy_text(kPolicyText, secret, nullptr));
    }
    PolicyResolution resolve(const std::string& file, bool require_signed,
                             const std::string& key = "") {
        PolicyRequest request;
        request.from_settings = settings_;
        request.policy_file = file.empty() ? "" : path(file);
        request.public_key = key;
        request.require_signed = require_signed;
        return resolve_policy(request);
    }
    Policy settings_;
    std::string public_key_;
    std::string secret_key_;
};

TEST_F(PolicyResolutionTest, WithoutAFileTheSettingsAreThePolicy) {
    const PolicyResolution resolved = resolve("", false);
    EXPECT_EQ(resolved.verdict, PolicyVerdict::Accepted);
    EXPECT_FALSE(resolved.from_file);
    EXPECT_FALSE(resolved.signed_ok);
    EXPECT_EQ(resolved.policy.version, "from-settings");
    EXPECT_EQ(resolved.digest, policy_digest_hex(settings_));
    EXPECT_EQ(resolve("", true).verdict, PolicyVerdict::SignedButNoFile);
}

TEST_F(PolicyResolutionTest, ASignedFileReplacesTheSettings) {
    const PolicyResolution resolved = resolve("signed.policy", true, public_key_);
    ASSERT_EQ(resolved.verdict, PolicyVerdict::Accepted) << resolved.detail;
    EXPECT_TRUE(resolved.from_file);
    EXPECT_TRUE(resolved.signed_ok);
    EXPECT_EQ(resolved.policy.version, "fleet-7");
    EXPECT_FALSE(resolved.policy.of(Category::Spill).enabled);
    EXPECT_EQ(resolved.policy.of(Category::TempRelation).degradation, Degradation::FailOpenAudit);
    EXPECT_EQ(resolved.digest, policy_digest_hex(resolved.policy));
}

TEST_F(PolicyResolutionTest, AnUnsignedFileIsUsedOnlyWhenNoSignatureIsRequired) {
    const PolicyResolution used = resolve("unsigned.policy", false);
    EXPECT_EQ(used.verdict, PolicyVerdict::Accepted);
    EXPECT_FALSE(used.signed_ok);
    EXPECT_EQ(used.policy.version, "fleet-7");
    const PolicyResolution refused = resolve("unsigned.policy", true, public_key_);
    EXPECT_EQ(refused.verdict, PolicyVerdict::FileRejected);
    EXPECT_EQ(refused.file_status, PolicyFileStatus::Unsigned);
    EXPECT_EQ(refused.detail, "no signature line");
}

TEST_F(PolicyResolutionTest, ABrokenFileRefusesTheStartWhateverIsRequired) {
    std::string tampered = slurp(path("signed.policy"));
    tampered.replace(tampered.find("wal = on"), 8, "wal = off");
    spit(path("tampered.policy"), tampered);
    spit(path("malformed.policy"), "version = x\nspill = maybe\n");
    for (const bool require_signed : {false, true}) {
        const PolicyResolution bad_signature =
            resolve("tampered.policy", require_signed, public_key_);
        EXPECT_EQ(bad_signature.verdict, PolicyVerdict::FileRejected);
        EXPECT_EQ(bad_signature.file_status, PolicyFileStatus::BadSignature);
        EXPECT_EQ(resolve("malformed.policy", require_signed).file_status,
                  PolicyFileStatus::Malformed);
        const PolicyResolution missing = resolve("missing.policy", require_signed);
        EXPECT_EQ(missing.verdict, PolicyVerdict::FileRejected);
        EXPECT_EQ(missing.file_status, PolicyFileStatus::Missing);
        EXPECT_EQ(missing.error_number, ENOENT);
        EXPECT_EQ(missing.detail, "cannot open: No such file or directory");
    }
}

TEST_F(PolicyResolutionTest, TheCInterfaceCarriesTheVerdictAndTheErrno) {
    ec_policy from_settings = {};
    std::snprintf(from_settings.version, sizeof(from_settings.version), "%s", "v1");
    ec_policy_resolution resolved;
    ec_error error;
    ASSERT_EQ(ec_engine_resolve_policy(&from_settings, "", "", false, &resolved, &error), EC_OK);
    EXPECT_EQ(resolved.verdict, EC_POLICY_ACCEPTED);
    EXPECT_STREQ(resolved.policy.version, "v1");
    Policy core;
    core.version = "v1";
    EXPECT_EQ(resolved.digest, policy_digest_hex(core));

    const std::string missing = path("missing.policy");
    EXPECT_EQ(
        ec_engine_resolve_policy(&from_settings, missing.c_str(), "", false, &resolved, &error),
        EC_FAILED);
    EXPECT_EQ(resolved.verdict, EC_POLICY_FILE_REJECTED);
    EXPECT_EQ(resolved.file_status, EC_POLICY_MISSING);
    EXPECT_EQ(error.status, EC_FAILED);
    EXPECT_EQ(error.saved_errno, ENOENT);
    EXPECT_STREQ(error.message, "cannot open: No such file or directory");
}

// The ciphers cross the C interface both ways, and the resolution names
// them in one phrase for SQL.
TEST_F(PolicyResolutionTest, TheCInterfaceCarriesTheCiphers) {
    ec_policy from_settings = {};
    std::snprintf(from_settings.version, sizeof(from_settings.version), "%s", "v1");
    from_settings.cipher[EC_CATEGORY_SPILL] = EC_CIPHER_AES_256_GCM;
    ec_policy_resolution resolved;
    ec_error error;
    ASSERT_EQ(ec_engine_resolve_policy(&from_settings, "", "", false, &resolved, &error), EC_OK);
    EXPECT_EQ(resolved.policy.cipher[EC_CATEGORY_SPILL], EC_CIPHER_AES_256_GCM);
    EXPECT_EQ(resolved.policy.cipher[EC_CATEGORY_TEMP_RELATION], EC_CIPHER_AES_256_XTS);
    EXPECT_EQ(resolved.policy.cipher[EC_CATEGORY_WAL], EC_CIPHER_AES_256_XTS);
    EXPECT_STREQ(resolved.cipher_summary, "AES-256-XTS (temp_relation, wal), AES-256-GCM (spill)");
    Policy core;
    core.version = "v1";
    core.of(Category::Spill).cipher = FileCipher::Aes256Gcm;
    EXPECT_EQ(resolved.digest, policy_digest_hex(core));
    EXPECT_STREQ(ec_engine_cipher_name(EC_CIPHER_AES_256_GCM), "AES-256-GCM");
    EXPECT_STREQ(ec_engine_cipher_name(EC_CIPHER_AES_256_XTS), "AES-256-XTS");

    // A policy file's cipher keys replace the settings' ciphers.
    spit(path("gcm.policy"), std::string(kPolicyText) + "temp_relation_cipher = aes-256-gcm\n");
    const std::string file = path("gcm.policy");
    ASSERT_EQ(ec_engine_resolve_policy(&from_settings, file.c_str(), "", false, &resolved, &error),
              EC_OK);
    EXPECT_EQ(resolved.policy.cipher[EC_CATEGORY_TEMP_RELATION], EC_CIPHER_AES_256_GCM);
    EXPECT_EQ(resolved.policy.cipher[EC_CATEGORY_SPILL], EC_CIPHER_AES_256_XTS);
    EXPECT_STREQ(resolved.cipher_summary, "AES-256-GCM (temp_relation), AES-256-XTS (spill, wal)");
}

class EngineApiTest : public EngineTest {};

TEST_F(EngineApiTest, TheFenceTurnsAFailureIntoErrnoAndMessage) {
    // The server's working directory is its data directory; this one has none.
    char cwd[4096];
    ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);
    ASSERT_EQ(chdir(path("base").c_str()), 0);  // no pg_wal here
    int converted = -1;
    ec_error error;
    const ec_status status = ec_engine_encrypt_plaintext_wal(&converted, &error);
    ASSERT_EQ(chdir(cwd), 0);
    EXPECT_EQ(status, EC_FAILED);
    EXPECT_EQ(converted, 0);
    EXPECT_EQ(error.status, EC_FAILED);
    EXPECT_EQ(error.saved_errno, ENOENT);
    EXPECT_STREQ(error.message, "could not open directory \"pg_wal\"");
}

TEST_F(EngineApiTest, ASuccessClearsTheError) {
    char cwd[4096];
    ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);
    ASSERT_EQ(chdir(data_dir_.c_str()), 0);
    int converted = -1;
    ec_error error;
    error.saved_errno = EIO;
    const ec_status status = ec_engine_encrypt_plaintext_wal(&converted, &error);
    ASSERT_EQ(chdir(cwd), 0);
    EXPECT_EQ(status, EC_OK);
    EXPECT_EQ(converted, 0);
    EXPECT_EQ(error.status, EC_OK);
    EXPECT_EQ(error.saved_errno, 0);
    EXPECT_STREQ(error.message, "");
}

TEST_F(EngineApiTest, CountersAreReadOnlyForRealCategories) {
    ec_counter_values values = {};
    values.failures = 77;
    EXPECT_FALSE(ec_engine_read_counters(-1, &values));
    EXPECT_FALSE(ec_engine_read_counters(EC_CATEGORY_COUNT, &values));
    EXPECT_EQ(values.failures, 77u);  // untouched
    write_through_layer(path("base/pgsql_tmp/pgsql_tmp5.0"), std::string(5000, 'c'));
    ASSERT_TRUE(ec_engine_read_counters(EC_CATEGORY_SPILL, &values));
    EXPECT_GE(values.bytes_encrypted, 5000u);
    EXPECT_GE(values.files_encrypted, 1u);
    EXPECT_STREQ(ec_engine_category_name(EC_CATEGORY_WAL), "wal");
    EXPECT_STREQ(ec_engine_category_name(7), "unknown");
    EXPECT_STREQ(ec_engine_degradation_name(EC_FAIL_OPEN_AUDIT), "fail_open_audit");
}

class SelfTestTest : public EngineTest {
  protected:
    // The layer's own wrappers, as the server's patched slots would hold them.
    // The members' types all differ, so an order that does not match the
    // struct's does not compile.
    static SelfTestCalls layer_calls() { return {ec_open, ec_pwrite, ec_pread, ec_close}; }
};

TEST_F(SelfTestTest, TheCipherReproducesItsKnownAnswer) {
    EXPECT_TRUE(cipher_known_answers_pass());
}

TEST_F(SelfTestTest, ARoundTripThroughTheLayerPassesAndLeavesNothing) {
    EXPECT_NO_THROW(run_self_test(layer_calls(), data_dir_ + "/"));
    const std::string file =
        path("base/pgsql_tmp/pgsql_tmp_ephemeral_crypt_selftest." + std::to_string(getpid()));
    EXPECT_EQ(access(file.c_str(), F_OK), -1);  // removed
}

// With spill files in AES-256-GCM the round trip's file is format v2, one
// metadata block longer, and passes the same checks.
TEST_F(SelfTestTest, ARoundTripPassesWithSpillFilesInGcm) {
    start(true, FileCipher::Aes256Gcm);
    EXPECT_NO_THROW(run_self_test(layer_calls(), data_dir_ + "/"));
}

TEST_F(SelfTestTest, CallsThatBypassTheLayerFail) {
    SelfTestCalls calls;
    calls.open = ::open;
    calls.pwrite = ::pwrite;
    calls.pread = ::pread;
    calls.close = ::close;
    try {
        run_self_test(calls, data_dir_ + "/");
        FAIL() << "no error";
    } catch (const EngineError& e) {
        EXPECT_NE(std::string(e.what()).find("the layer did not take the self-test file"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_THROW(run_self_test(SelfTestCalls{}, data_dir_ + "/"), EngineError);
}

}  // namespace
}  // namespace ephemeral_crypt::engine
