// The arithmetic of the periodic attestation, kept free of clocks and I/O so
// it can be tested on its own: when the next run is due (the interval with
// jitter, so a fleet started together does not attest in lock step), how
// long the data-directory scan may take (a budget it checks between files),
// and whether a run's outcome differs from the last one (which decides the
// LOG line and the decision-trail event: one per change, never one per run).
#pragma once

#include "core/no_postgres.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace ephemeral_crypt {

// The jitter is +/- this fraction of the interval, in percent.
inline constexpr int kAttestationJitterPercent = 10;

// The delay before the next run: `interval_ms` moved by up to
// kAttestationJitterPercent either way, chosen by `random` (any 64-bit
// value, uniformly drawn by the caller). Never below 1 ms; 0 (or less) for
// an interval of 0 or less, which means attestation is off.
std::int64_t jittered_delay_ms(std::int64_t interval_ms, std::uint64_t random) noexcept;

// A time budget measured on a clock the caller reads (milliseconds, any
// origin). A budget of 0 or less is unlimited.
class ScanBudget {
  public:
    ScanBudget(std::int64_t budget_ms, std::int64_t start_ms) noexcept
        : budget_ms_(budget_ms), deadline_ms_(start_ms + budget_ms) {}
    // False once `now_ms` reached the deadline; remembers that it did.
    bool allows(std::int64_t now_ms) noexcept {
        if (budget_ms_ > 0 && now_ms >= deadline_ms_) {
            cut_short_ = true;
        }
        return !cut_short_;
    }
    bool cut_short() const noexcept { return cut_short_; }
    std::int64_t budget_ms() const noexcept { return budget_ms_; }

  private:
    std::int64_t budget_ms_;
    std::int64_t deadline_ms_;
    bool cut_short_ = false;
};

// One check's verdict, as the outcome compares them.
struct CheckOutcome {
    std::string name;
    bool passed = false;
};

// True when `next` differs from `previous` in any check's name or verdict
// (details are not compared: a scan that finds another plaintext file is
// the same failing outcome), or when there was no previous run.
bool outcome_changed(const std::vector<CheckOutcome>& previous, bool had_previous,
                     const std::vector<CheckOutcome>& next) noexcept;

}  // namespace ephemeral_crypt
