// The engine's WAL start-up work on a scratch pg_wal: listing and
// classifying segments, encrypting plaintext ones in place, and counting and
// removing those of a previous instance; and the sealed segment one instance
// leaves readable as it stops and the next one encrypts again.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "core/file_header.hpp"
#include "engine/errors.hpp"
#include "engine/sealed_segment.hpp"
#include "engine/wal_segments.hpp"
#include "engine_fixture.hpp"

namespace ephemeral_crypt::engine {
namespace {

using testing::EngineTest;
using testing::slurp;
using testing::spit;

constexpr char kSegment1[] = "000000010000000000000001";
constexpr char kSegment2[] = "000000010000000000000002";
constexpr char kPartial[] = "000000010000000000000003.partial";

// A plaintext segment: a recognisable page followed by zeros.
std::string plain_segment(const std::string& tag) {
    std::string bytes = "\x10\xd1WAL page of " + tag;
    bytes.resize(64 * 1024, '\0');
    bytes.replace(40000, tag.size(), tag);
    return bytes;
}

class WalSegmentsTest : public EngineTest {
  protected:
    std::string segment(const char* name) const { return wal_dir() + "/" + name; }
    std::vector<WalSegment> listed() const {
        auto segments = list_wal_segments(wal_dir(), instance_key());
        std::sort(segments.begin(), segments.end(),
                  [](const WalSegment& a, const WalSegment& b) { return a.path < b.path; });
        return segments;
    }
};

TEST_F(WalSegmentsTest, ListsSegmentsByHeaderAndIgnoresOtherFiles) {
    spit(segment(kSegment1), plain_segment("one"));
    write_through_layer(segment(kSegment2), plain_segment("two"));
    spit(segment(kPartial), plain_segment("partial"));
    spit(wal_dir() + "/00000002.history", "1\t0/3000000\tno recovery target specified\n");
    mkdir((wal_dir() + "/archive_status").c_str(), 0700);

    const std::vector<WalSegment> segments = listed();
    ASSERT_EQ(segments.size(), 3u);
    EXPECT_EQ(segments[0].path, segment(kSegment1));
    EXPECT_EQ(segments[0].kind, SegmentKind::Plaintext);
    EXPECT_EQ(segments[1].path, segment(kSegment2));
    EXPECT_EQ(segments[1].kind, SegmentKind::Current);
    EXPECT_EQ(segments[2].path, segment(kPartial));
    EXPECT_EQ(segments[2].kind, SegmentKind::Plaintext);
}

TEST_F(WalSegmentsTest, AnUnlistableDirectoryIsAnErrorWithItsErrno) {
    try {
        list_wal_segments(path("no_such_dir"), instance_key());
        FAIL() << "no error";
    } catch (const EngineError& e) {
        EXPECT_EQ(e.error_number(), ENOENT);
        EXPECT_NE(std::string(e.what()).find("no_such_dir"), std::string::npos);
    }
    EXPECT_EQ(find_foreign_segments(path("no_such_dir"), instance_key()).segments, 0);
}

TEST_F(WalSegmentsTest, PlaintextSegmentsAreEncryptedInPlaceAndReadBackUnchanged) {
    const std::string one = plain_segment("one");
    const std::string partial = plain_segment("partial");
    spit(segment(kSegment1), one);
    spit(segment(kPartial), partial);
    write_through_layer(segment(kSegment2), plain_segment("two"));

    EXPECT_EQ(encrypt_plaintext_segments(wal_dir(), instance_key()), 2);
    for (const char* name : {kSegment1, kPartial}) {
        const std::string raw = slurp(segment(name));
        EXPECT_TRUE(has_header(segment(name))) << name;
        EXPECT_EQ(raw.size(), kDataOffsetBytes + one.size()) << name;
        EXPECT_EQ(raw.find("WAL page of"), std::string::npos) << name;
    }
    EXPECT_EQ(read_through_layer(segment(kSegment1), one.size()), one);
    EXPECT_EQ(read_through_layer(segment(kPartial), partial.size()), partial);
    for (const WalSegment& listed_segment : listed()) {
        EXPECT_EQ(listed_segment.kind, SegmentKind::Current) << listed_segment.path;
    }
    // No temporary file is left, and a second pass has nothing to do.
    EXPECT_EQ(
        access((wal_dir() + "/xlogtemp.ephemeral_crypt." + std::to_string(getpid())).c_str(), F_OK),
        -1);
    EXPECT_EQ(encrypt_plaintext_segments(wal_dir(), instance_key()), 0);
}

TEST_F(WalSegmentsTest, APreviousInstancesSegmentsAreFoundAndRemoved) {
    write_through_layer(segment(kSegment1), plain_segment("one"));
    write_through_layer(segment(kSegment2), plain_segment("two"));
    const std::string old_key = instance_key()->id_hex();
    start();  // a restart: the key that wrote them is gone
    spit(segment(kPartial), plain_segment("partial"));

    const ForeignWal foreign = find_foreign_segments(wal_dir(), instance_key());
    EXPECT_EQ(foreign.segments, 2);
    EXPECT_EQ(foreign.first_key_id, old_key);
    EXPECT_EQ(remove_foreign_segments(wal_dir(), instance_key()), 2);
    EXPECT_EQ(access(segment(kSegment1).c_str(), F_OK), -1);
    EXPECT_EQ(access(segment(kSegment2).c_str(), F_OK), -1);
    EXPECT_EQ(access(segment(kPartial).c_str(), F_OK), 0);  // plaintext is not foreign
    EXPECT_EQ(find_foreign_segments(wal_dir(), instance_key()).segments, 0);
}

TEST_F(WalSegmentsTest, ASealedStopRemovesEveryEncryptedSegmentAndKeepsPlaintext) {
    write_through_layer(segment(kSegment1), plain_segment("previous"));
    start();  // kSegment1 is now a previous instance's
    write_through_layer(segment(kSegment2), plain_segment("current"));
    spit(segment(kPartial), plain_segment("sealed"));
    EXPECT_EQ(remove_encrypted_segments(wal_dir(), instance_key()), 2);
    EXPECT_EQ(access(segment(kSegment1).c_str(), F_OK), -1);
    EXPECT_EQ(access(segment(kSegment2).c_str(), F_OK), -1);
    EXPECT_EQ(slurp(segment(kPartial)), plain_segment("sealed"));
}

TEST_F(WalSegmentsTest, AConversionThatCannotWriteFailsWithItsErrnoAndKeepsTheSegment) {
    const std::string one = plain_segment("one");
    spit(segment(kSegment1), one);
    // A directory where the temporary file must go: creating it fails (EISDIR).
    const std::string temp = wal_dir() + "/xlogtemp.ephemeral_crypt." + std::to_string(getpid());
    ASSERT_EQ(mkdir(temp.c_str(), 0700), 0);
    try {
        encrypt_plaintext_segments(wal_dir(), instance_key());
        ADD_FAILURE() << "no error";
    } catch (const EngineError& e) {
        EXPECT_EQ(e.error_number(), EISDIR);
        EXPECT_NE(std::string(e.what()).find(kSegment1), std::string::npos) << e.what();
    }
    EXPECT_EQ(slurp(segment(kSegment1)), one);
    rmdir(temp.c_str());
}

class SealedSegmentTest : public WalSegmentsTest {};

TEST_F(SealedSegmentTest, TheCheckpointIsLeftInPlaintextAndTheNextInstanceEncryptsIt) {
    // A segment whose first record (at 40, after the long page header) is a
    // 114-byte checkpoint record; the rest of the segment is other records,
    // which must not be left readable.
    std::string bytes(8192, '\0');
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        bytes[i] = static_cast<char>('a' + i % 26);
    }
    const std::uint32_t record_length = 114;
    std::memcpy(bytes.data() + 40, &record_length, sizeof(record_length));
    write_through_layer(segment(kSegment1), bytes);

