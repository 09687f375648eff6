// The attestation's schedule, scan budget and outcome comparison (see
// attestation_schedule.hpp).
#include "core/attestation_schedule.hpp"

namespace ephemeral_crypt {

std::int64_t jittered_delay_ms(std::int64_t interval_ms, std::uint64_t random) noexcept {
    if (interval_ms <= 0) {
        return 0;
    }
    const std::int64_t spread = interval_ms * kAttestationJitterPercent / 100;
    if (spread == 0) {
        return interval_ms;
    }
    // random mod (2 * spread + 1) is in [0, 2 * spread]: the offset is in
    // [-spread, +spread].
    const auto width = static_cast<std::uint64_t>(2 * spread + 1);
    const std::int64_t offset = static_cast<std::int64_t>(random % width) - spread;
    const std::int64_t delay = interval_ms + offset;
    return delay < 1 ? 1 : delay;
}

bool outcome_changed(const std::vector<CheckOutcome>& previous, bool had_previous,
                     const std::vector<CheckOutcome>& next) noexcept {
    if (!had_previous || previous.size() != next.size()) {
        return true;
    }
    for (std::size_t i = 0; i < next.size(); ++i) {
        if (previous[i].name != next[i].name || previous[i].passed != next[i].passed) {
            return true;
        }
    }
    return false;
}

}  // namespace ephemeral_crypt
