// Counter snapshots (see counters.hpp).
#include "engine/counters.hpp"

#include "interpose/layer.hpp"

namespace ephemeral_crypt::engine {

CounterSnapshot read_counters(Category category) noexcept {
    const CategoryCounters& c = interpose::counters().of(category);
    CounterSnapshot out;
    out.files_encrypted = c.files_encrypted.load(std::memory_order_relaxed);
    out.files_open = c.files_open.load(std::memory_order_relaxed);
    out.bytes_encrypted = c.bytes_encrypted.load(std::memory_order_relaxed);
    out.bytes_decrypted = c.bytes_decrypted.load(std::memory_order_relaxed);
    out.failures = c.failures.load(std::memory_order_relaxed);
    out.plaintext_fallbacks = c.plaintext_fallbacks.load(std::memory_order_relaxed);
    out.integrity_failures = c.integrity_failures.load(std::memory_order_relaxed);
    return out;
}

}  // namespace ephemeral_crypt::engine
