// The lock-free ring of event_ring.hpp.
#include "core/event_ring.hpp"

#include <cstring>
#include <new>

namespace ephemeral_crypt {

std::size_t EventRing::bytes_for(std::size_t capacity) noexcept {
    return sizeof(EventRing) +
           (capacity < kMinEventRingCapacity ? kMinEventRingCapacity : capacity) * sizeof(Slot);
}

EventRing* EventRing::create(void* memory, std::size_t capacity) noexcept {
    auto* ring =
        new (memory) EventRing(capacity < kMinEventRingCapacity ? kMinEventRingCapacity : capacity);
    Slot* slots = ring->slots();
    for (std::size_t i = 0; i < ring->capacity_; ++i) {
        Slot* slot = new (&slots[i]) Slot;
        slot->stamp.store(0, std::memory_order_relaxed);
        for (auto& word : slot->words) {
            word.store(0, std::memory_order_relaxed);
        }
    }
    std::atomic_thread_fence(std::memory_order_release);
    return ring;
}

std::uint64_t EventRing::push(const DecisionEvent& event) noexcept {
    const std::uint64_t n = head_.fetch_add(1, std::memory_order_acq_rel);
    Slot& slot = slots()[n % capacity_];
    std::uint64_t stamp = slot.stamp.load(std::memory_order_relaxed);
    // An odd stamp is a writer still in this slot; a newer even one means a
    // later event already took it. Either way this one is lost, not waited for.
    if ((stamp & 1) != 0 || stamp > 2 * n ||
        !slot.stamp.compare_exchange_strong(stamp, 2 * n + 1, std::memory_order_acquire,
                                            std::memory_order_relaxed)) {
        return n + 1;  // counted as dropped by snapshot(): pushed, never held
    }
    std::atomic_thread_fence(std::memory_order_release);
    std::uint64_t words[kWords] = {};
    DecisionEvent numbered = event;
    numbered.id = n + 1;
    std::memcpy(words, &numbered, sizeof(numbered));
    for (std::size_t i = 0; i < kWords; ++i) {
        slot.words[i].store(words[i], std::memory_order_relaxed);
    }
    slot.stamp.store(2 * n + 2, std::memory_order_release);
    return n + 1;
}

RingSnapshot EventRing::snapshot() const {
    const std::uint64_t head = head_.load(std::memory_order_acquire);
    const std::uint64_t first = head > capacity_ ? head - capacity_ : 0;
    RingSnapshot result;
    std::vector<DecisionEvent>& out = result.events;
    out.reserve(static_cast<std::size_t>(head - first));
    std::uint64_t words[kWords];
    for (std::uint64_t n = first; n < head; ++n) {
        const Slot& slot = slots()[n % capacity_];
        const std::uint64_t before = slot.stamp.load(std::memory_order_acquire);
        if (before != 2 * n + 2) {
            continue;  // being written, dropped, or already overwritten
        }
        for (std::size_t i = 0; i < kWords; ++i) {
            words[i] = slot.words[i].load(std::memory_order_relaxed);
        }
        std::atomic_thread_fence(std::memory_order_acquire);
        if (slot.stamp.load(std::memory_order_relaxed) != before) {
            continue;
        }
        DecisionEvent event;
        std::memcpy(&event, words, sizeof(event));
        out.push_back(event);
    }
    result.pushed = head;
    result.dropped = head - out.size();
    return result;
}

}  // namespace ephemeral_crypt

namespace ephemeral_crypt {

void EventRing::counts(std::uint64_t* pushed, std::uint64_t* dropped) const noexcept {
    const std::uint64_t head = head_.load(std::memory_order_acquire);
    const std::uint64_t first = head > capacity_ ? head - capacity_ : 0;
    std::uint64_t held = 0;
    for (std::uint64_t n = first; n < head; ++n) {
        if (slots()[n % capacity_].stamp.load(std::memory_order_acquire) == 2 * n + 2) {
            ++held;
        }
    }
    *pushed = head;
    *dropped = head - held;
}

}  // namespace ephemeral_crypt
