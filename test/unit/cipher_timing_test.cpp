// The benchmark build's cipher time account: what it reports, and that a
// forked child reports only its own work.
#include "core/cipher_timing.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace ephemeral_crypt {
namespace {

std::string report_through_pipe() {
    int fds[2];
    if (pipe(fds) != 0) {
        return "pipe failed";
    }
    report_cipher_time(fds[1]);
    close(fds[1]);
    std::string out;
    char buffer[512];
    ssize_t got;
    while ((got = read(fds[0], buffer, sizeof(buffer))) > 0) {
        out.append(buffer, static_cast<std::size_t>(got));
    }
    close(fds[0]);
    return out;
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

TEST(CipherTiming, TheClockCountsNanoseconds) {
    const std::uint64_t first = cipher_clock_ns();
    usleep(2000);
    // At least the 2 ms slept, in nanoseconds: a clock in other units, or
    // one that stands still, fails.
    EXPECT_GE(cipher_clock_ns() - first, 2000000u);
}

}  // namespace
}  // namespace ephemeral_crypt
