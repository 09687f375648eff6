// Per-process counter slots: claiming, folding at release, reclaiming the
// slot of a process that died without releasing it, the overflow to the
// shared total, reads that never count a fold twice, and the layer's
// fork handler that gives each child a slot of its own.
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <utility>
#include <vector>

#include "core/counters.hpp"
#include "interpose/layer.hpp"

namespace ephemeral_crypt {
namespace {

constexpr std::size_t kFilesEncrypted = 0;  // kCounterFields order
constexpr std::size_t kBytesEncrypted = 2;
constexpr std::size_t kFailures = 4;

bool always_alive(std::int32_t) {
    return true;
}
bool never_alive(std::int32_t) {
    return false;
}

// A SharedCounters block in memory that fork children share.
class SharedBlock {
  public:
    explicit SharedBlock(std::size_t slots) : bytes_(SharedCounters::bytes_for(slots)) {
        memory_ = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        EXPECT_NE(memory_, MAP_FAILED);
        counters_ = SharedCounters::create(memory_, slots);
    }
    ~SharedBlock() { munmap(memory_, bytes_); }
    SharedCounters& operator*() { return *counters_; }
    SharedCounters* operator->() { return counters_; }
    SharedCounters* get() { return counters_; }

  private:
    std::size_t bytes_;
    void* memory_ = nullptr;
    SharedCounters* counters_ = nullptr;
};

std::int64_t sum_of(const SharedCounters& shared, Category category, std::size_t field) {
    std::int64_t values[kCounterFieldCount];
    shared.sum(category, values);
    return values[field];
}

// The slots of processes 100 and 101, both alive, which have encrypted
// `first` and `second` spill bytes.
std::pair<Counters*, Counters*> two_spill_writers(SharedBlock& shared, std::uint64_t first,
                                                  std::uint64_t second) {
    Counters* a = shared->claim(100, always_alive);
    Counters* b = shared->claim(101, always_alive);
    a->of(Category::Spill).bytes_encrypted += first;
    b->of(Category::Spill).bytes_encrypted += second;
    return {a, b};
}

TEST(Counters, EveryFieldIsListedOnce) {
    for (std::size_t i = 0; i < kCounterFieldCount; ++i) {
        for (std::size_t j = i + 1; j < kCounterFieldCount; ++j) {
            EXPECT_NE(kCounterFields[i], kCounterFields[j]);
        }
    }
}

TEST(Counters, SlotsAreDistinctAndOnSeparateCacheLines) {
    SharedBlock shared(4);
    Counters* a = shared->claim(100, always_alive);
    Counters* b = shared->claim(101, always_alive);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_NE(a, b);
    const auto distance = reinterpret_cast<char*>(b) - reinterpret_cast<char*>(a);
    EXPECT_GE(distance < 0 ? -distance : distance, 64);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a) % 64, reinterpret_cast<std::uintptr_t>(b) % 64);
}

TEST(Counters, SumCoversSlotsAndTheFoldedTotal) {
    SharedBlock shared(4);
    const auto [a, b] = two_spill_writers(shared, 4096, 8192);
    b->of(Category::Wal).files_encrypted += 1;
    EXPECT_EQ(sum_of(*shared, Category::Spill, kBytesEncrypted), 12288);
    shared->release(a);
    EXPECT_EQ(sum_of(*shared, Category::Spill, kBytesEncrypted), 12288)
        << "a release keeps the counts";
    EXPECT_EQ(shared->folded().of(Category::Spill).bytes_encrypted.load(), 4096);
    EXPECT_EQ(sum_of(*shared, Category::Wal, kFilesEncrypted), 1);
    EXPECT_EQ(sum_of(*shared, Category::TempRelation, kBytesEncrypted), 0);
}

TEST(Counters, AReleasedSlotIsReusedEmpty) {
    SharedBlock shared(1);
    Counters* a = shared->claim(100, always_alive);
    a->of(Category::Spill).failures += 3;
    shared->release(a);
    Counters* b = shared->claim(101, always_alive);
    ASSERT_EQ(b, a);
    EXPECT_EQ(b->of(Category::Spill).failures.load(), 0);
    EXPECT_EQ(sum_of(*shared, Category::Spill, kFailures), 3);
}

