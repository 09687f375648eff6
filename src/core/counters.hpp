// The counters the layer keeps per category, and their layout in shared
// memory. Every process counts into a slot of its own, so the I/O path never
// writes a cache line that another process writes: one shared line, updated
// by every process on every I/O, would bounce between cores on a large
// machine. A reader sums the slots, as PostgreSQL's own I/O statistics do.
//
// A slot's counts outlive its process. When a process exits its slot is
// folded into the shared total and freed; a slot whose process died without
// exiting (killed, or _exit) keeps its counts until a new process needs the
// slot, which folds them first. Folds and reads are ordered by a sequence
// number, so a read never counts a folded slot twice or not at all.
#pragma once

#include "core/no_postgres.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>

#include "core/category.hpp"

namespace ephemeral_crypt {

// The one list of per-category counters. Everything else is derived from
// it: the shared-memory fields below, kCounterFields, the engine's
// CounterSnapshot and its copy into the C struct ec_counter_values (whose
// mirror list engine_api.cpp checks field by field), and the SQL columns of
// ephemeral_crypt_encryption_status(), which a unit test compares with it.
// The order is the SQL column order, so a new counter goes last: a released
// SQL version's columns never move. X(name, snapshot type, meaning):
#define EC_CATEGORY_COUNTERS(X)                                                   \
    X(files_encrypted, std::uint64_t, "files created encrypted")                  \
    X(files_open, std::int64_t, "descriptors open now, all processes")            \
    X(bytes_encrypted, std::uint64_t, "logical bytes written through the cipher") \
    X(bytes_decrypted, std::uint64_t, "logical bytes read through the cipher")    \
    X(failures, std::uint64_t, "I/O refused or failed closed")                    \
    X(plaintext_fallbacks, std::uint64_t, "files written in plaintext (audit)")   \
    X(integrity_failures, std::uint64_t, "data that failed authentication (GCM)")

struct CategoryCounters {
#define EC_COUNTER_FIELD(name, snapshot_type, meaning) std::atomic<std::int64_t> name{0};
    EC_CATEGORY_COUNTERS(EC_COUNTER_FIELD)
#undef EC_COUNTER_FIELD
};

// Every counter of CategoryCounters, in the list's order.
inline constexpr std::atomic<std::int64_t> CategoryCounters::*kCounterFields[] = {
#define EC_COUNTER_MEMBER(name, snapshot_type, meaning) &CategoryCounters::name,
    EC_CATEGORY_COUNTERS(EC_COUNTER_MEMBER)
#undef EC_COUNTER_MEMBER
};
inline constexpr std::size_t kCounterFieldCount = std::size(kCounterFields);

// The counters' names, in the list's order (for tests and diagnostics).
inline constexpr const char* kCounterNames[] = {
#define EC_COUNTER_NAME(name, snapshot_type, meaning) #name,
    EC_CATEGORY_COUNTERS(EC_COUNTER_NAME)
#undef EC_COUNTER_NAME
};
static_assert(std::size(kCounterNames) == kCounterFieldCount);
static_assert(sizeof(CategoryCounters) == kCounterFieldCount * sizeof(std::atomic<std::int64_t>),
              "CategoryCounters holds the listed counters and nothing else");

static_assert(std::atomic<std::int64_t>::is_always_lock_free,
              "counters in shared memory must be lock-free");

struct Counters {
    CategoryCounters category[kCategoryCount];  // indexed by category_index()

    CategoryCounters& of(Category c) noexcept { return category[category_index(c)]; }
    const CategoryCounters& of(Category c) const noexcept { return category[category_index(c)]; }
    // Adds `other`'s counts to these.
    void add(const Counters& other) noexcept;
    void clear() noexcept;
};

// One process's counts. Aligned so that no two slots share a cache line.
struct alignas(64) CounterSlot {
    std::atomic<std::int32_t> owner{0};  // pid of the process counting here; 0 when free
    Counters counts;
};

// The block src/pg places in shared memory: the total of folded slots, then
// the slots. Its size depends on the number of slots (bytes_for).
class SharedCounters {
  public:
    using AliveFn = bool (*)(std::int32_t pid);

    static std::size_t bytes_for(std::size_t slots) noexcept;
    // Initialises the block at `memory` (bytes_for(slots) bytes).
    static SharedCounters* create(void* memory, std::size_t slots) noexcept;

    // A slot for `pid`: a free one, else one whose owner `alive` says is
    // gone (its counts folded first). Null when every slot is taken.
    Counters* claim(std::int32_t pid, AliveFn alive) noexcept;
    // Folds the slot's counts into the total and frees it.
    void release(Counters* slot) noexcept;
    // The counts of released slots. A process that finds no free slot
    // counts here directly, with atomic adds.
    Counters& folded() noexcept { return folded_; }

    // The sum over the total and every slot, for one category, in the order
    // of kCounterFields.
    void sum(Category category, std::int64_t out[kCounterFieldCount]) const noexcept;

    std::size_t slot_count() const noexcept { return slot_count_; }
    bool holds(const Counters* counts) const noexcept;

  private:
    SharedCounters(std::size_t slots) noexcept : slot_count_(slots) {}
    CounterSlot* slots() noexcept;
    const CounterSlot* slots() const noexcept;
    void fold(CounterSlot& slot) noexcept;

    // Odd while a slot is being folded; readers retry when it moved.
    std::atomic<std::uint64_t> sequence_{0};
    std::size_t slot_count_;
    std::atomic<std::size_t> next_free_hint_{0};
    alignas(64) Counters folded_;
};

}  // namespace ephemeral_crypt
