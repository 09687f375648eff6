// Counter snapshots (see counters.hpp): the sum over every process's slot.
#include "engine/counters.hpp"

#include "interpose/layer.hpp"

namespace ephemeral_crypt::engine {

CounterSnapshot read_counters(Category category) noexcept {
    std::int64_t values[kCounterFieldCount];
    interpose::read_counters(category, values);
    CounterSnapshot out;
    std::size_t field = 0;
#define EC_SNAPSHOT_COPY(name, snapshot_type, meaning) \
    out.name = static_cast<snapshot_type>(values[field++]);
    EC_CATEGORY_COUNTERS(EC_SNAPSHOT_COPY)
#undef EC_SNAPSHOT_COPY
    return out;
}

}  // namespace ephemeral_crypt::engine
