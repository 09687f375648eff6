// The arithmetic of policy_lifecycle.hpp. Civil dates are converted with
// Howard Hinnant's days-from-civil algorithm rather than timegm(), which
// depends on the process's time zone settings and is not in every libc the
// policy tool may be built with.
#include "core/policy_lifecycle.hpp"

#include <algorithm>
#include <cstdio>

namespace ephemeral_crypt {

namespace {

constexpr std::int64_t kSecondsPerDay = 86400;

// Days since 1970-01-01 of a proleptic Gregorian date.
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct Civil {
    std::int64_t year;
    unsigned month;
    unsigned day;
};

constexpr Civil civil_from_days(std::int64_t z) noexcept {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return {static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2), m, d};
}

static_assert(days_from_civil(1970, 1, 1) == 0);
static_assert(days_from_civil(2000, 3, 1) == 11017);

bool leap(std::int64_t year) noexcept {
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

unsigned days_in_month(std::int64_t year, unsigned month) noexcept {
    static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && leap(year) ? 29 : kDays[month - 1];
}

// `count` decimal digits at text[at], or -1.
std::int64_t digits(std::string_view text, std::size_t at, std::size_t count) noexcept {
    std::int64_t value = 0;
    for (std::size_t i = at; i < at + count; ++i) {
        if (text[i] < '0' || text[i] > '9') {
            return -1;
        }
        value = value * 10 + (text[i] - '0');
    }
    return value;
}

}  // namespace

std::optional<std::int64_t> parse_serial(std::string_view text) noexcept {
    const bool negative = !text.empty() && text.front() == '-';
    if (negative) {
        text.remove_prefix(1);
    }
    if (text.empty() || text.size() > 19) {
        return std::nullopt;
    }
    std::uint64_t magnitude = 0;
    for (const char ch : text) {
        if (ch < '0' || ch > '9') {
            return std::nullopt;
        }
        magnitude = magnitude * 10 + static_cast<std::uint64_t>(ch - '0');
    }
    const std::uint64_t limit = negative ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1;
    if (magnitude > limit) {
        return std::nullopt;
    }
    return negative ? static_cast<std::int64_t>(0 - magnitude)
                    : static_cast<std::int64_t>(magnitude);
}

std::optional<std::int64_t> parse_utc_time(std::string_view text) noexcept {
    // 0123456789012345678 9
    // YYYY-MM-DDTHH:MM:SSZ
    if (text.size() != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' ||
        text[13] != ':' || text[16] != ':' || text[19] != 'Z') {
        return std::nullopt;
    }
    const std::int64_t year = digits(text, 0, 4);
    const std::int64_t month = digits(text, 5, 2);
    const std::int64_t day = digits(text, 8, 2);
    const std::int64_t hour = digits(text, 11, 2);
    const std::int64_t minute = digits(text, 14, 2);
    const std::int64_t second = digits(text, 17, 2);
    if (year < 1970 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 ||
        minute > 59 || second < 0 || second > 59) {
        return std::nullopt;
    }
    if (day > days_in_month(year, static_cast<unsigned>(month))) {
        return std::nullopt;
    }
    const std::int64_t days =
        days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
    return days * kSecondsPerDay + hour * 3600 + minute * 60 + second;
}

std::string format_utc_time(std::int64_t unix_seconds) {
    const std::int64_t clamped = std::clamp<std::int64_t>(unix_seconds, 0, kLatestUtcSeconds);
    const std::int64_t days = clamped / kSecondsPerDay;
    const std::int64_t rest = clamped % kSecondsPerDay;
    const Civil date = civil_from_days(days);
    char out[32];
    std::snprintf(out, sizeof(out), "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ",
                  static_cast<long long>(date.year), date.month, date.day,
                  static_cast<long long>(rest / 3600), static_cast<long long>(rest / 60 % 60),
                  static_cast<long long>(rest % 60));
    return out;
}

std::optional<std::int64_t> parse_duration(std::string_view text) noexcept {
    std::int64_t unit = 1;
    if (!text.empty()) {
        switch (text.back()) {
            case 's':
                unit = 1;
                text.remove_suffix(1);
                break;
            case 'm':
                unit = 60;
                text.remove_suffix(1);
                break;
            case 'h':
                unit = 3600;
                text.remove_suffix(1);
                break;
            case 'd':
                unit = kSecondsPerDay;
                text.remove_suffix(1);
                break;
            default:
                break;
        }
    }
    // Eleven digits already exceed the bound in seconds; refusing longer
    // numbers first keeps the multiplication below from overflowing.
    if (text.empty() || text.size() > 11) {
        return std::nullopt;
    }
    const std::int64_t number = digits(text, 0, text.size());
    if (number <= 0 || number > kMaxKeyAgeSeconds / unit) {
        return std::nullopt;
    }
    return number * unit;
}

std::string format_duration(std::int64_t seconds) {
    if (seconds > 0 && seconds % kSecondsPerDay == 0) {
        return std::to_string(seconds / kSecondsPerDay) + "d";
    }
    if (seconds > 0 && seconds % 3600 == 0) {
        return std::to_string(seconds / 3600) + "h";
    }
    if (seconds > 0 && seconds % 60 == 0) {
        return std::to_string(seconds / 60) + "m";
    }
    return std::to_string(seconds) + "s";
}

SerialOrder compare_serial(std::int64_t candidate, std::int64_t reference) noexcept {
    if (candidate < reference) {
        return SerialOrder::Older;
    }
    return candidate == reference ? SerialOrder::Same : SerialOrder::Newer;
}

Freshness evaluate_freshness(const Policy& policy, std::int64_t now_ms,
                             std::int64_t key_created_ms) noexcept {
    Freshness freshness;
    std::optional<std::int64_t> expiry_ms;
    std::optional<std::int64_t> key_limit_ms;
    if (policy.not_after) {
        expiry_ms = *policy.not_after * 1000;
    }
    if (policy.max_key_age) {
        key_limit_ms = key_created_ms + *policy.max_key_age * 1000;
    }
    if (expiry_ms && (!key_limit_ms || *expiry_ms <= *key_limit_ms)) {
        freshness.deadline_ms = expiry_ms;
    } else {
        freshness.deadline_ms = key_limit_ms;
    }
    if (!freshness.deadline_ms) {
        return freshness;
    }
    freshness.time_left_ms = *freshness.deadline_ms - now_ms;
    // The deadline that passed first names the reason; not_after wins a tie.
    if (expiry_ms && now_ms >= *expiry_ms && freshness.deadline_ms == expiry_ms) {
        freshness.reason = StaleReason::Expired;
    } else if (key_limit_ms && now_ms >= *key_limit_ms) {
        freshness.reason = StaleReason::KeyTooOld;
    } else if (expiry_ms && now_ms >= *expiry_ms) {
        freshness.reason = StaleReason::Expired;
    }
    return freshness;
}

std::string stale_reason_text(const Policy& policy, const Freshness& freshness) {
    switch (freshness.reason) {
        case StaleReason::None:
            return {};
        case StaleReason::Expired:
            return "policy expired at " + format_utc_time(policy.not_after.value_or(0)) +
                   " (not_after)";
        case StaleReason::KeyTooOld:
            return "the instance key is older than the policy's max_key_age of " +
                   format_duration(policy.max_key_age.value_or(0));
    }
    return {};
}

}  // namespace ephemeral_crypt
