// The shared small-file helpers of src/core: hex through libsodium, the one
// SHA-256, logical/physical offsets, bounded whole-file reads, and durable
// replacement with every failing step reported and cleaned up.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/file_header.hpp"
#include "core/file_io.hpp"
#include "core/hex.hpp"
#include "core/sha256.hpp"
#include "test_support.hpp"

namespace ephemeral_crypt {
namespace {

using testing::slurp;
using testing::spit;

TEST(Hex, EncodesLowercaseAndDecodesEitherCase) {
    const std::uint8_t bytes[] = {0x00, 0x7f, 0xab, 0xff};
    EXPECT_EQ(to_hex(bytes, sizeof(bytes)), "007fabff");
    char buffer[9];
    ASSERT_TRUE(to_hex(bytes, sizeof(bytes), buffer, sizeof(buffer)));
    EXPECT_STREQ(buffer, "007fabff");
    EXPECT_FALSE(to_hex(bytes, sizeof(bytes), buffer, 8));  // no room for the NUL
    std::uint8_t back[4] = {};
    ASSERT_TRUE(from_hex("007FABff", back, sizeof(back)));
    EXPECT_EQ(std::memcmp(back, bytes, sizeof(bytes)), 0);
}

TEST(Hex, RefusesWrongLengthsAndNonDigits) {
    std::uint8_t out[2];
    EXPECT_FALSE(from_hex("abc", out, 2));
    EXPECT_FALSE(from_hex("abcdef", out, 2));
    EXPECT_FALSE(from_hex("abcg", out, 2));
    EXPECT_FALSE(from_hex("ab d", out, 2));
    EXPECT_TRUE(bytes_from_hex("abc").empty());
    EXPECT_EQ(bytes_from_hex("0a0b"), (std::vector<std::uint8_t>{0x0a, 0x0b}));
}

TEST(Sha256, MatchesTheStandardVector) {
    std::uint8_t digest[kSha256Bytes];
    ASSERT_TRUE(sha256("abc", 3, digest));
    EXPECT_EQ(to_hex(digest, sizeof(digest)),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Offsets, LogicalIsPhysicalMinusTheDataOffset) {
    EXPECT_EQ(logical_from_physical(0), 0);
    EXPECT_EQ(logical_from_physical(100), 0);   // inside the header
    EXPECT_EQ(logical_from_physical(4096), 0);  // the header alone
    EXPECT_EQ(logical_from_physical(65536), 0);
    EXPECT_EQ(logical_from_physical(65537), 1);
    EXPECT_EQ(physical_from_logical(0), 65536);
    EXPECT_EQ(logical_from_physical(physical_from_logical(123456)), 123456);
}

class FileIoTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/ec-file-io-XXXXXX";
        dir_ = mkdtemp(tmpl);
    }
    void TearDown() override {
        const std::string cmd = "rm -rf '" + dir_ + "'";
        (void)std::system(cmd.c_str());
    }
    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    std::string dir_;
};

TEST_F(FileIoTest, ReadsWholeFilesUpToTheBound) {
    spit(path("f"), std::string(10000, 'x'));
    std::string text;
    EXPECT_TRUE(read_small_file(path("f"), 10000, true, &text).ok());
    EXPECT_EQ(text, std::string(10000, 'x'));
    const ReadOutcome too_large = read_small_file(path("f"), 9999, true, &text);
    EXPECT_EQ(too_large.failed_at, ReadStep::TooLarge);
}

TEST_F(FileIoTest, ReadSaysWhereItStopped) {
    std::string text;
    const ReadOutcome missing = read_small_file(path("nope"), 100, true, &text);
    EXPECT_EQ(missing.failed_at, ReadStep::Open);
    EXPECT_EQ(missing.error, ENOENT);
    EXPECT_EQ(read_small_file(dir_, 100, true, &text).failed_at, ReadStep::NotRegular);
    // Without regular_only a directory opens, and reading it fails.
    const ReadOutcome directory = read_small_file(dir_, 100, false, &text);
    EXPECT_EQ(directory.failed_at, ReadStep::Read);
    EXPECT_EQ(directory.error, EISDIR);
}

TEST_F(FileIoTest, ReplacesDurablyAndLeavesNoTemporaryFile) {
    spit(path("target"), "old");
    const int rc = replace_file_durably(
        libc_file_calls(), AT_FDCWD, path("target.tmp").c_str(), path("target").c_str(), 0600,
        [](int fd) { return ::write(fd, "new contents", 12) == 12; });
    ASSERT_EQ(rc, 0);
    EXPECT_EQ(slurp(path("target")), "new contents");
    EXPECT_NE(::access(path("target.tmp").c_str(), F_OK), 0);
}

TEST_F(FileIoTest, AFailedFillKeepsTheTargetAndItsErrno) {
    spit(path("target"), "old");
    const int rc = replace_file_durably(libc_file_calls(), AT_FDCWD, path("target.tmp").c_str(),
                                        path("target").c_str(), 0600, [](int fd) {
                                            (void)::write(fd, "partial", 7);
                                            errno = ENOSPC;
                                            return false;
                                        });
    EXPECT_EQ(rc, -1);
    EXPECT_EQ(errno, ENOSPC);
    EXPECT_EQ(slurp(path("target")), "old");
    EXPECT_NE(::access(path("target.tmp").c_str(), F_OK), 0);
}

int failing_fsync(int) {
    errno = EIO;
    return -1;
}

TEST_F(FileIoTest, AnFsyncErrorIsAFailure) {
    spit(path("target"), "old");
    FileCalls calls = libc_file_calls();
    calls.fsync = failing_fsync;
    const int rc =
        replace_file_durably(calls, AT_FDCWD, path("target.tmp").c_str(), path("target").c_str(),
                             0600, [](int fd) { return ::write(fd, "new", 3) == 3; });
    EXPECT_EQ(rc, -1);
    EXPECT_EQ(errno, EIO);
    EXPECT_EQ(slurp(path("target")), "old");
    EXPECT_NE(::access(path("target.tmp").c_str(), F_OK), 0);
    EXPECT_EQ(sync_parent_directory(calls, AT_FDCWD, path("target").c_str()), -1);
}

TEST_F(FileIoTest, ARenameErrorKeepsTheTarget) {
    const int rc = replace_file_durably(libc_file_calls(), AT_FDCWD, path("target.tmp").c_str(),
                                        path("no/such/dir/target").c_str(), 0600,
                                        [](int fd) { return ::write(fd, "new", 3) == 3; });
    EXPECT_EQ(rc, -1);
    EXPECT_EQ(errno, ENOENT);
    EXPECT_NE(::access(path("target.tmp").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace ephemeral_crypt
