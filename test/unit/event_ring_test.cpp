// The decision trail's ring: events come back oldest first with their
// fields, numbered from 1; a full ring drops the oldest and counts them; a
// writer that finds its slot still being written drops its own event
// instead of waiting; concurrent writers never produce a torn event.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "core/event_ring.hpp"

namespace ephemeral_crypt {
namespace {

struct RingMemory {
    explicit RingMemory(std::size_t capacity)
        : bytes(EventRing::bytes_for(capacity) / 8 + 1),
          ring(EventRing::create(bytes.data(), capacity)) {}
    std::vector<std::uint64_t> bytes;
    EventRing* ring;
};

DecisionEvent event_numbered(int n) {
    DecisionEvent event;
    event.time_ms = 1000 + n;
    event.pid = 4000 + n;
    event.error_number = n % 7;
    event.category = n % 3;
    std::snprintf(event.action, sizeof(event.action), "io_failure");
    std::snprintf(event.file, sizeof(event.file), "base/pgsql_tmp/pgsql_tmp%d.0", n);
    std::snprintf(event.detail, sizeof(event.detail), "detail %d", n);
    std::snprintf(event.key_id, sizeof(event.key_id), "0123456789abcdef");
    return event;
}

TEST(EventRingTest, StartsEmpty) {
    RingMemory memory(16);
    const RingSnapshot snapshot = memory.ring->snapshot();
    EXPECT_TRUE(snapshot.events.empty());
    EXPECT_EQ(snapshot.pushed, 0u);
    EXPECT_EQ(snapshot.dropped, 0u);
}

TEST(EventRingTest, KeepsEventsOldestFirst) {
    RingMemory memory(16);
    for (int n = 0; n < 5; ++n) {
        EXPECT_EQ(memory.ring->push(event_numbered(n)), static_cast<std::uint64_t>(n + 1));
    }
    const RingSnapshot snapshot = memory.ring->snapshot();
    ASSERT_EQ(snapshot.events.size(), 5u);
    EXPECT_EQ(snapshot.dropped, 0u);
    for (int n = 0; n < 5; ++n) {
        const DecisionEvent& event = snapshot.events[static_cast<std::size_t>(n)];
        EXPECT_EQ(event.id, static_cast<std::uint64_t>(n + 1));
        EXPECT_EQ(event.pid, 4000 + n);
        EXPECT_EQ(event.category, n % 3);
        EXPECT_STREQ(event.file, event_numbered(n).file);
        EXPECT_STREQ(event.detail, event_numbered(n).detail);
    }
}

TEST(EventRingTest, AFullRingDropsTheOldestAndCountsThem) {
    RingMemory memory(16);
    for (int n = 0; n < 100; ++n) {
        memory.ring->push(event_numbered(n));
    }
    const RingSnapshot snapshot = memory.ring->snapshot();
    EXPECT_EQ(snapshot.pushed, 100u);
    EXPECT_EQ(snapshot.dropped, 84u);
    ASSERT_EQ(snapshot.events.size(), 16u);
    EXPECT_EQ(snapshot.events.front().id, 85u);
    EXPECT_EQ(snapshot.events.back().id, 100u);
    std::uint64_t pushed = 0;
    std::uint64_t dropped = 0;
    memory.ring->counts(&pushed, &dropped);
    EXPECT_EQ(pushed, 100u);
    EXPECT_EQ(dropped, 84u);
    EXPECT_STREQ(snapshot.events.back().file, "base/pgsql_tmp/pgsql_tmp99.0");
}

TEST(EventRingTest, TheCapacityHasAFloor) {
    RingMemory memory(1);
    EXPECT_EQ(memory.ring->capacity(), kMinEventRingCapacity);
}

TEST(EventRingTest, ConcurrentWritersNeverTearAnEvent) {
    RingMemory memory(64);
    constexpr int kThreads = 4;
    constexpr int kEach = 5000;
    std::vector<std::thread> writers;
    for (int t = 0; t < kThreads; ++t) {
        writers.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                memory.ring->push(event_numbered(t * kEach + i));
            }
        });
    }
    // Read while they write: every event read is whole.
    for (int round = 0; round < 200; ++round) {
        for (const DecisionEvent& event : memory.ring->snapshot().events) {
            const int n = event.pid - 4000;
            ASSERT_STREQ(event.file, event_numbered(n).file);
            ASSERT_EQ(event.time_ms, 1000 + n);
        }
    }
    for (std::thread& writer : writers) {
        writer.join();
    }
    const RingSnapshot snapshot = memory.ring->snapshot();
    EXPECT_EQ(snapshot.pushed, static_cast<std::uint64_t>(kThreads * kEach));
    EXPECT_EQ(snapshot.events.size() + snapshot.dropped, snapshot.pushed);
    EXPECT_LE(snapshot.events.size(), 64u);
    for (std::size_t i = 1; i < snapshot.events.size(); ++i) {
        EXPECT_LT(snapshot.events[i - 1].id, snapshot.events[i].id);
    }
}

}  // namespace
}  // namespace ephemeral_crypt
