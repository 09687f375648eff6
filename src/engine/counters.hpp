// The per-category counters as the SQL functions read them: the sum over
// every process's slot and the total of exited processes (core/counters.hpp).
// src/pg places the block in shared memory. Each field is read relaxed: the
// gauges are only ever approximate while I/O runs.
#pragma once

#include "core/no_postgres.hpp"

#include <cstdint>

#include "core/category.hpp"

namespace ephemeral_crypt::engine {

struct CounterSnapshot {
    std::uint64_t files_encrypted = 0;
    std::int64_t files_open = 0;
    std::uint64_t bytes_encrypted = 0;
    std::uint64_t bytes_decrypted = 0;
    std::uint64_t failures = 0;
    std::uint64_t plaintext_fallbacks = 0;
    std::uint64_t integrity_failures = 0;
};

CounterSnapshot read_counters(Category category) noexcept;

}  // namespace ephemeral_crypt::engine