    leave_checkpoint_readable(segment(kSegment1), 40, 16384);
    std::string expected = bytes.substr(0, 40 + record_length);
    expected.resize(16384, '\0');  // the rest reads as zeros, like a fresh segment
    EXPECT_EQ(slurp(segment(kSegment1)), expected) << "exactly the checkpoint, in plaintext";
    EXPECT_EQ(
        access((segment(kSegment1) + ".ephemeral_crypt." + std::to_string(getpid())).c_str(), F_OK),
        -1);
    std::uint8_t start_bytes[8192];
    ASSERT_EQ(read_plaintext_start(segment(kSegment1), start_bytes, sizeof(start_bytes)),
              sizeof(start_bytes));
    EXPECT_EQ(std::memcmp(start_bytes, expected.data(), sizeof(start_bytes)), 0);

    start();  // the next instance: a new key
    EXPECT_EQ(listed().at(0).kind, SegmentKind::Plaintext);
    EXPECT_EQ(encrypt_plaintext_segments(wal_dir(), instance_key()), 1);
    EXPECT_EQ(listed().at(0).kind, SegmentKind::Current);
    EXPECT_EQ(read_through_layer(segment(kSegment1), 16384), expected);
    EXPECT_EQ(read_plaintext_start(segment(kSegment1), start_bytes, sizeof(start_bytes)), 0u)
        << "an encrypted segment has no plaintext start";
}

TEST_F(SealedSegmentTest, ACheckpointRecordThatDoesNotFitIsNotLeft) {
    std::string bytes(4096, 'x');
    const std::uint32_t record_length = 9000;  // past one WAL page
    std::memcpy(bytes.data() + 40, &record_length, sizeof(record_length));
    write_through_layer(segment(kSegment1), bytes);
    const std::string before = slurp(segment(kSegment1));
    EXPECT_THROW(leave_checkpoint_readable(segment(kSegment1), 40, 16384), EngineError);
    EXPECT_EQ(slurp(segment(kSegment1)), before) << "the encrypted segment is untouched";
    try {
        leave_checkpoint_readable(segment(kSegment2), 40, 16384);
        ADD_FAILURE() << "no error";
    } catch (const EngineError& e) {
        EXPECT_EQ(e.error_number(), ENOENT);  // the segment does not exist
    }
    std::uint8_t start_bytes[64];
    EXPECT_EQ(read_plaintext_start(segment(kSegment2), start_bytes, sizeof(start_bytes)), 0u);
}

}  // namespace
}  // namespace ephemeral_crypt::engine
