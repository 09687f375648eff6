// The periodic attestation's pure logic: the jittered delay stays within
// +/- 10 % of the interval and covers both ends, 0 turns it off; the scan
// budget cuts at its deadline and remembers it; an outcome changes on a
// verdict or a check's name, never on a detail alone.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/attestation_schedule.hpp"

namespace ephemeral_crypt {
namespace {

TEST(AttestationSchedule, DelayStaysWithinTheJitterBounds) {
    const std::int64_t interval = 60000;
    std::int64_t lowest = interval;
    std::int64_t highest = interval;
    std::uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 100000; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        const std::int64_t delay = jittered_delay_ms(interval, x);
        ASSERT_GE(delay, 54000);
        ASSERT_LE(delay, 66000);
        lowest = std::min(lowest, delay);
        highest = std::max(highest, delay);
    }
    EXPECT_LT(lowest, 55000);
    EXPECT_GT(highest, 65000);
}

TEST(AttestationSchedule, ExtremeRandomValuesHitTheEnds) {
    EXPECT_EQ(jittered_delay_ms(1000, 0), 900);
    EXPECT_EQ(jittered_delay_ms(1000, 200), 1100);
    EXPECT_EQ(jittered_delay_ms(1000, 201), 900);
    EXPECT_EQ(jittered_delay_ms(1000, UINT64_MAX) >= 900, true);
}

TEST(AttestationSchedule, ZeroIntervalIsOffAndTinyIntervalsStayPositive) {
    EXPECT_EQ(jittered_delay_ms(0, 12345), 0);
    EXPECT_EQ(jittered_delay_ms(-5, 12345), 0);
    EXPECT_EQ(jittered_delay_ms(1, 12345), 1);
    EXPECT_EQ(jittered_delay_ms(9, 12345), 9);  // 10 % of 9 ms rounds to no jitter
    for (std::uint64_t r = 0; r < 50; ++r) {
        EXPECT_GE(jittered_delay_ms(10, r), 9);
        EXPECT_LE(jittered_delay_ms(10, r), 11);
    }
}

TEST(AttestationSchedule, ScanBudgetCutsAtItsDeadlineAndRemembers) {
    ScanBudget budget(500, 1000);
    EXPECT_TRUE(budget.allows(1000));
    EXPECT_TRUE(budget.allows(1499));
    EXPECT_FALSE(budget.cut_short());
    EXPECT_FALSE(budget.allows(1500));
    EXPECT_TRUE(budget.cut_short());
    EXPECT_FALSE(budget.allows(1000));  // a clock read earlier does not undo the cut
}

TEST(AttestationSchedule, ZeroBudgetIsUnlimited) {
    ScanBudget budget(0, 1000);
    EXPECT_TRUE(budget.allows(INT64_MAX / 2));
    EXPECT_FALSE(budget.cut_short());
}

TEST(AttestationSchedule, OutcomeChangesOnVerdictsNotDetails) {
    const std::vector<CheckOutcome> passing = {{"ciphers", true}, {"data_directory", true}};
    const std::vector<CheckOutcome> failing = {{"ciphers", true}, {"data_directory", false}};
    EXPECT_TRUE(outcome_changed({}, false, passing));  // the first run
    EXPECT_FALSE(outcome_changed(passing, true, passing));
    EXPECT_TRUE(outcome_changed(passing, true, failing));
    EXPECT_TRUE(outcome_changed(failing, true, passing));
    EXPECT_FALSE(outcome_changed(failing, true, failing));
    const std::vector<CheckOutcome> renamed = {{"ciphers", true}, {"got_slots", true}};
    EXPECT_TRUE(outcome_changed(passing, true, renamed));
    EXPECT_TRUE(outcome_changed(passing, true, {{"ciphers", true}}));
}

}  // namespace
}  // namespace ephemeral_crypt
