// Per-process counter slots in shared memory (see counters.hpp). The fold
// protocol is a sequence lock: a folder makes the sequence odd, moves one
// slot's counts into the total and zeroes the slot, then makes it even
// again; a reader that saw the sequence change (or odd) sums again. Folds
// happen once per process exit, so readers almost never retry, and the I/O
// path never touches the sequence.
#include "core/counters.hpp"

#include <new>
#include <thread>

namespace ephemeral_crypt {

namespace {

constexpr std::size_t kLine = 64;

constexpr std::size_t header_bytes() noexcept {
    return (sizeof(SharedCounters) + kLine - 1) / kLine * kLine;
}

}  // namespace

void Counters::add(const Counters& other) noexcept {
    for (std::size_t c = 0; c < kCategoryCount; ++c) {
        for (auto field : kCounterFields) {
            (category[c].*field)
                .fetch_add((other.category[c].*field).load(std::memory_order_relaxed),
                           std::memory_order_relaxed);
        }
    }
}

void Counters::clear() noexcept {
    for (auto& counted : category) {
        for (auto field : kCounterFields) {
            (counted.*field).store(0, std::memory_order_relaxed);
        }
    }
}

std::size_t SharedCounters::bytes_for(std::size_t slots) noexcept {
    return header_bytes() + slots * sizeof(CounterSlot);
}

SharedCounters* SharedCounters::create(void* memory, std::size_t slots) noexcept {
    auto* shared = new (memory) SharedCounters(slots);
    CounterSlot* slot = shared->slots();
    for (std::size_t i = 0; i < slots; ++i) {
        new (&slot[i]) CounterSlot();
    }
    return shared;
}

CounterSlot* SharedCounters::slots() noexcept {
    return reinterpret_cast<CounterSlot*>(reinterpret_cast<char*>(this) + header_bytes());
}

const CounterSlot* SharedCounters::slots() const noexcept {
    return reinterpret_cast<const CounterSlot*>(reinterpret_cast<const char*>(this) +
                                                header_bytes());
}

bool SharedCounters::holds(const Counters* counts) const noexcept {
    const auto* first = reinterpret_cast<const char*>(slots());
    const auto* at = reinterpret_cast<const char*>(counts);
    return at >= first && at < first + slot_count_ * sizeof(CounterSlot);
}

void SharedCounters::fold(CounterSlot& slot) noexcept {
    std::uint64_t sequence = sequence_.load(std::memory_order_relaxed);
    for (;;) {
        if ((sequence & 1) != 0) {
            std::this_thread::yield();  // another fold is running
            sequence = sequence_.load(std::memory_order_relaxed);
            continue;
        }
        if (sequence_.compare_exchange_weak(sequence, sequence + 1, std::memory_order_acquire)) {
            break;
        }
    }
    folded_.add(slot.counts);
    slot.counts.clear();
    sequence_.store(sequence + 2, std::memory_order_release);
}

Counters* SharedCounters::claim(std::int32_t pid, AliveFn alive) noexcept {
    CounterSlot* slot = slots();
    // Free slots are taken in order, starting where the last claim found one.
    const std::size_t start = next_free_hint_.load(std::memory_order_relaxed);
    for (std::size_t n = 0; n < slot_count_; ++n) {
        const std::size_t i = (start + n) % slot_count_;
        std::int32_t expected = 0;
        if (slot[i].owner.load(std::memory_order_relaxed) == 0 &&
            slot[i].owner.compare_exchange_strong(expected, pid, std::memory_order_acquire)) {
            next_free_hint_.store((i + 1) % slot_count_, std::memory_order_relaxed);
            return &slot[i].counts;
        }
    }
    // Every slot is owned: take one whose process is gone, keeping its counts.
    for (std::size_t i = 0; i < slot_count_; ++i) {
        std::int32_t owner = slot[i].owner.load(std::memory_order_relaxed);
        if (owner == pid) {
            return &slot[i].counts;  // a previous process with this pid never released it
        }
        if (owner != 0 && !alive(owner) &&
            slot[i].owner.compare_exchange_strong(owner, pid, std::memory_order_acquire)) {
            fold(slot[i]);
            return &slot[i].counts;
        }
    }
    return nullptr;
}

void SharedCounters::release(Counters* counts) noexcept {
    if (!holds(counts)) {
        return;
    }
    const auto offset =
        reinterpret_cast<const char*>(counts) - reinterpret_cast<const char*>(slots());
    CounterSlot& slot = slots()[static_cast<std::size_t>(offset) / sizeof(CounterSlot)];
    fold(slot);
    slot.owner.store(0, std::memory_order_release);
}

void SharedCounters::sum(Category category, std::int64_t out[kCounterFieldCount]) const noexcept {
    const std::size_t c = category_index(category);
    const CounterSlot* slot = slots();
    for (;;) {
        const std::uint64_t before = sequence_.load(std::memory_order_acquire);
        if ((before & 1) != 0) {
            std::this_thread::yield();
            continue;
        }
        for (std::size_t f = 0; f < kCounterFieldCount; ++f) {
            std::int64_t total =
                (folded_.category[c].*kCounterFields[f]).load(std::memory_order_relaxed);
            for (std::size_t i = 0; i < slot_count_; ++i) {
                total +=
                    (slot[i].counts.category[c].*kCounterFields[f]).load(std::memory_order_relaxed);
            }
            out[f] = total;
        }
        std::atomic_thread_fence(std::memory_order_acquire);
        if (sequence_.load(std::memory_order_relaxed) == before) {
            return;
        }
    }
}

}  // namespace ephemeral_crypt
