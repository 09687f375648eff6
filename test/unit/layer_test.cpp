// The libc layer on real files: each wrapper is called directly (no GOT
// patching needed) against a scratch "data directory", and the bytes on disk
// are read back with plain libc to check what actually landed there. Every
// test runs twice: with spill files and temporary relations in AES-256-XTS
// (format v1) and in AES-256-GCM (format v2); WAL is XTS in both. Sizes,
// positions and data integrity are in layer_format_test.cpp.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/file_header.hpp"
#include "interpose/layer.hpp"
#include "interpose/wrappers.hpp"
#include "layer_fixture.hpp"
#include "locked_memory_support.hpp"
#include "test_support.hpp"

namespace ephemeral_crypt::interpose {
namespace {

using ephemeral_crypt::testing::slurp;

// Closes `fd`, checks that no canary reached `file` on disk, and removes it.
void close_and_expect_no_canary(int fd, const std::string& file) {
    ec_close(fd);
    EXPECT_EQ(slurp(file).find(kCanary), std::string::npos) << file;
    unlink(file.c_str());
}

INSTANTIATE_TEST_SUITE_P(Ciphers, LayerTest,
                         ::testing::Values(FileCipher::Aes256Xts, FileCipher::Aes256Gcm),
                         [](const ::testing::TestParamInfo<FileCipher>& info) {
                             return info.param == FileCipher::Aes256Gcm ? "Gcm" : "Xts";
                         });

TEST_P(LayerTest, SpillFileIsCiphertextOnDiskAndPlaintextThroughTheLayer) {
    const std::string file = fresh();
    const std::string text = canary_text(20000);
    int fd = ec_open(file.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    Category category{};
    ASSERT_TRUE(fd_is_tracked(fd, &category));
    EXPECT_EQ(category, Category::Spill);
    ASSERT_EQ(ec_write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    EXPECT_EQ(ec_lseek(fd, 0, SEEK_CUR), static_cast<off_t>(text.size()));
    EXPECT_EQ(ec_lseek(fd, 0, SEEK_END), static_cast<off_t>(text.size()));
    struct stat st {};
    ASSERT_EQ(ec_fstat(fd, &st), 0);
    EXPECT_EQ(st.st_size, static_cast<off_t>(text.size()));
    ASSERT_EQ(ec_close(fd), 0);

    const std::string raw = slurp(file);
    EXPECT_EQ(raw.size(), physical_size(text.size()));
    EXPECT_EQ(raw.compare(0, 8, std::string(kHeaderMagic, 8)), 0);
    EXPECT_EQ(raw.find(kCanary.substr(0, 16)), std::string::npos);

    ASSERT_EQ(ec_stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_size, static_cast<off_t>(text.size()));
    fd = ec_open(file.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    std::string back(text.size(), '\0');
    ASSERT_EQ(ec_read(fd, back.data(), back.size()), static_cast<ssize_t>(back.size()));
    EXPECT_EQ(back, text);
    char extra;
    EXPECT_EQ(ec_read(fd, &extra, 1), 0);
    ec_close(fd);
    unlink(file.c_str());
}

TEST_P(LayerTest, EveryCategoryIsEncrypted) {
    const std::string files[] = {path("base/5/t3_16384"), path("pg_wal/000000010000000000000007"),
                                 path("pg_replslot/s/xid-900-lsn-0-1000000.spill")};
    for (const std::string& file : files) {
        const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
        ASSERT_GE(fd, 0) << file;
        ASSERT_TRUE(fd_is_tracked(fd, nullptr)) << file;
        ASSERT_EQ(ec_pwrite(fd, kCanary.data(), kCanary.size(), 8192),
                  static_cast<ssize_t>(kCanary.size()));
        ec_close(fd);
        EXPECT_EQ(slurp(file).find(kCanary), std::string::npos) << file;
        unlink(file.c_str());
    }
}

// Creates `file` through the layer, writes the canary, and checks that the
// layer left it alone: untracked, and the canary on disk as it was written.
void expect_passed_through(const std::string& file) {
    const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    EXPECT_FALSE(fd_is_tracked(fd, nullptr));
    ASSERT_EQ(ec_write(fd, kCanary.data(), kCanary.size()), static_cast<ssize_t>(kCanary.size()));
    ec_close(fd);
    EXPECT_EQ(slurp(file), kCanary);
    unlink(file.c_str());
}

TEST_P(LayerTest, FilesOutsideTheCategoriesPassStraightThrough) {
    expect_passed_through(path("base/5/16384"));
}

TEST_P(LayerTest, ADisabledCategoryPassesStraightThrough) {
    configure_with(true, false, true);
    expect_passed_through(fresh());
}

TEST_P(LayerTest, DupAndFcntlShareTheFileAndItsPosition) {
    const std::string file = fresh();
    const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    const int copy = ec_dup(fd);
    const int copy2 = ec_fcntl(fd, F_DUPFD_CLOEXEC, 100);
    const int target = ec_dup2(fd, 90);
    ASSERT_GE(copy, 0);
    ASSERT_GE(copy2, 100);
    ASSERT_EQ(target, 90);
    EXPECT_TRUE(fd_is_tracked(copy, nullptr));
    EXPECT_TRUE(fd_is_tracked(copy2, nullptr));
    EXPECT_TRUE(fd_is_tracked(90, nullptr));
    ASSERT_EQ(ec_write(fd, "hello ", 6), 6);
    ASSERT_EQ(ec_write(copy, "world", 5), 5);  // shared position: appends
    ec_close(fd);
    char buf[11] = {};
    ASSERT_EQ(ec_pread(copy2, buf, 11, 0), 11);
    EXPECT_EQ(std::string(buf, 11), "hello world");
    EXPECT_EQ(ec_lseek(90, 0, SEEK_CUR), 11);
    ec_close(copy);
    ec_close(copy2);
    ec_close(90);
    unlink(file.c_str());
}

TEST_P(LayerTest, AReusedDescriptorNumberIsNotTracked) {
    const std::string file = fresh();
    const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    ec_close(fd);
    const int other = ec_open("/dev/null", O_RDWR);
    ASSERT_EQ(other, fd);  // the kernel hands out the lowest free number
    EXPECT_FALSE(fd_is_tracked(other, nullptr));
    EXPECT_EQ(ec_write(other, "x", 1), 1);
    ec_close(other);
    unlink(file.c_str());
}

TEST_P(LayerTest, CloseRangeReleasesTrackedDescriptors) {
    const std::string file = fresh();
    const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    const int copy = ec_dup(fd);
    ASSERT_TRUE(fd_is_tracked(copy, nullptr));
    const auto open_before = counters().of(Category::Spill).files_open.load();
    const int low = std::min(fd, copy);
    const int high = std::max(fd, copy);
    ASSERT_EQ(ec_close_range(static_cast<unsigned>(low), static_cast<unsigned>(high), 0), 0);
    EXPECT_FALSE(fd_is_tracked(fd, nullptr));
    EXPECT_FALSE(fd_is_tracked(copy, nullptr));
    EXPECT_EQ(open_before - counters().of(Category::Spill).files_open.load(), 2);
    EXPECT_EQ(fcntl(fd, F_GETFD), -1);  // really closed
    unlink(file.c_str());
}

TEST_P(LayerTest, ForkedChildSeesTheSameFile) {
    const std::string file = fresh();
    const std::string text = canary_text(9000);
    const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ec_write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ASSERT_EQ(ec_lseek(fd, 100, SEEK_SET), 100);
    const pid_t child = fork();
    if (child == 0) {
        char buf[50];
        const bool ok = ec_read(fd, buf, sizeof(buf)) == 50 &&
                        std::memcmp(buf, text.data() + 100, 50) == 0 &&
                        ec_write(fd, "CHILD", 5) == 5;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    // The child advanced the shared position and wrote through its copy of the table.
    EXPECT_EQ(ec_lseek(fd, 0, SEEK_CUR), 155);
    char buf[5];
    if (authenticated()) {
        // In GCM the parent remembers the unit as it last sealed it, and the
        // child's rewrite looks to it like a unit rolled back: a file has
        // one writing process at a time (docs/formats.md). Once the parent
        // has closed it, the child's write reads back.
        EXPECT_EQ(ec_pread(fd, buf, 5, 150), -1);
        EXPECT_EQ(errno, EIO);
        ec_close(fd);
        const int again = ec_open(file.c_str(), O_RDONLY);
        ASSERT_GE(again, 0);
        ASSERT_EQ(ec_pread(again, buf, 5, 150), 5);
        ec_close(again);
    } else {
        ASSERT_EQ(ec_pread(fd, buf, 5, 150), 5);
        ec_close(fd);
    }
    EXPECT_EQ(std::string(buf, 5), "CHILD");
    unlink(file.c_str());
}

TEST_P(LayerTest, SurvivesVfdStyleCloseAndReopenChurn) {
    const std::string file = fresh();
    std::vector<char> page(8192);
    for (int i = 0; i < 1500; ++i) {
        const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT, 0600);
        ASSERT_GE(fd, 0) << i;
        std::memset(page.data(), 'a' + (i % 26), page.size());
        std::snprintf(page.data(), 32, "page %d", i);
        ASSERT_EQ(ec_pwrite(fd, page.data(), page.size(), static_cast<off_t>(i % 300) * 8192),
                  8192);
        ASSERT_EQ(ec_close(fd), 0);
    }
    const int fd = ec_open(file.c_str(), O_RDONLY);
    for (int i = 1200; i < 1500; ++i) {
        ASSERT_EQ(ec_pread(fd, page.data(), page.size(), static_cast<off_t>(i % 300) * 8192), 8192);
        EXPECT_EQ(std::string(page.data()), "page " + std::to_string(i));
        EXPECT_EQ(page[8191], 'a' + (i % 26));
    }
    struct stat st {};
    ec_fstat(fd, &st);
    EXPECT_EQ(st.st_size, 300 * 8192);
    ec_close(fd);
    unlink(file.c_str());
}

TEST_P(LayerTest, WriteOnlyAppendDescriptorsLikeReorderBufferSpills) {
    const std::string file = path("pg_replslot/s/xid-77-lsn-0-2000000.spill");
    int fd = ec_open(file.c_str(), O_CREAT | O_WRONLY | O_APPEND, 0600);
    ASSERT_GE(fd, 0);
    std::string all;
    for (int i = 0; i < 200; ++i) {
        const std::string record = "record-" + std::to_string(i) + "-" + kCanary;
        ASSERT_EQ(ec_write(fd, record.data(), record.size()), static_cast<ssize_t>(record.size()));
        all += record;
    }
    char c;
    EXPECT_EQ(ec_read(fd, &c, 1), -1);
    EXPECT_EQ(errno, EBADF);
    EXPECT_EQ(ec_fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND), O_WRONLY | O_APPEND);
    ec_close(fd);
    fd = ec_open(file.c_str(), O_RDONLY);
    std::string back(all.size(), '\0');
    ASSERT_EQ(ec_read(fd, back.data(), back.size()), static_cast<ssize_t>(back.size()));
    EXPECT_EQ(back, all);
    EXPECT_EQ(ec_write(fd, "x", 1), -1);
    EXPECT_EQ(errno, EBADF);
    close_and_expect_no_canary(fd, file);
}

TEST_P(LayerTest, BackwardReadsLikeTuplestore) {
    const std::string file = fresh();
    const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT, 0600);
    std::vector<std::uint32_t> values(30000);
    for (std::uint32_t i = 0; i < values.size(); ++i) {
        values[i] = i * 2654435761u;
    }
    ASSERT_EQ(ec_write(fd, values.data(), values.size() * 4),
              static_cast<ssize_t>(values.size() * 4));
    for (std::size_t i = values.size(); i-- > 0;) {
        std::uint32_t v = 0;
        ASSERT_EQ(ec_lseek(fd, static_cast<off_t>(i * 4), SEEK_SET), static_cast<off_t>(i * 4));
        ASSERT_EQ(ec_read(fd, &v, 4), 4);
        ASSERT_EQ(v, values[i]) << i;
    }
    ec_close(fd);
    unlink(file.c_str());
}

TEST_P(LayerTest, VectoredCallsAreCovered) {
    const std::string file = fresh();
    const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT, 0600);
    std::string a(5000, 'A'), b(3000, 'B'), c = kCanary;
    struct iovec out[3] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
    const ssize_t total = static_cast<ssize_t>(a.size() + b.size() + c.size());
    ASSERT_EQ(ec_pwritev(fd, out, 3, 100), total);
    ASSERT_EQ(ec_lseek(fd, 20000, SEEK_SET), 20000);
    ASSERT_EQ(ec_writev(fd, out, 3), total);
    EXPECT_EQ(ec_lseek(fd, 0, SEEK_CUR), 20000 + total);
    std::string x(a.size(), 0), y(b.size(), 0), z(c.size(), 0);
    struct iovec in[3] = {{x.data(), x.size()}, {y.data(), y.size()}, {z.data(), z.size()}};
    ASSERT_EQ(ec_preadv(fd, in, 3, 100), total);
    EXPECT_TRUE(x == a && y == b && z == c);
    x.assign(x.size(), 0);
    y.assign(y.size(), 0);
    z.assign(z.size(), 0);
    ASSERT_EQ(ec_lseek(fd, 20000, SEEK_SET), 20000);
    ASSERT_EQ(ec_readv(fd, in, 3), total);
    EXPECT_TRUE(x == a && y == b && z == c);
    EXPECT_EQ(ec_lseek(fd, 0, SEEK_CUR), 20000 + total);
    close_and_expect_no_canary(fd, file);
}

TEST_P(LayerTest, BypassesAreRefused) {
    const std::string file = fresh();
    const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_EQ(ec_pwrite(fd, kCanary.data(), kCanary.size(), 0),
              static_cast<ssize_t>(kCanary.size()));
    const auto failures_before = counters().of(Category::Spill).failures.load();
    EXPECT_EQ(ec_mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0), MAP_FAILED);
    EXPECT_EQ(errno, ENODEV);
    const int out = ec_open("/dev/null", O_WRONLY);
    EXPECT_EQ(ec_copy_file_range(fd, nullptr, out, nullptr, 10, 0), -1);
    EXPECT_EQ(errno, EXDEV);
    EXPECT_EQ(ec_sendfile(out, fd, nullptr, 10), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(ec_splice(fd, nullptr, out, nullptr, 10, 0), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(ec_fopen(file.c_str(), "r"), nullptr);
    EXPECT_EQ(errno, EACCES);
    EXPECT_EQ(counters().of(Category::Spill).failures.load() - failures_before, 5);
    // Untracked descriptors are not affected.
    void* map = ec_mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(map, MAP_FAILED);
    munmap(map, 4096);
    ec_close(out);
    ec_close(fd);
    unlink(file.c_str());
}

TEST_P(LayerTest, ForeignAndCorruptHeadersFailClosed) {
    const std::string file = fresh();
    auto other_key = InstanceKey::generate();
    std::vector<std::uint8_t> header(kHeaderBytes);
    FileHeader fields;
    ASSERT_TRUE(encode_header(fields, *other_key, header.data()));
    {
        std::ofstream out(file, std::ios::binary);
        out.write(reinterpret_cast<const char*>(header.data()), header.size());
        out << kCanary;
    }
    EXPECT_EQ(ec_open(file.c_str(), O_RDONLY), -1);
    EXPECT_EQ(errno, EIO);
    header[header_layout::kNonce] ^= 1;
    {
        std::ofstream out(file, std::ios::binary);
        out.write(reinterpret_cast<const char*>(header.data()), header.size());
    }
    EXPECT_EQ(ec_open(file.c_str(), O_RDWR), -1);
    EXPECT_EQ(errno, EIO);
    unlink(file.c_str());
}

TEST_P(LayerTest, PlaintextThatPredatesTheLayerIsServedAsItIs) {
    const std::string file = fresh();
    {
        std::ofstream out(file, std::ios::binary);
        out << canary_text(5000);
    }
    const int fd = ec_open(file.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_FALSE(fd_is_tracked(fd, nullptr));
    ec_close(fd);
    unlink(file.c_str());
}

TEST_P(LayerTest, FaultUnderFailClosedRefusesAndWritesNothing) {
    set_fault(Category::Spill, true);
    const std::string file = fresh();
    EXPECT_EQ(ec_open(file.c_str(), O_RDWR | O_CREAT, 0600), -1);
    EXPECT_EQ(errno, EIO);
    // The refused creation leaves nothing behind.
    struct stat st {};
    EXPECT_EQ(stat(file.c_str(), &st), -1);
    EXPECT_EQ(errno, ENOENT);
}

TEST_P(LayerTest, FaultUnderFailOpenAuditWritesMarkedPlaintext) {
    configure_with(true, true, true, Degradation::FailOpenAudit);
    set_fault(Category::Spill, true);
    const auto before = counters().of(Category::Spill).plaintext_fallbacks.load();
    const std::string file = fresh();
    const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ec_write(fd, kCanary.data(), kCanary.size()), static_cast<ssize_t>(kCanary.size()));
    ec_close(fd);
    EXPECT_EQ(counters().of(Category::Spill).plaintext_fallbacks.load() - before, 1);
    const std::string raw = slurp(file);
    const DecodedHeader decoded =
        decode_header(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size(), key_);
    ASSERT_EQ(decoded.status, HeaderStatus::Ok);
    EXPECT_TRUE(decoded.header.plaintext_audit());
    EXPECT_EQ(raw.substr(kDataOffsetBytes), kCanary);
    unlink(file.c_str());
}

TEST_P(LayerTest, RenameOutOfTheCategoriesLeavesPlaintext) {
    // writeTimeLineHistory writes pg_wal/xlogtemp.<pid> and renames it to a
    // .history file, which readers expect in plaintext.
    const std::string temp = path("pg_wal/xlogtemp.history" + std::to_string(getpid()));
    const std::string history = path("pg_wal/00000002.history");
    const std::string text = "1\t0/3000000\tno recovery target specified\n";
    int fd = ec_open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(fd_is_tracked(fd, nullptr));
    ASSERT_EQ(ec_write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ec_close(fd);
    ASSERT_EQ(ec_rename(temp.c_str(), history.c_str()), 0);
    EXPECT_EQ(slurp(history), text);
    struct stat st {};
    EXPECT_EQ(stat(temp.c_str(), &st), -1);
    unlink(history.c_str());

    // Within the categories a rename keeps the file as it is, encrypted.
    const std::string segment = path("pg_wal/000000010000000000000042");
    fd = ec_open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT_EQ(ec_write(fd, kCanary.data(), kCanary.size()), static_cast<ssize_t>(kCanary.size()));
    ec_close(fd);
    ASSERT_EQ(ec_rename(temp.c_str(), segment.c_str()), 0);
    const std::string raw = slurp(segment);
    EXPECT_EQ(raw.compare(0, 8, std::string(kHeaderMagic, 8)), 0);
    EXPECT_EQ(raw.find(kCanary), std::string::npos);
    unlink(segment.c_str());
}

TEST_P(LayerTest, CountersFollowTheBytes) {
    Counters& c = counters();
    const auto enc = c.of(Category::Spill).bytes_encrypted.load();
    const auto dec = c.of(Category::Spill).bytes_decrypted.load();
    const auto files = c.of(Category::Spill).files_encrypted.load();
    const std::string file = fresh();
    const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT, 0600);
    EXPECT_EQ(c.of(Category::Spill).files_open.load() >= 1, true);
    std::vector<char> page(8192, 'p');
    ASSERT_EQ(ec_pwrite(fd, page.data(), page.size(), 0), 8192);
    ASSERT_EQ(ec_pread(fd, page.data(), 100, 0), 100);
    ec_close(fd);
    EXPECT_EQ(c.of(Category::Spill).bytes_encrypted.load() - enc, 8192u);
    EXPECT_EQ(c.of(Category::Spill).bytes_decrypted.load() - dec, 100u);
    EXPECT_EQ(c.of(Category::Spill).files_encrypted.load() - files, 1u);
    unlink(file.c_str());
}

LayerEvent g_last_event = LayerEvent::IoFailure;
int g_events = 0;
void record_layer_event(LayerEvent event, Category, const char*, std::int64_t, const char*) {
    g_last_event = event;
    ++g_events;
}

TEST_P(LayerTest, WithoutLockedMemoryFilesAreRefusedAndNothingIsWritten) {
    // A file created while locked memory is plentiful, reopened later.
    const std::string existing = fresh();
    int fd = ec_open(existing.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ec_write(fd, kCanary.data(), kCanary.size()), static_cast<ssize_t>(kCanary.size()));
    ec_close(fd);
    const std::string verdict = ephemeral_crypt::testing::in_child([&]() -> std::string {
        if (!ephemeral_crypt::testing::limit_locked_memory(256 * 1024)) {
            return "could not drop CAP_IPC_LOCK and set RLIMIT_MEMLOCK";
        }
        LayerConfig config = interpose::config();
        config.on_event = record_layer_event;
        configure(config);
        std::vector<int> open_fds;
        for (int i = 0; i < 1000; ++i) {
            const std::string file = fresh();
            g_events = 0;
            const int next = ec_open(file.c_str(), O_RDWR | O_CREAT, 0600);
            if (next >= 0) {
                open_fds.push_back(next);
                continue;
            }
            if (errno != ENOMEM) {
                return "refused with errno " + std::to_string(errno) + ", not ENOMEM";
            }
            if (g_events != 1 || g_last_event != LayerEvent::LockedMemoryExhausted) {
                return "the refusal was not reported as LockedMemoryExhausted";
            }
            struct stat st {};
            if (stat(file.c_str(), &st) == 0) {
                return "the refused creation left " + file + " behind";
            }
            if (ec_open(existing.c_str(), O_RDONLY) != -1 || errno != ENOMEM) {
                return "an existing file was opened without locked memory for its key";
            }
            if (open_fds.size() < 20) {
                return "only " + std::to_string(open_fds.size()) + " files before the refusal";
            }
            ec_close(open_fds.back());
            open_fds.pop_back();
            const int again = ec_open(existing.c_str(), O_RDONLY);
            if (again < 0) {
                return "closing a file did not make room for the next";
            }
            std::string back(kCanary.size(), '\0');
            if (ec_read(again, back.data(), back.size()) != static_cast<ssize_t>(back.size()) ||
                back != kCanary) {
                return "the reopened file does not read back";
            }
            return "";
        }
        return "RLIMIT_MEMLOCK did not bind";
    });
    EXPECT_EQ(verdict, "");
    unlink(existing.c_str());
}

TEST_P(LayerTest, ARetiredLayerFailsClosed) {
    const std::string file = fresh();
    const int fd = ec_open(file.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ec_write(fd, kCanary.data(), kCanary.size()), static_cast<ssize_t>(kCanary.size()));
    const auto open_before = counters().of(Category::Spill).files_open.load();
    retire();  // what the exit sequence does before the key goes
    EXPECT_EQ(counters().of(Category::Spill).files_open.load(), open_before - 1);
    char buffer[16];
    EXPECT_EQ(ec_pread(fd, buffer, sizeof(buffer), 0), -1);
    EXPECT_EQ(errno, EIO);
    EXPECT_EQ(ec_pwrite(fd, kCanary.data(), kCanary.size(), 0), -1);
    EXPECT_EQ(errno, EIO);
    EXPECT_EQ(ec_open(fresh().c_str(), O_RDWR | O_CREAT, 0600), -1);
    EXPECT_EQ(errno, EIO);
    ec_close(fd);
    EXPECT_EQ(counters().of(Category::Spill).files_open.load(), open_before - 1)
        << "the close after retire() counted the descriptor twice";
    EXPECT_EQ(slurp(file).find(kCanary), std::string::npos);
    unlink(file.c_str());
}

}  // namespace
}  // namespace ephemeral_crypt::interpose
