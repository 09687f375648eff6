// The policy in force, as every process of the instance reads it: one block
// in shared memory that a single writer (the postmaster at start-up, then the
// process that verifies a reload) publishes whole, and that readers copy
// under a sequence number (a seqlock), so a reader never sees half of one
// policy and half of another and never waits for a lock. The payload is
// stored as relaxed atomic words, so a read racing a write is not a data
// race; a reader whose copy straddled a write simply reads again.
//
// The layer reads it when it opens a file (the category's cipher and
// degradation for files created from then on); the sequence number lets it
// skip the copy when nothing was published since its last look, so the cost
// on an open is one atomic load.
#pragma once

#include "core/no_postgres.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "core/category.hpp"
#include "core/policy.hpp"

namespace ephemeral_crypt {

inline constexpr std::size_t kPendingDetailBytes = 256;

// Plain bytes, so it can live in shared memory and be copied word by word.
struct PolicySnapshot {
    std::uint64_t generation = 0;   // 1 for the start-up policy, +1 per policy applied
    std::int64_t loaded_at_ms = 0;  // when it was read and verified, Unix milliseconds
    std::int64_t serial = 0;
    std::int64_t not_after = 0;    // Unix seconds, when has_not_after
    std::int64_t max_key_age = 0;  // seconds, when has_max_key_age
    bool has_not_after = false;
    bool has_max_key_age = false;
    bool signed_ok = false;
    bool from_file = false;
    bool pending_restart = false;  // a verified file waits for a restart
    std::uint8_t enabled[kCategoryCount] = {};
    std::uint8_t degradation[kCategoryCount] = {};
    std::uint8_t cipher[kCategoryCount] = {};
    char version[kPolicyVersionMaxBytes + 1] = {};
    char digest[65] = {};
    char pending_digest[65] = {};                   // the waiting policy's digest
    char pending_detail[kPendingDetailBytes] = {};  // what in it needs the restart
};
static_assert(std::is_trivially_copyable_v<PolicySnapshot>);

// Conversions; the texts are truncated to their buffers (the version's
// buffer holds the longest version the parser accepts).
void snapshot_policy(const Policy& policy, PolicySnapshot* out) noexcept;
Policy policy_of(const PolicySnapshot& snapshot);

class SharedPolicy {
  public:
    static constexpr std::size_t bytes() noexcept { return sizeof(SharedPolicy); }
    // Lays the block out in `memory` (bytes() long), with nothing published.
    static SharedPolicy* create(void* memory) noexcept;

    // Writers are serialised among themselves; readers never wait for them.
    void publish(const PolicySnapshot& snapshot) noexcept;
    // False while nothing has been published.
    bool read(PolicySnapshot* out) const noexcept;
    // Changes with every publication; even and non-zero once one is complete.
    std::uint64_t stamp() const noexcept { return sequence_.load(std::memory_order_acquire); }

    // Reloads refused (bad signature, malformed, rollback...) since start.
    std::atomic<std::uint64_t> reloads_rejected{0};

  private:
    static constexpr std::size_t kWords = (sizeof(PolicySnapshot) + 7) / 8;

    SharedPolicy() = default;

    std::atomic<std::uint64_t> sequence_{0};
    std::atomic<bool> writing_{false};
    std::atomic<std::uint64_t> words_[kWords] = {};
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "the policy block in shared memory must be lock-free");

}  // namespace ephemeral_crypt