TEST(Counters, TheSlotOfAProcessThatIsGoneIsFoldedThenReclaimed) {
    SharedBlock shared(2);
    const auto [a, b] = two_spill_writers(shared, 10, 20);
    EXPECT_EQ(shared->claim(102, always_alive), nullptr) << "every slot is taken by a live process";
    Counters* c = shared->claim(102, never_alive);
    ASSERT_TRUE(c == a || c == b);
    EXPECT_EQ(c->of(Category::Spill).bytes_encrypted.load(), 0);
    EXPECT_EQ(sum_of(*shared, Category::Spill, kBytesEncrypted), 30)
        << "the dead process's counts survive";
}

TEST(Counters, WithoutAFreeSlotAProcessCountsIntoTheTotal) {
    SharedBlock shared(1);
    ASSERT_NE(shared->claim(100, always_alive), nullptr);
    EXPECT_EQ(shared->claim(101, always_alive), nullptr);
    shared->folded().of(Category::Spill).bytes_encrypted += 7;
    EXPECT_EQ(sum_of(*shared, Category::Spill, kBytesEncrypted), 7);
}

// While one thread claims, counts and releases slots over and over, another
// reads: the sum must never go down, which it would if a read counted a slot
// both in the total and in place, then once.
TEST(Counters, ReadsNeverCountAFoldTwice) {
    SharedBlock shared(8);
    std::atomic<bool> done{false};
    constexpr int kRounds = 20000;
    std::thread writer([&] {
        for (int i = 0; i < kRounds; ++i) {
            Counters* slot = shared->claim(1000 + i % 5, always_alive);
            ASSERT_NE(slot, nullptr);
            slot->of(Category::Spill).bytes_encrypted += 1;
            shared->release(slot);
        }
        done = true;
    });
    std::int64_t last = 0;
    bool monotonic = true;
    while (!done) {
        const std::int64_t now = sum_of(*shared, Category::Spill, kBytesEncrypted);
        monotonic = monotonic && now >= last;
        last = now;
    }
    writer.join();
    EXPECT_TRUE(monotonic);
    EXPECT_EQ(sum_of(*shared, Category::Spill, kBytesEncrypted), kRounds);
}

// Processes that count at once, each in its own slot, and exit with exit()
// (folding) or _exit() (not folding): every count is there afterwards.
TEST(Counters, ForkedProcessesCountInTheirOwnSlots) {
    SharedBlock shared(16);
    constexpr int kChildren = 6;
    std::vector<pid_t> children;
    for (int i = 0; i < kChildren; ++i) {
        const pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            Counters* slot = shared->claim(getpid(), always_alive);
            if (slot == nullptr) {
                _exit(2);
            }
            for (int n = 0; n < 1000; ++n) {
                slot->of(Category::TempRelation).bytes_encrypted += 8192;
            }
            if (i % 2 == 0) {
                shared->release(slot);
            }
            _exit(0);
        }
        children.push_back(pid);
    }
    for (pid_t pid : children) {
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    EXPECT_EQ(sum_of(*shared, Category::TempRelation, kBytesEncrypted),
              std::int64_t{kChildren} * 1000 * 8192);
}

// The layer's own counting: after attach, this process counts into a slot;
// a fork child counts into another one, not into its parent's.
TEST(Counters, TheLayerGivesAForkChildItsOwnSlot) {
    SharedBlock shared(8);
    interpose::prepare_process_counters();
    interpose::attach_counters(shared.get(), false);
    Counters& mine = interpose::counters();
    EXPECT_NE(&mine, &shared->folded());
    mine.of(Category::Spill).files_encrypted += 1;
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        Counters& child = interpose::counters();
        child.of(Category::Spill).files_encrypted += 10;
        _exit(&child == &mine ? 1 : 0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "the child reused its parent's slot";
    EXPECT_EQ(mine.of(Category::Spill).files_encrypted.load(), 1);
    std::int64_t values[kCounterFieldCount];
    interpose::read_counters(Category::Spill, values);
    EXPECT_EQ(values[kFilesEncrypted], 11);
    interpose::detach_counters();
}

}  // namespace
}  // namespace ephemeral_crypt
