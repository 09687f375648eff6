// The counters the layer keeps per category. The struct is placed in shared
// memory by src/pg, so it holds only lock-free atomics and plain integers;
// every process updates it without locks from the I/O path.
#pragma once

#include "core/no_postgres.hpp"

#include <atomic>
#include <cstdint>

#include "core/category.hpp"

namespace ephemeral_crypt {

struct CategoryCounters {
    std::atomic<std::uint64_t> files_encrypted{0};      // files created encrypted
    std::atomic<std::int64_t> files_open{0};            // descriptors open now, all processes
    std::atomic<std::uint64_t> bytes_encrypted{0};      // logical bytes written through the cipher
    std::atomic<std::uint64_t> bytes_decrypted{0};      // logical bytes read through the cipher
    std::atomic<std::uint64_t> failures{0};             // I/O refused or failed closed
    std::atomic<std::uint64_t> plaintext_fallbacks{0};  // files written in plaintext (audit)
    std::atomic<std::uint64_t> integrity_failures{0};   // data that failed authentication (GCM)
};

struct Counters {
    CategoryCounters category[kCategoryCount];  // indexed by category_index()

    CategoryCounters& of(Category c) noexcept { return category[category_index(c)]; }
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "counters in shared memory must be lock-free");

}  // namespace ephemeral_crypt
