// archive_command and restore_command on encrypted WAL: where %p's expansion
// is found in a command and how it is rewritten (pure), and the system()
// wrapper on a scratch data directory, running real shell commands: the
// archive command reads plaintext under the segment's own name, a restored
// segment lands in pg_wal encrypted, the staged copy never outlives the
// command, and a staging directory that cannot serve fails the command in
// the way PostgreSQL must see it, with an event naming the setting.
#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "core/file_header.hpp"
#include "core/wal_command.hpp"
#include "interpose/wrappers.hpp"
#include "layer_fixture.hpp"
#include "test_support.hpp"

namespace ephemeral_crypt::interpose {
namespace {

using ephemeral_crypt::testing::slurp;

const char* const kSegment = "000000010000000000000003";

TEST(WalCommand, FindsTheSegmentArchiveCommandNames) {
    const auto found =
        find_wal_command("pgbackrest --stanza=main archive-push pg_wal/000000010000000000000003");
    ASSERT_TRUE(found);
    EXPECT_EQ(found->kind, WalCommandKind::Archive);
    EXPECT_EQ(found->name, kSegment);
    ASSERT_EQ(found->offsets.size(), 1u);
    EXPECT_EQ(found->offsets[0], 38u);
}

TEST(WalCommand, FindsEveryReferenceToTheSameFile) {
    const std::string command =
        "test ! -f /arch/000000010000000000000003 && cp \"pg_wal/000000010000000000000003\" "
        "/arch/000000010000000000000003 && sync 'pg_wal/000000010000000000000003'";
    const auto found = find_wal_command(command);
    ASSERT_TRUE(found);
    EXPECT_EQ(found->offsets.size(), 2u);
    EXPECT_EQ(rewrite_wal_command(command, *found, "/dev/shm/x/000000010000000000000003"),
              "test ! -f /arch/000000010000000000000003 && cp "
              "\"/dev/shm/x/000000010000000000000003\" /arch/000000010000000000000003 && sync "
              "'/dev/shm/x/000000010000000000000003'");
}

TEST(WalCommand, PartialSegmentsAreArchivedToo) {
    const auto found = find_wal_command("cp pg_wal/00000001000000000000000A.partial /a/%f");
    ASSERT_TRUE(found);
    EXPECT_EQ(found->kind, WalCommandKind::Archive);
    EXPECT_EQ(found->name, "00000001000000000000000A.partial");
}

TEST(WalCommand, FindsWhereRestoreCommandWrites) {
    const auto found = find_wal_command(
        "pgbackrest --stanza=main archive-get 000000010000000000000003 "
        "\"pg_wal/RECOVERYXLOG\"");
    ASSERT_TRUE(found);
    EXPECT_EQ(found->kind, WalCommandKind::Restore);
    EXPECT_EQ(found->name, "RECOVERYXLOG");
    const std::string copy = "cp /a/x pg_wal/RECOVERYXLOG";
    EXPECT_EQ(rewrite_wal_command(copy, *find_wal_command(copy), "/dev/shm/s/RECOVERYXLOG"),
              "cp /a/x /dev/shm/s/RECOVERYXLOG");
}

TEST(WalCommand, LeavesEverythingElseAlone) {
    for (const char* command : {
             "cp pg_wal/00000002.history /a/00000002.history",
             "cp pg_wal/RECOVERYHISTORY /x",
             "cp /mnt/pg_wal/000000010000000000000003 /a/",
             "cp old_pg_wal/000000010000000000000003 /a/",
             "ls pg_wal/archive_status/000000010000000000000003.ready",
             "cp pg_wal/000000010000000000000003.00000028.backup /a/",
             "pg_archivecleanup /arch 000000010000000000000003",
             "",
         }) {
        EXPECT_FALSE(find_wal_command(command)) << command;
    }
}

TEST(WalCommand, PgBackRestPushesAndFetchesEachSegmentItself) {
    const std::string push =
        "/usr/bin/pgbackrest --stanza=main archive-push pg_wal/" + std::string(kSegment);
    EXPECT_EQ(rewrite_wal_command(push, *find_wal_command(push), "/dev/shm/s/x"),
              "/usr/bin/pgbackrest --no-archive-async --stanza=main archive-push /dev/shm/s/x");
    const std::string get = "pgbackrest --stanza=main archive-get %f \"pg_wal/RECOVERYXLOG\"";
    EXPECT_EQ(rewrite_wal_command(get, *find_wal_command(get), "/dev/shm/s/RECOVERYXLOG"),
              "pgbackrest --no-archive-async --stanza=main archive-get %f "
              "\"/dev/shm/s/RECOVERYXLOG\"");
    // Other programs, and other pgBackRest commands, are left as they are.
    for (const std::string& command :
         {"barman-wal-archive backup main pg_wal/" + std::string(kSegment),
          "cp pg_wal/" + std::string(kSegment) + " /archive/pgbackrest/",
          "pgbackrest-wrapper archive-push pg_wal/" + std::string(kSegment)}) {
        const auto found = find_wal_command(command);
        ASSERT_TRUE(found) << command;
        EXPECT_EQ(rewrite_wal_command(command, *found, "/s").find("--no-archive-async"),
                  std::string::npos)
            << command;
    }
}

TEST(WalCommand, ShellSafePaths) {
    EXPECT_TRUE(is_shell_safe_path("/dev/shm"));
    EXPECT_TRUE(is_shell_safe_path("/run/postgresql/wal-stage_1.d"));
    EXPECT_FALSE(is_shell_safe_path("dev/shm"));
    EXPECT_FALSE(is_shell_safe_path("/dev/shm dir"));
    EXPECT_FALSE(is_shell_safe_path("/dev/$(reboot)"));
    EXPECT_FALSE(is_shell_safe_path(""));
}

// The system() wrapper. The server runs its commands from the data
// directory, so the tests do too.
class WalCommandLayerTest : public LayerTest {
  protected:
    void SetUp() override {
        LayerTest::SetUp();
        char staging[] = "/dev/shm/ec-unit-staging-XXXXXX";
        ASSERT_NE(mkdtemp(staging), nullptr);
        staging_ = staging;
        char archive[] = "/tmp/ec-unit-archive-XXXXXX";
        ASSERT_NE(mkdtemp(archive), nullptr);
        archive_ = archive;
        use_staging(staging_);
        ASSERT_NE(getcwd(previous_cwd_, sizeof(previous_cwd_)), nullptr);
        ASSERT_EQ(chdir(data_dir_.c_str()), 0);
        g_seen = SeenEvent{};
    }
    void TearDown() override {
        ASSERT_EQ(chdir(previous_cwd_), 0);
        EXPECT_EQ(entries(staging_), 0) << "a staged copy outlived its command";
        (void)std::system(("rm -rf '" + staging_ + "' '" + archive_ + "'").c_str());
        ::unlink(path(std::string("pg_wal/") + kSegment).c_str());
        ::unlink(path("pg_wal/RECOVERYXLOG").c_str());
        LayerTest::TearDown();
    }

