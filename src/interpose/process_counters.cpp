// Where each process counts. The postmaster counts into a process-local
// block until src/pg places the shared block; from then on every process
// claims a slot of its own on its first count, so its I/O path writes only
// its own cache lines (core/counters.hpp). A fork child must not keep
// counting into its parent's slot, so a fork handler forgets the slot in the
// child, which claims its own. At exit a child folds its slot into the
// shared total. The postmaster does not: its shared memory is already gone
// when exit handlers run, and its counts end with the instance anyway.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include "interpose/layer.hpp"

namespace ephemeral_crypt::interpose {

namespace {

Counters g_local_counters;
std::atomic<SharedCounters*> g_shared{nullptr};
// This process's counting place once claimed; null until the first count.
std::atomic<Counters*> g_mine{nullptr};
pid_t g_postmaster_pid = 0;

bool process_alive(std::int32_t pid) noexcept {
    return kill(pid, 0) == 0 || errno == EPERM;
}

void forget_slot_in_child() noexcept {
    g_mine.store(nullptr, std::memory_order_relaxed);
}

Counters& claim_counters() noexcept {
    SharedCounters* shared = g_shared.load(std::memory_order_acquire);
    if (shared == nullptr) {
        return g_local_counters;
    }
    Counters* slot = shared->claim(static_cast<std::int32_t>(getpid()), process_alive);
    Counters* chosen = slot != nullptr ? slot : &shared->folded();
    Counters* expected = nullptr;
    if (!g_mine.compare_exchange_strong(expected, chosen, std::memory_order_acq_rel)) {
        // Another thread of this process claimed first: keep its slot.
        if (slot != nullptr) {
            shared->release(slot);
        }
        return *expected;
    }
    return *chosen;
}

}  // namespace

void prepare_process_counters() noexcept {
    static bool registered = false;
    if (!registered) {
        registered = pthread_atfork(nullptr, nullptr, forget_slot_in_child) == 0;
        g_postmaster_pid = getpid();
    }
}

void attach_counters(SharedCounters* shared, bool merge_previous) noexcept {
    if (shared == nullptr || shared == g_shared.load(std::memory_order_acquire)) {
        return;
    }
    if (merge_previous) {
        shared->folded().add(g_local_counters);
    }
    g_local_counters.clear();
    g_mine.store(nullptr, std::memory_order_relaxed);
    g_shared.store(shared, std::memory_order_release);
}

void detach_counters() noexcept {
    g_shared.store(nullptr, std::memory_order_release);
    g_mine.store(&g_local_counters, std::memory_order_release);
}

Counters& counters() noexcept {
    Counters* mine = g_mine.load(std::memory_order_acquire);
    return mine != nullptr ? *mine : claim_counters();
}

void read_counters(Category category, std::int64_t out[kCounterFieldCount]) noexcept {
    if (const SharedCounters* shared = g_shared.load(std::memory_order_acquire)) {
        shared->sum(category, out);
        return;
    }
    const CategoryCounters& local = g_local_counters.of(category);
    for (std::size_t f = 0; f < kCounterFieldCount; ++f) {
        out[f] = (local.*kCounterFields[f]).load(std::memory_order_relaxed);
    }
}

void release_process_counters() noexcept {
    SharedCounters* shared = g_shared.load(std::memory_order_acquire);
    Counters* mine = g_mine.load(std::memory_order_acquire);
    if (shared == nullptr || mine == nullptr || getpid() == g_postmaster_pid) {
        return;
    }
    // Counting after this (later exit handlers) goes to the shared total.
    g_mine.store(&shared->folded(), std::memory_order_release);
    shared->release(mine);
}

}  // namespace ephemeral_crypt::interpose
