// What a policy's lifecycle keys mean once parsed: the order of policies
// (`serial`), their freshness (`not_after`, `max_key_age`), and the text
// forms of their times and durations. Pure arithmetic on times the caller
// passes in, so the server, the policy tool and the tests agree on every
// boundary and no answer depends on when it is computed.
//
// Order. A candidate policy whose serial is below the one in force (or below
// the newest this data directory has accepted) is a rollback and is refused;
// an equal serial is the same place in the order and is accepted, so
// policies without a serial (all 0) keep replacing each other as before.
//
// Freshness. A policy is stale from its not_after on (the instant itself
// included), and the instance key is stale once its age reaches max_key_age.
// Staleness is reported; it never changes what is encrypted.
#pragma once

#include "core/no_postgres.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/policy.hpp"

namespace ephemeral_crypt {

// Bounds of the text forms: years 1970..9999, durations up to 100 years.
inline constexpr std::int64_t kLatestUtcSeconds = 253402300799;  // 9999-12-31T23:59:59Z
inline constexpr std::int64_t kMaxKeyAgeSeconds = 100LL * 366 * 86400;

// A signed 64-bit decimal: an optional '-', then 1..19 digits, in range.
std::optional<std::int64_t> parse_serial(std::string_view text) noexcept;

// "YYYY-MM-DDTHH:MM:SSZ" exactly (no fraction, no offset other than Z), a
// real calendar date; nullopt otherwise.
std::optional<std::int64_t> parse_utc_time(std::string_view text) noexcept;
// The same form; seconds outside 0..kLatestUtcSeconds are clamped.
std::string format_utc_time(std::int64_t unix_seconds);

// A positive number with an optional unit s, m, h or d, at most
// kMaxKeyAgeSeconds; nullopt otherwise.
std::optional<std::int64_t> parse_duration(std::string_view text) noexcept;
// The largest unit that divides the duration exactly: "30d", "36h", "90s".
std::string format_duration(std::int64_t seconds);

enum class SerialOrder { Older, Same, Newer };
SerialOrder compare_serial(std::int64_t candidate, std::int64_t reference) noexcept;

enum class StaleReason { None, Expired, KeyTooOld };

struct Freshness {
    StaleReason reason = StaleReason::None;  // the first deadline passed, if any
    // The earliest deadline the policy sets (not_after, or the key's creation
    // plus max_key_age), in Unix milliseconds; nullopt when it sets none.
    std::optional<std::int64_t> deadline_ms;
    std::int64_t time_left_ms = 0;  // deadline - now; negative once passed; 0 without one

    bool stale() const noexcept { return reason != StaleReason::None; }
};

Freshness evaluate_freshness(const Policy& policy, std::int64_t now_ms,
                             std::int64_t key_created_ms) noexcept;

// One line for `ready`'s reason and the WARNING: "policy expired at
// 2027-01-01T00:00:00Z (not_after)", "the instance key is older than the
// policy's max_key_age of 30d"; empty when fresh.
std::string stale_reason_text(const Policy& policy, const Freshness& freshness);

}  // namespace ephemeral_crypt