    void use_staging(const std::string& directory) {
        LayerConfig changed = config();
        changed.wal_staging_dir = directory;
        configure(changed);
    }

    static int entries(const std::string& directory) {
        DIR* dir = opendir(directory.c_str());
        if (dir == nullptr) {
            return -1;
        }
        int count = 0;
        while (const dirent* entry = readdir(dir)) {
            count += std::string(entry->d_name) != "." && std::string(entry->d_name) != "..";
        }
        closedir(dir);
        return count;
    }

    // An encrypted WAL segment holding `text`, written through the layer.
    void write_encrypted_segment(const std::string& text) {
        const int fd =
            ec_open((std::string("pg_wal/") + kSegment).c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_TRUE(fd_is_tracked(fd, nullptr));
        ASSERT_EQ(ec_write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
        ASSERT_EQ(ec_close(fd), 0);
        ASSERT_EQ(slurp(path(std::string("pg_wal/") + kSegment)).find(kCanary), std::string::npos);
    }

    std::string staging_;
    std::string archive_;
    char previous_cwd_[4096] = {};
};

INSTANTIATE_TEST_SUITE_P(Ciphers, WalCommandLayerTest, ::testing::Values(FileCipher::Aes256Xts));

TEST_P(WalCommandLayerTest, ArchiveCommandReadsPlaintextUnderTheSegmentsName) {
    const std::string text = canary_text(100000);
    write_encrypted_segment(text);
    // The command records the name it was given, as pgBackRest and Barman
    // take the segment's name from %p's last component.
    const std::string command = std::string("basename pg_wal/") + kSegment + " > " + archive_ +
                                "/name && cp pg_wal/" + kSegment + " " + archive_ + "/" + kSegment;
    EXPECT_EQ(ec_system(command.c_str()), 0);
    EXPECT_EQ(slurp(archive_ + "/" + kSegment), text);
    EXPECT_EQ(slurp(archive_ + "/name"), std::string(kSegment) + "\n");
    EXPECT_EQ(g_seen.count, 0);
}

TEST_P(WalCommandLayerTest, WhatAKilledArchiverLeftIsRemovedByTheNextOne) {
    write_encrypted_segment(canary_text(5000));
    // The command leaves a copy of its staging directory behind, as a
    // process killed during its command would leave the directory itself.
    const std::string leave =
        std::string("d=$(dirname pg_wal/") + kSegment + ") && cp -r \"$d\" \"$d-left\"";
    EXPECT_EQ(ec_system(leave.c_str()), 0);
    EXPECT_EQ(entries(staging_), 1);
    const std::string command = std::string("test -f pg_wal/") + kSegment;
    EXPECT_EQ(ec_system(command.c_str()), 0);
    EXPECT_EQ(entries(staging_), 0) << "the next archive command removed the leftover";
}

TEST_P(WalCommandLayerTest, AFailingArchiveCommandKeepsItsStatus) {
    write_encrypted_segment(canary_text(5000));
    const std::string command = std::string("test -f pg_wal/") + kSegment + " && exit 3";
    const int status = ec_system(command.c_str());
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 3);
    EXPECT_EQ(g_seen.count, 0);
}

TEST_P(WalCommandLayerTest, AMissingStagingDirectoryFailsArchivingForARetry) {
    write_encrypted_segment(canary_text(5000));
    use_staging(staging_ + "/missing");
    const std::string command = std::string("cp pg_wal/") + kSegment + " " + archive_ + "/";
    const int status = ec_system(command.c_str());
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 1);
    EXPECT_EQ(g_seen.count, 1);
    EXPECT_EQ(g_seen.event, LayerEvent::StagingFailed);
    EXPECT_EQ(g_seen.path, std::string("pg_wal/") + kSegment);
    EXPECT_NE(g_seen.detail.find("ephemeral_crypt.wal_staging_directory is missing"),
              std::string::npos);
    EXPECT_EQ(entries(archive_), 0) << "the command must not have run";
}

TEST_P(WalCommandLayerTest, StagingOnADiskIsRefused) {
    write_encrypted_segment(canary_text(5000));
    struct statfs fs {};
    ASSERT_EQ(statfs(archive_.c_str(), &fs), 0);
    const bool memory = fs.f_type == 0x01021994 || fs.f_type == static_cast<long>(0x858458f6);
    use_staging(archive_);
    const std::string command = std::string("cp pg_wal/") + kSegment + " /dev/null";
    const int status = ec_system(command.c_str());
    if (memory) {
        EXPECT_EQ(status, 0);
        EXPECT_EQ(g_seen.count, 0);
    } else {
        ASSERT_TRUE(WIFEXITED(status));
        EXPECT_EQ(WEXITSTATUS(status), 1);
        EXPECT_EQ(g_seen.event, LayerEvent::StagingFailed);
        EXPECT_NE(g_seen.detail.find("not on a memory file system"), std::string::npos);
    }
    EXPECT_EQ(entries(archive_), 0) << "nothing may be left where plaintext would reach a disk";
}

TEST_P(WalCommandLayerTest, ARestoredSegmentLandsEncrypted) {
    const std::string text = canary_text(100000);
    {
        const int fd = ::open((archive_ + "/" + kSegment).c_str(), O_WRONLY | O_CREAT, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
        ::close(fd);
    }
    const std::string command = "cp " + archive_ + "/" + kSegment + " \"pg_wal/RECOVERYXLOG\"";
    EXPECT_EQ(ec_system(command.c_str()), 0);
    EXPECT_EQ(g_seen.count, 0);
    const std::string raw = slurp(path("pg_wal/RECOVERYXLOG"));
    EXPECT_EQ(raw.find(kCanary), std::string::npos) << "plaintext WAL reached pg_wal";
    EXPECT_EQ(raw.compare(0, sizeof(kHeaderMagic), kHeaderMagic, sizeof(kHeaderMagic)), 0);
    // What the startup process then sees: the segment's size and bytes.
    struct stat st {};
    ASSERT_EQ(ec_stat("pg_wal/RECOVERYXLOG", &st), 0);
    EXPECT_EQ(st.st_size, static_cast<off_t>(text.size()));
    const int fd = ec_open("pg_wal/RECOVERYXLOG", O_RDONLY);
    ASSERT_GE(fd, 0);
    std::string back(text.size(), '\0');
    EXPECT_EQ(ec_pread(fd, back.data(), back.size(), 0), static_cast<ssize_t>(text.size()));
    ASSERT_EQ(ec_close(fd), 0);
    EXPECT_EQ(back, text);
}

TEST_P(WalCommandLayerTest, ASegmentNotInTheArchiveLeavesNothing) {
    const int status = ec_system(("cp " + archive_ + "/absent pg_wal/RECOVERYXLOG").c_str());
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_NE(WEXITSTATUS(status), 0);
    EXPECT_EQ(access(path("pg_wal/RECOVERYXLOG").c_str(), F_OK), -1);
    EXPECT_EQ(g_seen.count, 0);
}

TEST_P(WalCommandLayerTest, AFailedRestoreStagingStopsRecoveryInsteadOfEndingIt) {
    use_staging(staging_ + "/missing");
    const int status = ec_system(("cp " + archive_ + "/x pg_wal/RECOVERYXLOG").c_str());
    // Above 125: PostgreSQL's startup process raises FATAL instead of taking
    // the segment for "not in the archive".
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_GT(WEXITSTATUS(status), 125);
    EXPECT_EQ(g_seen.event, LayerEvent::StagingFailed);
    EXPECT_EQ(access(path("pg_wal/RECOVERYXLOG").c_str(), F_OK), -1);
}

TEST_P(WalCommandLayerTest, CommandsWithoutWalRunUntouched) {
    const std::string out = archive_ + "/out";
    EXPECT_EQ(ec_system(("echo pg_wal/00000002.history > " + out).c_str()), 0);
    EXPECT_EQ(slurp(out), "pg_wal/00000002.history\n");
}

}  // namespace
}  // namespace ephemeral_crypt::interpose
