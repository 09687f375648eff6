// The libc layer where the two formats differ: logical sizes and positions
// over each layout (fallocate, ftruncate, truncate, SEEK_DATA and
// SEEK_HOLE, range hints), a file written by one process and read by
// another, and data changed on disk (silent in XTS, an integrity failure in
// GCM). Each test runs in both ciphers.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "core/data_layout.hpp"
#include "core/file_header.hpp"
#include "interpose/layer.hpp"
#include "interpose/wrappers.hpp"
#include "layer_fixture.hpp"
#include "test_support.hpp"

namespace ephemeral_crypt::interpose {
namespace {

using ephemeral_crypt::testing::slurp;

class LayerFormatTest : public LayerTest {
  protected:
    void fallocate_truncate_and_zero_fill(const std::string& file);
};

INSTANTIATE_TEST_SUITE_P(Ciphers, LayerFormatTest,
                         ::testing::Values(FileCipher::Aes256Xts, FileCipher::Aes256Gcm),
                         [](const ::testing::TestParamInfo<FileCipher>& info) {
                             return info.param == FileCipher::Aes256Gcm ? "Gcm" : "Xts";
                         });

// On a WAL file (always XTS) and on a spill file (in the test's cipher).
TEST_P(LayerFormatTest, FallocateTruncateAndZeroFillReadAsZeros) {
    for (const std::string& file : {path("pg_wal/xlogtemp." + std::to_string(getpid())), fresh()}) {
        SCOPED_TRACE(file);
        fallocate_truncate_and_zero_fill(file);
    }
}

void LayerFormatTest::fallocate_truncate_and_zero_fill(const std::string& file) {
    const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ec_posix_fallocate(fd, 0, 1 << 20), 0);
    struct stat st {};
    ec_fstat(fd, &st);
    EXPECT_EQ(st.st_size, 1 << 20);
    std::vector<char> buf(1 << 20, 'x');
    ASSERT_EQ(ec_pread(fd, buf.data(), buf.size(), 0), 1 << 20);
    EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](char ch) { return ch == 0; }));
    ASSERT_EQ(ec_pwrite(fd, "tail", 4, 1000), 4);
    ASSERT_EQ(ec_ftruncate(fd, 1002), 0);
    ASSERT_EQ(ec_fallocate(fd, 0, 0, 5000), 0);
    ASSERT_EQ(ec_pread(fd, buf.data(), 5000, 0), 5000);
    EXPECT_EQ(std::string(buf.data() + 1000, 2), "ta");
    EXPECT_TRUE(
        std::all_of(buf.begin() + 1002, buf.begin() + 5000, [](char ch) { return ch == 0; }));
    EXPECT_EQ(ec_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096), -1);
    EXPECT_EQ(errno, EOPNOTSUPP);
    ec_close(fd);
    ASSERT_EQ(ec_truncate(file.c_str(), 10), 0);
    ASSERT_EQ(ec_stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 10);
    unlink(file.c_str());
}

// SEEK_DATA and SEEK_HOLE answer in logical offsets in both layouts.
TEST_P(LayerFormatTest, DataAndHoleSeeksAnswerInLogicalOffsets) {
    const std::string file = fresh();
    const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    const off_t far = 3 << 20;  // past the first groups of GCM units
    ASSERT_EQ(ec_pwrite(fd, kCanary.data(), kCanary.size(), far),
              static_cast<ssize_t>(kCanary.size()));
    const off_t end = far + static_cast<off_t>(kCanary.size());
    const off_t data = ec_lseek(fd, 0, SEEK_DATA);
    EXPECT_GE(data, 0);
    EXPECT_LE(data, far);
    EXPECT_EQ(ec_lseek(fd, far, SEEK_DATA), far);
    EXPECT_EQ(ec_lseek(fd, far, SEEK_HOLE), end);
    EXPECT_EQ(ec_lseek(fd, 0, SEEK_END), end);
    EXPECT_EQ(ec_posix_fadvise(fd, far, 4096, POSIX_FADV_WILLNEED), 0);
    ec_close(fd);
    struct stat st {};
    ASSERT_EQ(ec_stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_size, end);
    EXPECT_EQ(slurp(file).size(), physical_size(static_cast<std::size_t>(end)));
    unlink(file.c_str());
}

