// The benchmark build's cipher time account: what it reports, and that a
// forked child reports only its own work.
#include "core/cipher_timing.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <type_traits>

#include "test_support.hpp"

namespace ephemeral_crypt {
namespace {

std::string report_through_pipe() {
    int fds[2];
    if (pipe(fds) != 0) {
        return "pipe failed";
    }
    report_cipher_time(fds[1]);
    close(fds[1]);
    return testing::drain_and_close(fds[0]);
}

// The number after `field` ("decrypt_ns", ...) on `category`'s line of a
// report; 0 when the category has no line.
std::uint64_t reported(const std::string& report, const std::string& category,
                       const std::string& field) {
    const std::size_t line = report.find("category " + category + " ");
    if (line == std::string::npos) {
        return 0;
    }
    const std::size_t at = report.find(" " + field + " ", line);
    EXPECT_NE(at, std::string::npos) << report;
    return at == std::string::npos ? 0 : std::stoull(report.substr(at + field.size() + 2));
}

TEST(CipherTiming, ReportsEachCategoryItTimed) {
    const std::string before = report_through_pipe();
    add_cipher_time(Category::Spill, CipherDirection::Encrypt, 1000, 4096);
    add_cipher_time(Category::Spill, CipherDirection::Decrypt, 700, 4096);
    add_cipher_time(Category::Spill, CipherDirection::Decrypt, 300, 4096);
    const std::string after = report_through_pipe();
    EXPECT_EQ(before.find("category spill"), std::string::npos) << before;
    const std::string pid = "pid " + std::to_string(getpid()) + " ";
    EXPECT_NE(after.find("ephemeral_crypt cipher timing: " + pid +
                         "category spill encrypt_ns 1000 encrypt_bytes 4096 decrypt_ns 1000 "
                         "decrypt_bytes 8192\n"),
              std::string::npos)
        << after;
    EXPECT_EQ(after.find("category wal"), std::string::npos) << "a category with no work is silent";
}

TEST(CipherTiming, AForkedChildStartsFromZero) {
    add_cipher_time(Category::Wal, CipherDirection::Encrypt, 5, 16);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        _exit(report_through_pipe().empty() ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "the child reported its parent's cipher time";
}

// The clock is CLOCK_MONOTONIC in nanoseconds: a reading lies between two
// readings of std::chrono::steady_clock (the same clock on Linux) taken
// around it, and it advances by at least the 2 ms slept. A clock in other
// units, from another source, or one that stands still, fails.
TEST(CipherTiming, TheClockIsTheMonotonicClockInNanoseconds) {
    const auto steady_ns = [] {
        return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                              std::chrono::steady_clock::now().time_since_epoch())
                                              .count());
    };
    const std::uint64_t before = steady_ns();
    const std::uint64_t first = cipher_clock_ns();
    const std::uint64_t after = steady_ns();
    EXPECT_LE(before, first);
    EXPECT_LE(first, after);
    usleep(2000);
    EXPECT_GE(cipher_clock_ns() - first, 2000000u);
}

// A CipherTimer is what the codecs put around each cipher call. In the
// benchmark build it adds its own lifetime and its bytes to its category
// and direction, and nothing to the other direction; in the default build
// it is an empty object and adds nothing at all.
TEST(CipherTiming, ATimerAccountsItsLifetimeOnlyInTheBenchmarkBuild) {
    const std::string before = report_through_pipe();
    const std::uint64_t start = cipher_clock_ns();
    {
        const CipherTimer timer(Category::TempRelation, CipherDirection::Decrypt, 4096);
        usleep(1000);
    }
    const std::uint64_t elapsed = cipher_clock_ns() - start;
    const std::string after = report_through_pipe();
    const auto grew = [&](const char* field) {
        return reported(after, "temp_relation", field) - reported(before, "temp_relation", field);
    };
    if (kCipherTimingBuild) {
        EXPECT_EQ(grew("decrypt_bytes"), 4096u) << after;
        EXPECT_GE(grew("decrypt_ns"), 1000000u) << "at least the 1 ms slept: " << after;
        EXPECT_LE(grew("decrypt_ns"), elapsed) << "no more than the timer lived: " << after;
        EXPECT_EQ(grew("encrypt_bytes"), 0u) << after;
        EXPECT_EQ(grew("encrypt_ns"), 0u) << after;
    } else {
        EXPECT_TRUE(std::is_empty_v<CipherTimer>);
        EXPECT_EQ(after, before) << "the default build's timer adds nothing";
    }
}

}  // namespace
}  // namespace ephemeral_crypt
