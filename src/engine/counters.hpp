// The per-category counters as the SQL functions read them: the sum over
// every process's slot and the total of exited processes (core/counters.hpp).
// src/pg places the block in shared memory. Each field is read relaxed: the
// gauges are only ever approximate while I/O runs.
#pragma once

#include "core/no_postgres.hpp"

#include <cstdint>

#include "core/category.hpp"
#include "core/counters.hpp"

namespace ephemeral_crypt::engine {

// One field per counter of EC_CATEGORY_COUNTERS (core/counters.hpp), in its
// order and with its snapshot type: the gauge files_open may be negative
// for a moment, the totals never.
struct CounterSnapshot {
#define EC_SNAPSHOT_FIELD(name, snapshot_type, meaning) snapshot_type name = 0;
    EC_CATEGORY_COUNTERS(EC_SNAPSHOT_FIELD)
#undef EC_SNAPSHOT_FIELD
};

CounterSnapshot read_counters(Category category) noexcept;

}  // namespace ephemeral_crypt::engine
