// The decision trail: a bounded ring in shared memory of the decisions that
// are not the routine path (refusals, fail-open fallbacks, authentication
// failures, refused bypasses, policy loads, refusals and expiries). Each
// event answers the three questions: which identity (the key id), which
// policy (version and digest), which side effect (action, file, errno).
//
// Writers never wait. A writer takes the next event number with one atomic
// add; its slot is that number modulo the capacity, so a full ring
// overwrites its oldest event, and the overwritten events count as dropped.
// A slot is claimed with a compare-and-swap on its stamp (odd while being
// written); a writer that finds another one still writing the same slot (a
// whole ring of events behind it) drops its own event and counts it, rather
// than wait. Readers copy a slot's words and keep it only when its stamp
// was the same, even and that event's, before and after: a slot being
// written, or overwritten meanwhile, is skipped.
#pragma once

#include "core/no_postgres.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace ephemeral_crypt {

// Plain bytes, so it can be copied word by word through shared memory.
struct DecisionEvent {
    std::uint64_t id = 0;      // 1 for the first event since start; set by push()
    std::int64_t time_ms = 0;  // Unix milliseconds
    std::int32_t pid = 0;
    std::int32_t error_number = 0;  // errno, 0 when none
    std::int32_t category = -1;     // category index, -1 for none
    char backend_type[32] = {};
    char action[32] = {};
    char file[256] = {};
    char detail[256] = {};
    char policy_version[65] = {};  // truncated to fit
    char policy_digest[65] = {};
    char key_id[17] = {};
};
static_assert(std::is_trivially_copyable_v<DecisionEvent>);

inline constexpr std::size_t kMinEventRingCapacity = 16;

struct RingSnapshot {
    std::vector<DecisionEvent> events;  // the events still held, oldest first
    std::uint64_t pushed = 0;           // events pushed since start
    // Pushed but not held: overwritten by newer events, or lost on a
    // collision with a writer still in their slot (or, while writers are
    // busy, still being written).
    std::uint64_t dropped = 0;
};

class EventRing {
  public:
    // The bytes a ring of `capacity` events needs (capacity >= 16).
    static std::size_t bytes_for(std::size_t capacity) noexcept;
    static EventRing* create(void* memory, std::size_t capacity) noexcept;

    // Numbers the event and stores it; never blocks, allocates nothing.
    // Returns its number (also when a collision dropped it).
    std::uint64_t push(const DecisionEvent& event) noexcept;
    RingSnapshot snapshot() const;
    // The same counts without copying the events (one load per slot).
    void counts(std::uint64_t* pushed, std::uint64_t* dropped) const noexcept;
    std::size_t capacity() const noexcept { return capacity_; }

  private:
    static constexpr std::size_t kWords = (sizeof(DecisionEvent) + 7) / 8;
    struct Slot {
        std::atomic<std::uint64_t> stamp;  // 2n+1 while event n is written, 2n+2 once it is
        std::atomic<std::uint64_t> words[kWords];
    };
    static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

    explicit EventRing(std::size_t capacity) noexcept : capacity_(capacity) {}
    Slot* slots() noexcept { return reinterpret_cast<Slot*>(this + 1); }
    const Slot* slots() const noexcept { return reinterpret_cast<const Slot*>(this + 1); }

    std::size_t capacity_;
    std::atomic<std::uint64_t> head_{0};
};

}  // namespace ephemeral_crypt
