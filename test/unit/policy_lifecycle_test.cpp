// The policy's lifecycle keys: serial, not_after and max_key_age parse
// strictly, render only when set (so policies signed before them keep their
// digest), are covered by the signature; the order of serials, the freshness
// arithmetic at its boundaries, the accepted-serial file, the reload
// decision, and the shared block the layer reads the policy in force from.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <limits>
#include <string>

#include "core/policy.hpp"
#include "core/policy_lifecycle.hpp"
#include "core/shared_policy.hpp"
#include "engine/errors.hpp"
#include "engine/policy_lifecycle.hpp"
#include "policy_fixture.hpp"
#include "temp_dir_fixture.hpp"
#include "test_support.hpp"

namespace ephemeral_crypt {
namespace {

using namespace ephemeral_crypt::testing;

constexpr std::int64_t k2027 = 1798761600;  // 2027-01-01T00:00:00Z (date -u -d ... +%s)

TEST(PolicyLifecycleTest, SerialIsASigned64BitDecimal) {
    EXPECT_EQ(parse_serial("0"), 0);
    EXPECT_EQ(parse_serial("42"), 42);
    EXPECT_EQ(parse_serial("-7"), -7);
    EXPECT_EQ(parse_serial("9223372036854775807"), std::numeric_limits<std::int64_t>::max());
    EXPECT_EQ(parse_serial("-9223372036854775808"), std::numeric_limits<std::int64_t>::min());
    for (const char* bad : {"", "-", "+1", "1.0", "0x10", "9223372036854775808",
                            "-9223372036854775809", "12a", " 1", "99999999999999999999"}) {
        EXPECT_FALSE(parse_serial(bad).has_value()) << bad;
    }
}

TEST(PolicyLifecycleTest, UtcTimesParseAndFormatExactly) {
    EXPECT_EQ(parse_utc_time("1970-01-01T00:00:00Z"), 0);
    EXPECT_EQ(parse_utc_time("2027-01-01T00:00:00Z"), k2027);
    EXPECT_EQ(parse_utc_time("2024-02-29T12:34:56Z"), 1709210096);
    EXPECT_EQ(parse_utc_time("9999-12-31T23:59:59Z"), kLatestUtcSeconds);
    for (const char* bad :
         {"2027-01-01", "2027-01-01T00:00:00", "2027-01-01T00:00:00+00:00", "2027-01-01 00:00:00Z",
          "2027-01-01T00:00:00.5Z", "2023-02-29T00:00:00Z", "2027-13-01T00:00:00Z",
          "2027-04-31T00:00:00Z", "2027-01-01T24:00:00Z", "2027-01-01T00:60:00Z",
          "2027-01-01T00:00:60Z", "1969-12-31T23:59:59Z", "2027-1-01T00:00:00Z",
          "2027-01-01t00:00:00z"}) {
        EXPECT_FALSE(parse_utc_time(bad).has_value()) << bad;
    }
    for (const std::int64_t t : {std::int64_t{0}, k2027, std::int64_t{1709210096},
                                 kLatestUtcSeconds, std::int64_t{951782400} /* 2000-02-29 */}) {
        EXPECT_EQ(parse_utc_time(format_utc_time(t)), t) << format_utc_time(t);
    }
    EXPECT_EQ(format_utc_time(k2027), "2027-01-01T00:00:00Z");
    EXPECT_EQ(format_utc_time(-5), "1970-01-01T00:00:00Z");
}

TEST(PolicyLifecycleTest, DurationsTakeAUnitAndAreBounded) {
    EXPECT_EQ(parse_duration("30d"), 30 * 86400);
    EXPECT_EQ(parse_duration("12h"), 12 * 3600);
    EXPECT_EQ(parse_duration("90m"), 90 * 60);
    EXPECT_EQ(parse_duration("3600s"), 3600);
    EXPECT_EQ(parse_duration("3600"), 3600);
    EXPECT_EQ(parse_duration("36600d"), kMaxKeyAgeSeconds);
    for (const char* bad : {"", "d", "0", "0d", "-1d", "1w", "1.5h", "36601d", "99999999999",
                            "999999999999d", "1 d", "1dd"}) {
        EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
    }
    EXPECT_EQ(format_duration(30 * 86400), "30d");
    EXPECT_EQ(format_duration(36 * 3600), "36h");
    EXPECT_EQ(format_duration(90 * 60), "90m");
    EXPECT_EQ(format_duration(90), "90s");
    EXPECT_EQ(format_duration(86401), "86401s");
}

TEST(PolicyLifecycleTest, SerialsOrderAsSignedIntegers) {
    EXPECT_EQ(compare_serial(1, 2), SerialOrder::Older);
    EXPECT_EQ(compare_serial(-1, 0), SerialOrder::Older);
    EXPECT_EQ(compare_serial(0, 0), SerialOrder::Same);
    EXPECT_EQ(compare_serial(3, -3), SerialOrder::Newer);
    EXPECT_EQ(compare_serial(std::numeric_limits<std::int64_t>::max(),
                             std::numeric_limits<std::int64_t>::min()),
              SerialOrder::Newer);
}

TEST(PolicyLifecycleTest, FreshnessWithoutDeadlinesIsAlwaysFresh) {
    const Freshness f = evaluate_freshness(sample_policy(), k2027 * 1000 * 2, 0);
    EXPECT_FALSE(f.stale());
    EXPECT_FALSE(f.deadline_ms.has_value());
    EXPECT_EQ(f.time_left_ms, 0);
    EXPECT_EQ(stale_reason_text(sample_policy(), f), "");
}

TEST(PolicyLifecycleTest, NotAfterIsStaleFromItsInstantOn) {
    Policy policy = sample_policy();
    policy.not_after = k2027;
    const std::int64_t at = k2027 * 1000;
    const Freshness before = evaluate_freshness(policy, at - 1, at - 1000);
    EXPECT_FALSE(before.stale());
    EXPECT_EQ(before.deadline_ms, at);
    EXPECT_EQ(before.time_left_ms, 1);
    const Freshness on = evaluate_freshness(policy, at, at - 1000);
    EXPECT_TRUE(on.stale());
    EXPECT_EQ(on.reason, StaleReason::Expired);
    EXPECT_EQ(on.time_left_ms, 0);
    const Freshness after = evaluate_freshness(policy, at + 5000, at - 1000);
    EXPECT_EQ(after.time_left_ms, -5000);
    EXPECT_EQ(stale_reason_text(policy, after),
              "policy expired at 2027-01-01T00:00:00Z (not_after)");
}

TEST(PolicyLifecycleTest, MaxKeyAgeCountsFromTheKeysCreation) {
    Policy policy = sample_policy();
    policy.max_key_age = 12 * 3600;
    const std::int64_t created = 1000000;
    const std::int64_t limit = created + 12 * 3600 * 1000LL;
    EXPECT_FALSE(evaluate_freshness(policy, limit - 1, created).stale());
    const Freshness on = evaluate_freshness(policy, limit, created);
    EXPECT_EQ(on.reason, StaleReason::KeyTooOld);
    EXPECT_EQ(on.deadline_ms, limit);
    EXPECT_EQ(stale_reason_text(policy, on),
              "the instance key is older than the policy's max_key_age of 12h");
}

TEST(PolicyLifecycleTest, TheEarlierDeadlineNamesTheReason) {
    Policy policy = sample_policy();
    policy.not_after = k2027;
    policy.max_key_age = 3600;
    const std::int64_t expiry = k2027 * 1000;
    // The key's limit comes first.
    const std::int64_t created = expiry - 2 * 3600 * 1000;
    Freshness f = evaluate_freshness(policy, expiry - 1, created);
    EXPECT_EQ(f.reason, StaleReason::KeyTooOld);
    EXPECT_EQ(f.deadline_ms, created + 3600 * 1000);
    // The expiry comes first.
    const std::int64_t late_key = expiry - 1800 * 1000;
    f = evaluate_freshness(policy, expiry, late_key);
    EXPECT_EQ(f.reason, StaleReason::Expired);
    EXPECT_EQ(f.deadline_ms, expiry);
    // Both passed: still the first one.
    f = evaluate_freshness(policy, expiry + 3600 * 1000, late_key);
    EXPECT_EQ(f.reason, StaleReason::Expired);
}

TEST(PolicyLifecycleTest, LifecycleKeysRenderOnlyWhenSet) {
    const std::string base = canonical_policy(sample_policy());
    Policy zero = sample_policy();
    zero.serial = 0;
    EXPECT_EQ(canonical_policy(zero), base);  // absent and 0 are the same policy
    Policy full = sample_policy();
    full.serial = -12;
    full.not_after = k2027;
    full.max_key_age = 30 * 86400;
    EXPECT_EQ(canonical_policy(full), base +
                                          "serial=-12\n"
                                          "not_after=2027-01-01T00:00:00Z\n"
                                          "max_key_age=2592000\n");
    Policy serial_only = sample_policy();
    serial_only.serial = 5;
    EXPECT_EQ(canonical_policy(serial_only), base + "serial=5\n");
    EXPECT_NE(policy_digest_hex(serial_only), policy_digest_hex(sample_policy()));
}

TEST(PolicyLifecycleTest, FileKeysParseIntoThePolicy) {
    const std::string text = std::string(kSampleText) +
                             "serial = 17\n"
                             "not_after = 2027-01-01T00:00:00Z\n"
                             "max_key_age = 30d\n";
    const PolicyFileResult parsed = parse_policy_text(text, "");
    ASSERT_EQ(parsed.status, PolicyFileStatus::Unsigned) << parsed.error;
    EXPECT_EQ(parsed.policy.serial, 17);
    EXPECT_EQ(parsed.policy.not_after, k2027);
    EXPECT_EQ(parsed.policy.max_key_age, 30 * 86400);
    // Spelling the same duration differently is the same policy.
    const PolicyFileResult hours =
        parse_policy_text(replace_once(text, "max_key_age = 30d", "max_key_age = 720h"), "");
    EXPECT_EQ(policy_digest_hex(hours.policy), policy_digest_hex(parsed.policy));
    const PolicyFileResult none = parse_policy_text(kSampleText, "");
    EXPECT_EQ(none.policy.serial, 0);
    EXPECT_FALSE(none.policy.not_after.has_value());
    EXPECT_FALSE(none.policy.max_key_age.has_value());
}

TEST(PolicyLifecycleTest, BadLifecycleValuesNameTheirLine) {
    const struct {
        const char* line;
        const char* message;
    } cases[] = {
        {"serial = one", "line 8: serial must be a signed 64-bit decimal integer"},
        {"not_after = 2027-01-01", "line 8: not_after must be a UTC time"},
        {"max_key_age = 0d", "line 8: max_key_age must be a positive duration"},
    };
    for (const auto& c : cases) {
        const PolicyFileResult parsed =
            parse_policy_text(std::string(kSampleText) + c.line + "\n", "");
        EXPECT_EQ(parsed.status, PolicyFileStatus::Malformed) << c.line;
        EXPECT_EQ(parsed.error.rfind(c.message, 0), 0u) << parsed.error;
    }
    const PolicyFileResult twice =
        parse_policy_text(std::string(kSampleText) + "serial = 1\nserial = 2\n", "");
    EXPECT_EQ(twice.status, PolicyFileStatus::Malformed);
}

TEST(PolicyLifecycleTest, TheSignatureCoversTheLifecycleKeys) {
    const Keys keys = make_keys();
    const std::string signed_text =
        sign(std::string(kSampleText) + "serial = 3\nnot_after = 2027-01-01T00:00:00Z\n", keys);
    const PolicyFileResult ok = parse_policy_text(signed_text, keys.public_text);
    ASSERT_EQ(ok.status, PolicyFileStatus::Ok) << ok.error;
    EXPECT_EQ(ok.signature_line, 10u);
    for (const auto& [from, to] : {std::pair<std::string, std::string>{"serial = 3", "serial = 4"},
                                   {"serial = 3", "serial = 0"},
                                   {"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"}}) {
        const PolicyFileResult changed =
            parse_policy_text(replace_once(signed_text, from, to), keys.public_text);
        EXPECT_EQ(changed.status, PolicyFileStatus::BadSignature) << to;
    }
    // Dropping the serial line is the same as changing it to 0.
    const PolicyFileResult dropped =
        parse_policy_text(replace_once(signed_text, "serial = 3\n", ""), keys.public_text);
    EXPECT_EQ(dropped.status, PolicyFileStatus::BadSignature);
    // An unsigned policy signed before serials existed still verifies.
    const std::string old = sign(kSampleText, keys);
    EXPECT_EQ(parse_policy_text(old, keys.public_text).status, PolicyFileStatus::Ok);
}

// ---- The accepted serial's file ----

class AcceptedSerialTest : public TempDirTest {
  protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(TempDirTest::SetUp());
        path_ = path(engine::kAcceptedSerialFile);
    }
    std::string path_;
};

TEST_F(AcceptedSerialTest, RecordsAndReadsBack) {
    EXPECT_FALSE(engine::read_accepted_serial(path_).has_value());
    engine::record_accepted_serial(path_, 41);
    EXPECT_EQ(engine::read_accepted_serial(path_), 41);
    EXPECT_EQ(slurp(path_), "41\n");
    engine::record_accepted_serial(path_, -3);
    EXPECT_EQ(engine::read_accepted_serial(path_), -3);
}

TEST_F(AcceptedSerialTest, ADamagedRecordIsAnError) {
    spit(path_, "forty-one\n");
    EXPECT_THROW(engine::read_accepted_serial(path_), engine::EngineError);
    spit(path_, "");
    EXPECT_THROW(engine::read_accepted_serial(path_), engine::EngineError);
}

TEST(PolicyLifecycleTest, OnlyAHigherSerialMovesTheFloor) {
    EXPECT_TRUE(engine::raises_accepted_serial(5, 4));
    EXPECT_FALSE(engine::raises_accepted_serial(4, 4));
    EXPECT_FALSE(engine::raises_accepted_serial(3, 4));
    EXPECT_TRUE(engine::raises_accepted_serial(-2, std::nullopt));
    EXPECT_FALSE(engine::raises_accepted_serial(0, std::nullopt));
}

// ---- The reload decision ----

PolicyFileResult verified(const Policy& policy) {
    PolicyFileResult result;
    result.status = PolicyFileStatus::Ok;
    result.signed_ok = true;
    result.policy = policy;
    return result;
}

TEST(PolicyReloadTest, ANewerPolicyApplies) {
    Policy in_force = sample_policy();
    in_force.serial = 3;
    Policy next = in_force;
    next.serial = 4;
    next.of(Category::Spill).cipher = FileCipher::Aes256Gcm;
    const engine::ReloadDecision d =
        engine::decide_reload(verified(next), true, in_force, sample_policy(), 3);
    EXPECT_EQ(d.verdict, engine::ReloadVerdict::Applied);
    EXPECT_EQ(d.digest, policy_digest_hex(next));
}

TEST(PolicyReloadTest, AnEqualSerialWithOtherSettingsApplies) {
    Policy next = sample_policy();
    next.version = "other";
    EXPECT_EQ(
        engine::decide_reload(verified(next), true, sample_policy(), sample_policy(), std::nullopt)
            .verdict,
        engine::ReloadVerdict::Applied);
}

TEST(PolicyReloadTest, TheSamePolicyIsUnchanged) {
    EXPECT_EQ(engine::decide_reload(verified(sample_policy()), true, sample_policy(),
                                    sample_policy(), std::nullopt)
                  .verdict,
              engine::ReloadVerdict::Unchanged);
}

TEST(PolicyReloadTest, AnOlderPolicyIsARollback) {
    Policy in_force = sample_policy();
    in_force.serial = 7;
    Policy old = sample_policy();
    old.serial = 6;
    engine::ReloadDecision d = engine::decide_reload(verified(old), true, in_force, in_force, 7);
    EXPECT_EQ(d.verdict, engine::ReloadVerdict::RolledBack);
    EXPECT_NE(d.detail.find("serial 6 is older than serial 7"), std::string::npos) << d.detail;
    // The data directory's floor counts even when the policy in force is lower.
    Policy low = sample_policy();
    low.serial = 2;
    d = engine::decide_reload(verified(low), true, sample_policy(), sample_policy(), 5);
    EXPECT_EQ(d.verdict, engine::ReloadVerdict::RolledBack);
}

TEST(PolicyReloadTest, TurningACategoryOnOrOffWaitsForARestart) {
    Policy next = sample_policy();
    next.serial = 9;
    next.of(Category::Wal).enabled = true;
    next.of(Category::Spill).cipher = FileCipher::Aes256Gcm;
    const engine::ReloadDecision d =
        engine::decide_reload(verified(next), true, sample_policy(), sample_policy(), std::nullopt);
    EXPECT_EQ(d.verdict, engine::ReloadVerdict::PendingRestart);
    EXPECT_EQ(d.detail, "wal encryption turned on");
}

TEST(PolicyReloadTest, AFileThatDoesNotVerifyIsRejected) {
    PolicyFileResult bad = verified(sample_policy());
    bad.status = PolicyFileStatus::BadSignature;
    bad.signed_ok = false;
    bad.signature_line = 9;
    bad.error = "bad signature: it does not verify";
    engine::ReloadDecision d =
        engine::decide_reload(bad, false, sample_policy(), sample_policy(), std::nullopt);
    EXPECT_EQ(d.verdict, engine::ReloadVerdict::Rejected);
    EXPECT_EQ(d.detail, "line 9: bad signature: it does not verify");
    PolicyFileResult unsigned_file = verified(sample_policy());
    unsigned_file.status = PolicyFileStatus::Unsigned;
    unsigned_file.policy.version = "unsigned";
    EXPECT_EQ(
        engine::decide_reload(unsigned_file, true, sample_policy(), sample_policy(), std::nullopt)
            .verdict,
        engine::ReloadVerdict::Rejected);
    EXPECT_EQ(
        engine::decide_reload(unsigned_file, false, sample_policy(), sample_policy(), std::nullopt)
            .verdict,
        engine::ReloadVerdict::Applied);
}

// ---- The shared block ----

TEST(SharedPolicyTest, PublishesWholeSnapshots) {
    alignas(64) unsigned char memory[SharedPolicy::bytes()];
    SharedPolicy* shared = SharedPolicy::create(memory);
    PolicySnapshot out;
    EXPECT_FALSE(shared->read(&out));
    EXPECT_EQ(shared->stamp(), 0u);

    Policy policy = sample_policy();
    policy.serial = 12;
    policy.not_after = k2027;
    policy.of(Category::Spill).cipher = FileCipher::Aes256Gcm;
    PolicySnapshot in;
    snapshot_policy(policy, &in);
    in.generation = 2;
    shared->publish(in);
    const std::uint64_t first = shared->stamp();
    EXPECT_NE(first, 0u);
    EXPECT_EQ(first % 2, 0u);
    ASSERT_TRUE(shared->read(&out));
    EXPECT_EQ(out.generation, 2u);
    const Policy back = policy_of(out);
    EXPECT_EQ(canonical_policy(back), canonical_policy(policy));

    in.generation = 3;
    shared->publish(in);
    EXPECT_NE(shared->stamp(), first);
    ASSERT_TRUE(shared->read(&out));
    EXPECT_EQ(out.generation, 3u);
}

}  // namespace
}  // namespace ephemeral_crypt
