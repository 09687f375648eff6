// File inspection and the scan on a scratch data directory: what is
// reported for encrypted, plaintext, foreign and empty files, and the path
// containment rules (empty, "..", outside, symbolic-link escape, missing, not
// a regular file, and tablespaces reached through pg_tblspc).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "engine/inspection.hpp"
#include "engine_fixture.hpp"

namespace ephemeral_crypt::engine {
namespace {

using testing::EngineTest;
using testing::slurp;
using testing::spit;

class InspectionTest : public EngineTest {
  protected:
    Inspection inspect(const std::string& requested) {
        return inspect_file(requested, interpose::config().roots, instance_key());
    }
    std::vector<FileReport> scan() {
        return scan_data_directory(interpose::config().roots, instance_key());
    }
};

TEST_F(InspectionTest, AnEncryptedFileIsReportedFromItsHeader) {
    write_through_layer(path("base/pgsql_tmp/pgsql_tmp1.0"), std::string(10000, 's'));
    const Inspection result = inspect("base/pgsql_tmp/pgsql_tmp1.0");
    ASSERT_EQ(result.problem, PathProblem::None) << result.message;
    const FileReport& report = result.report;
    EXPECT_EQ(report.path, "base/pgsql_tmp/pgsql_tmp1.0");
    EXPECT_EQ(report.category, Category::Spill);
    EXPECT_TRUE(report.has_header);
    EXPECT_EQ(report.header_status, "ok");
    EXPECT_TRUE(report.encrypted);
    EXPECT_FALSE(report.plaintext_audit);
    EXPECT_EQ(report.key_id, instance_key()->id_hex());
    EXPECT_TRUE(report.current_instance);
    EXPECT_EQ(report.physical_size, static_cast<std::int64_t>(kDataOffsetBytes + 10000));
    EXPECT_EQ(report.logical_size, 10000);
}

TEST_F(InspectionTest, PlaintextForeignAndEmptyFilesAreToldApart) {
    spit(path("global_like_file"), "plain bytes");
    write_through_layer(path("base/1/t3_16384"), "temp relation page");
    const std::string old_key = instance_key()->id_hex();
    start();  // the relation file now belongs to a previous instance
    spit(path("base/pgsql_tmp/pgsql_tmp2.0"), "");

    const FileReport plain = inspect("global_like_file").report;
    EXPECT_FALSE(plain.category.has_value());
    EXPECT_EQ(plain.header_status, "not_ours");
    EXPECT_FALSE(plain.has_header);
    EXPECT_FALSE(plain.encrypted);
    EXPECT_EQ(plain.logical_size, plain.physical_size);

    const FileReport foreign = inspect("base/1/t3_16384").report;
    EXPECT_EQ(foreign.category, Category::TempRelation);
    EXPECT_EQ(foreign.header_status, "foreign_instance");
    EXPECT_TRUE(foreign.encrypted);
    EXPECT_FALSE(foreign.current_instance);
    EXPECT_EQ(foreign.key_id, old_key);

    EXPECT_EQ(inspect("base/pgsql_tmp/pgsql_tmp2.0").report.header_status, "empty");
}

TEST_F(InspectionTest, AnAbsolutePathInsideIsShownRelative) {
    write_through_layer(path("pg_wal/000000010000000000000001"), "wal");
    const Inspection result = inspect(path("pg_wal/000000010000000000000001"));
    ASSERT_EQ(result.problem, PathProblem::None) << result.message;
    EXPECT_EQ(result.report.path, "pg_wal/000000010000000000000001");
    EXPECT_EQ(result.report.category, Category::Wal);
}

TEST_F(InspectionTest, PathsOutsideTheRootsAreRefused) {
    EXPECT_EQ(inspect("").problem, PathProblem::Empty);
    EXPECT_EQ(inspect("../x").problem, PathProblem::Traversal);
    EXPECT_EQ(inspect("base/../global/pg_control").problem, PathProblem::Traversal);
    EXPECT_EQ(inspect("base/..").problem, PathProblem::Traversal);
    const Inspection outside = inspect("/etc/passwd");
    EXPECT_EQ(outside.problem, PathProblem::Outside);
    EXPECT_EQ(outside.message, "the path is outside the data directory and its tablespaces");

    ASSERT_EQ(symlink("/etc", path("base/escape").c_str()), 0);
    const Inspection escape = inspect("base/escape/passwd");
    EXPECT_EQ(escape.problem, PathProblem::Outside);
    EXPECT_NE(escape.message.find("symbolic link"), std::string::npos);

    const Inspection missing = inspect("base/999/nonexistent");
    EXPECT_EQ(missing.problem, PathProblem::Missing);
    EXPECT_EQ(missing.message, "no such file");
    EXPECT_EQ(inspect("base").problem, PathProblem::NotRegular);
    // A name that merely contains dots is not a parent reference.
    spit(path("base/..hidden"), "x");
    EXPECT_EQ(inspect("base/..hidden").problem, PathProblem::None);
}

TEST_F(InspectionTest, TablespacesReachedThroughPgTblspcAreInside) {
    char tmpl[] = "/tmp/ec-engine-tblspc-XXXXXX";
    const std::string location = mkdtemp(tmpl);
    ASSERT_EQ(symlink(location.c_str(), path("pg_tblspc/16500").c_str()), 0);
    const std::string version_dir = location + "/PG_15_202209061";
    mkdir(version_dir.c_str(), 0700);
    mkdir((version_dir + "/pgsql_tmp").c_str(), 0700);
    mkdir((version_dir + "/5").c_str(), 0700);
    write_through_layer(version_dir + "/pgsql_tmp/pgsql_tmp9.0", "spilled");
    write_through_layer(version_dir + "/5/t4_16600", "temp relation");

    const Inspection absolute = inspect(version_dir + "/pgsql_tmp/pgsql_tmp9.0");
    ASSERT_EQ(absolute.problem, PathProblem::None) << absolute.message;
    EXPECT_EQ(absolute.report.category, Category::Spill);
    EXPECT_TRUE(absolute.report.encrypted);

    const std::vector<FileReport> found = scan();
    std::vector<std::string> paths;
    for (const FileReport& report : found) {
        paths.push_back(report.path);
        EXPECT_TRUE(report.encrypted) << report.path;
    }
    EXPECT_EQ(paths, (std::vector<std::string>{"pg_tblspc/16500/PG_15_202209061/5/t4_16600",
                                               "pg_tblspc/16500/PG_15_202209061/pgsql_tmp/"
                                               "pgsql_tmp9.0"}));
    const std::string cmd = "rm -rf '" + location + "'";
    (void)std::system(cmd.c_str());
}

TEST_F(InspectionTest, TheScanListsEveryCategoryFileAndNothingElse) {
    write_through_layer(path("base/pgsql_tmp/pgsql_tmp1.0"), "spill");
    write_through_layer(path("base/1/t3_16384"), "temp");
    write_through_layer(path("pg_wal/000000010000000000000001"), "wal");
    mkdir(path("pg_replslot/s").c_str(), 0700);
    write_through_layer(path("pg_replslot/s/xid-900-lsn-0-1000000.spill"), "decoded");
    spit(path("base/1/16384"), "a persistent relation");
    spit(path("pg_wal/00000002.history"), "history");
    spit(path("pg_replslot/s/state"), "slot state");

    std::vector<std::string> paths;
    for (const FileReport& report : scan()) {
        paths.push_back(report.path);
        EXPECT_TRUE(report.encrypted && report.current_instance) << report.path;
    }
    EXPECT_EQ(paths, (std::vector<std::string>{"base/1/t3_16384", "base/pgsql_tmp/pgsql_tmp1.0",
                                               "pg_wal/000000010000000000000001",
                                               "pg_replslot/s/xid-900-lsn-0-1000000.spill"}));
}

}  // namespace
}  // namespace ephemeral_crypt::engine
