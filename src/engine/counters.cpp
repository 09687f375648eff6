// Counter snapshots (see counters.hpp): the sum over every process's slot.
#include "engine/counters.hpp"

#include "interpose/layer.hpp"

namespace ephemeral_crypt::engine {

CounterSnapshot read_counters(Category category) noexcept {
    std::int64_t values[kCounterFieldCount];
    interpose::read_counters(category, values);
    auto value = [&](std::atomic<std::int64_t> CategoryCounters::*field) {
        for (std::size_t f = 0; f < kCounterFieldCount; ++f) {
            if (kCounterFields[f] == field) {
                return values[f];
            }
        }
        return std::int64_t{0};
    };
    CounterSnapshot out;
    out.files_encrypted = static_cast<std::uint64_t>(value(&CategoryCounters::files_encrypted));
    out.files_open = value(&CategoryCounters::files_open);
    out.bytes_encrypted = static_cast<std::uint64_t>(value(&CategoryCounters::bytes_encrypted));
    out.bytes_decrypted = static_cast<std::uint64_t>(value(&CategoryCounters::bytes_decrypted));
    out.failures = static_cast<std::uint64_t>(value(&CategoryCounters::failures));
    out.plaintext_fallbacks =
        static_cast<std::uint64_t>(value(&CategoryCounters::plaintext_fallbacks));
    out.integrity_failures =
        static_cast<std::uint64_t>(value(&CategoryCounters::integrity_failures));
    return out;
}

}  // namespace ephemeral_crypt::engine