// What one process wrote and closed, another reads (a leader reading its
// workers' files after BufFileAppend; a parallel hash join's batches).
TEST_P(LayerFormatTest, AFileWrittenByOneProcessIsReadByAnother) {
    const std::string file = fresh("base/pgsql_tmp");
    const std::string text = canary_text(600 * 1024);  // more than one group of GCM units
    const pid_t child = fork();
    if (child == 0) {
        const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
        const bool ok =
            fd >= 0 && ec_write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
        _exit(ok && ec_close(fd) == 0 ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const int fd = ec_open(file.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    std::string back(text.size(), '\0');
    ASSERT_EQ(ec_read(fd, back.data(), back.size()), static_cast<ssize_t>(back.size()));
    EXPECT_EQ(back, text);
    ec_close(fd);
    unlink(file.c_str());
}

// A byte of unit 3's data changed on disk behind the layer's back. XTS
// cannot tell: the read succeeds and returns other bytes. GCM fails the read
// with EIO; the unit is counted as an integrity failure (not as a failure)
// and reported with the file, the category and the unit; fail_open_audit
// changes nothing about it; and the caller's buffer never holds the unit's
// plaintext (GCM's counter mode would decrypt all of it but that one byte).
TEST_P(LayerFormatTest, ChangedDataIsSilentInXtsAndAnIntegrityFailureInGcm) {
    configure_with(true, true, true, Degradation::FailOpenAudit);
    const std::string file = fresh();
    const std::string text = canary_text(5 * 4096);
    const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ec_pwrite(fd, text.data(), text.size(), 0), static_cast<ssize_t>(text.size()));
    {
        const int raw = ::open(file.c_str(), O_RDWR);
        ASSERT_GE(raw, 0);
        const off_t at = static_cast<off_t>(layout().physical_position(3 * 4096));
        std::uint8_t byte = 0;
        ASSERT_EQ(::pread(raw, &byte, 1, at), 1);
        byte ^= 0x20;
        ASSERT_EQ(::pwrite(raw, &byte, 1, at), 1);
        ::close(raw);
    }
    CategoryCounters& c = counters().of(Category::Spill);
    const auto integrity = c.integrity_failures.load();
    const auto failures = c.failures.load();
    const auto fallbacks = c.plaintext_fallbacks.load();
    const int seen = g_seen.count;
    std::string out(text.size(), '#');
    const ssize_t got = ec_pread(fd, out.data(), out.size(), 0);
    const int error = errno;
    EXPECT_EQ(c.failures.load(), failures);
    EXPECT_EQ(c.plaintext_fallbacks.load(), fallbacks);
    if (!authenticated()) {
        EXPECT_EQ(got, static_cast<ssize_t>(text.size()));
        EXPECT_NE(out, text) << "XTS returns the changed unit as if nothing happened";
        EXPECT_EQ(out.substr(0, 3 * 4096), text.substr(0, 3 * 4096));
        EXPECT_EQ(c.integrity_failures.load(), integrity);
        EXPECT_EQ(g_seen.count, seen);
    } else {
        EXPECT_EQ(got, -1);
        EXPECT_EQ(error, EIO);
        EXPECT_EQ(out.find(text.substr(3 * 4096 + 100, 64)), std::string::npos);
        EXPECT_EQ(c.integrity_failures.load() - integrity, 1u);
        ASSERT_EQ(g_seen.count, seen + 1);
        EXPECT_EQ(g_seen.event, LayerEvent::IntegrityFailure);
        EXPECT_EQ(g_seen.category, Category::Spill);
        EXPECT_EQ(g_seen.path, file);
        EXPECT_EQ(g_seen.unit, 3);
        EXPECT_NE(g_seen.detail.find("tag does not verify"), std::string::npos);
        // The other units still read.
        ASSERT_EQ(ec_pread(fd, out.data(), 3 * 4096, 0), 3 * 4096);
        EXPECT_EQ(out.substr(0, 3 * 4096), text.substr(0, 3 * 4096));
    }
    ec_close(fd);
    unlink(file.c_str());
}

}  // namespace
}  // namespace ephemeral_crypt::interpose
