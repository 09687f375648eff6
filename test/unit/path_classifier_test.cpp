// Path classification: every category's names, relative and absolute, in the
// default and in temp tablespaces, and the near misses that must pass through.
#include <gtest/gtest.h>

#include <initializer_list>
#include <optional>

#include "core/path_classifier.hpp"

namespace ephemeral_crypt::interpose {
namespace {

const ClassifierRoots kRoots{"/var/lib/postgresql/15/main", ""};

std::optional<Category> C(const char* path) {
    return classify_path(path, kRoots);
}

// Each path must classify as `expected`.
void expect_all(std::initializer_list<const char*> paths, std::optional<Category> expected) {
    for (const char* path : paths) {
        EXPECT_EQ(C(path), expected) << path;
    }
}

TEST(PathClassifier, TempRelations) {
    expect_all(
        {
            "base/16384/t3_16500",
            "base/16384/t3_16500_fsm",
            "base/16384/t3_16500_vm",
            "base/16384/t3_16500_init",
            "base/16384/t3_16500.2",
            "base/16384/t12_16500_fsm.1",
            "./base/16384/t3_16500",
            "pg_tblspc/16390/PG_15_202209061/16384/t3_16500",
            "/var/lib/postgresql/15/main/base/1/t3_99",
            "/srv/tblspc/PG_15_202209061/16384/t3_16500",
        },
        Category::TempRelation);
}

TEST(PathClassifier, PersistentRelationsPassThrough) {
    expect_all(
        {
            "base/16384/16500",
            "base/16384/16500_fsm",
            "base/16384/t3_16500_xx",
            "base/16384/t3_",
            "base/16384/tx_1",
            "global/t3_1",
            "base/t3_1",
            "pg_tblspc/16390/PG_15_202209061/16384/16500",
        },
        std::nullopt);
}

TEST(PathClassifier, SpillFiles) {
    expect_all(
        {
            "base/pgsql_tmp/pgsql_tmp1234.0",
            "base/pgsql_tmp/pgsql_tmp1234.0.fileset/i1of2.p0.0",
            "pg_tblspc/16390/PG_15_202209061/pgsql_tmp/pgsql_tmp77.3",
            "/srv/tmpspace/PG_15_202209061/pgsql_tmp/pgsql_tmp77.3",
            "pg_replslot/myslot/xid-1234-lsn-0-1000000.spill",
            "/var/lib/postgresql/15/main/pg_replslot/s/xid-7-lsn-0-0.spill",
        },
        Category::Spill);
}

TEST(PathClassifier, SpillNearMisses) {
    expect_all(
        {
            "base/pgsql_tmp",  // the directory itself
            "pg_replslot/myslot/state",
            "pg_logical/snapshots/0-1000.snap",
            "somewhere/xid-1.spill",
        },
        std::nullopt);
}

TEST(PathClassifier, Wal) {
    expect_all(
        {
            "pg_wal/000000010000000000000001",
            "pg_wal/00000002000000A3000000FF.partial",
            "pg_wal/xlogtemp.12345",
            "pg_wal/RECOVERYXLOG",
            "/var/lib/postgresql/15/main/pg_wal/000000010000000000000001",
        },
        Category::Wal);
    ClassifierRoots relocated{"/data", "/fastdisk/wal"};
    EXPECT_EQ(classify_path("/fastdisk/wal/000000010000000000000001", relocated), Category::Wal);
}

TEST(PathClassifier, WalNearMisses) {
    expect_all(
        {
            "pg_wal/00000002.history",
            "pg_wal/000000010000000000000001.00000028.backup",
            "pg_wal/archive_status/000000010000000000000001.ready",
            "pg_wal/RECOVERYHISTORY",
            "pg_wal/RECOVERYXLOG.partial",
            "pg_wal/00000001000000000000000g",
            "pg_wal",
            "/elsewhere/pg_wal/000000010000000000000001",
        },
        std::nullopt);
}

TEST(PathClassifier, EverythingElsePassesThrough) {
    expect_all(
        {
            "global/pg_control",
            "postgresql.auto.conf",
            "/etc/passwd",
            "",
            "/",
            "pg_stat_tmp/global.stat",
        },
        std::nullopt);
}

}  // namespace
}  // namespace ephemeral_crypt::interpose
