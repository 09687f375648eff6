// Path classification: every category's names, relative and absolute, in the
// default and in temp tablespaces, and the near misses that must pass through.
#include <gtest/gtest.h>

#include "interpose/path_classifier.hpp"

namespace ephemeral_crypt::interpose {
namespace {

const ClassifierRoots kRoots{"/var/lib/postgresql/15/main", ""};

std::optional<Category> C(const char* path) {
    return classify_path(path, kRoots);
}

TEST(PathClassifier, TempRelations) {
    EXPECT_EQ(C("base/16384/t3_16500"), Category::TempRelation);
    EXPECT_EQ(C("base/16384/t3_16500_fsm"), Category::TempRelation);
    EXPECT_EQ(C("base/16384/t3_16500_vm"), Category::TempRelation);
    EXPECT_EQ(C("base/16384/t3_16500_init"), Category::TempRelation);
    EXPECT_EQ(C("base/16384/t3_16500.2"), Category::TempRelation);
    EXPECT_EQ(C("base/16384/t12_16500_fsm.1"), Category::TempRelation);
    EXPECT_EQ(C("./base/16384/t3_16500"), Category::TempRelation);
    EXPECT_EQ(C("pg_tblspc/16390/PG_15_202209061/16384/t3_16500"), Category::TempRelation);
    EXPECT_EQ(C("/var/lib/postgresql/15/main/base/1/t3_99"), Category::TempRelation);
    EXPECT_EQ(C("/srv/tblspc/PG_15_202209061/16384/t3_16500"), Category::TempRelation);
}

TEST(PathClassifier, PersistentRelationsPassThrough) {
    EXPECT_EQ(C("base/16384/16500"), std::nullopt);
    EXPECT_EQ(C("base/16384/16500_fsm"), std::nullopt);
    EXPECT_EQ(C("base/16384/t3_16500_xx"), std::nullopt);
    EXPECT_EQ(C("base/16384/t3_"), std::nullopt);
    EXPECT_EQ(C("base/16384/tx_1"), std::nullopt);
    EXPECT_EQ(C("global/t3_1"), std::nullopt);
    EXPECT_EQ(C("base/t3_1"), std::nullopt);
    EXPECT_EQ(C("pg_tblspc/16390/PG_15_202209061/16384/16500"), std::nullopt);
}

TEST(PathClassifier, SpillFiles) {
    EXPECT_EQ(C("base/pgsql_tmp/pgsql_tmp1234.0"), Category::Spill);
    EXPECT_EQ(C("base/pgsql_tmp/pgsql_tmp1234.0.fileset/i1of2.p0.0"), Category::Spill);
    EXPECT_EQ(C("pg_tblspc/16390/PG_15_202209061/pgsql_tmp/pgsql_tmp77.3"), Category::Spill);
    EXPECT_EQ(C("/srv/tmpspace/PG_15_202209061/pgsql_tmp/pgsql_tmp77.3"), Category::Spill);
    EXPECT_EQ(C("pg_replslot/myslot/xid-1234-lsn-0-1000000.spill"), Category::Spill);
    EXPECT_EQ(C("/var/lib/postgresql/15/main/pg_replslot/s/xid-7-lsn-0-0.spill"), Category::Spill);
}

TEST(PathClassifier, SpillNearMisses) {
    EXPECT_EQ(C("base/pgsql_tmp"), std::nullopt);  // the directory itself
    EXPECT_EQ(C("pg_replslot/myslot/state"), std::nullopt);
    EXPECT_EQ(C("pg_logical/snapshots/0-1000.snap"), std::nullopt);
    EXPECT_EQ(C("somewhere/xid-1.spill"), std::nullopt);
}

TEST(PathClassifier, Wal) {
    EXPECT_EQ(C("pg_wal/000000010000000000000001"), Category::Wal);
    EXPECT_EQ(C("pg_wal/00000002000000A3000000FF.partial"), Category::Wal);
    EXPECT_EQ(C("pg_wal/xlogtemp.12345"), Category::Wal);
    EXPECT_EQ(C("/var/lib/postgresql/15/main/pg_wal/000000010000000000000001"), Category::Wal);
    ClassifierRoots relocated{"/data", "/fastdisk/wal"};
    EXPECT_EQ(classify_path("/fastdisk/wal/000000010000000000000001", relocated), Category::Wal);
}

TEST(PathClassifier, WalNearMisses) {
    EXPECT_EQ(C("pg_wal/00000002.history"), std::nullopt);
    EXPECT_EQ(C("pg_wal/000000010000000000000001.00000028.backup"), std::nullopt);
    EXPECT_EQ(C("pg_wal/archive_status/000000010000000000000001.ready"), std::nullopt);
    EXPECT_EQ(C("pg_wal/RECOVERYXLOG"), std::nullopt);
    EXPECT_EQ(C("pg_wal/00000001000000000000000g"), std::nullopt);
    EXPECT_EQ(C("pg_wal"), std::nullopt);
    EXPECT_EQ(C("/elsewhere/pg_wal/000000010000000000000001"), std::nullopt);
}

TEST(PathClassifier, EverythingElsePassesThrough) {
    EXPECT_EQ(C("global/pg_control"), std::nullopt);
    EXPECT_EQ(C("postgresql.auto.conf"), std::nullopt);
    EXPECT_EQ(C("/etc/passwd"), std::nullopt);
    EXPECT_EQ(C(""), std::nullopt);
    EXPECT_EQ(C("/"), std::nullopt);
    EXPECT_EQ(C("pg_stat_tmp/global.stat"), std::nullopt);
}

}  // namespace
}  // namespace ephemeral_crypt::interpose
