// What the authenticated format (v2, AES-256-GCM) detects, one test per
// claim of the table in docs/formats.md ("What is detected, and where"),
// and what it does not, asserted as such so a change in either direction is
// noticed: tampering with each field of a unit
// and its entry, units moved within and between files, units zeroed with
// their entries, rollback, truncation, the nonce drawn fresh for every write,
// the nonce limit, and that the caller is never handed an unauthenticated
// byte.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "core/authenticated_units.hpp"
#include "core/encrypted_file.hpp"
#include "core/nonce_source.hpp"
#include "memory_io.hpp"

namespace ephemeral_crypt {
namespace {

using testing::MemoryIo;

constexpr std::size_t kUnit = kDataUnitBytes;

// A v2 file of `units` units of distinct plaintext, written by `writer`;
// `reader` opens the same bytes afresh, as a process that did not write them.
struct Gcm {
    std::unique_ptr<InstanceKey> key = InstanceKey::generate();
    MemoryIo io;
    std::unique_ptr<EncryptedFile> writer;
    std::vector<std::uint8_t> plain;

    explicit Gcm(std::size_t units = 4, std::size_t tail = 0) {
        writer =
            EncryptedFile::create(io, *key, Category::Spill, FileCipher::Aes256Gcm, false).file;
        plain.resize(units * kUnit + tail);
        for (std::size_t i = 0; i < plain.size(); ++i) {
            plain[i] = static_cast<std::uint8_t>('a' + (i / kUnit) % 26 + (i % 7));
        }
        EXPECT_EQ(writer->pwrite(io, plain.data(), plain.size(), 0),
                  static_cast<std::int64_t>(plain.size()));
    }

    std::unique_ptr<EncryptedFile> reader() {
        auto outcome = EncryptedFile::open(io, *key);
        EXPECT_EQ(outcome.status, HeaderStatus::Ok);
        return std::move(outcome.file);
    }

    DataLayout layout() const { return DataLayout::grouped(); }
    std::uint8_t* data_of(std::uint64_t unit) {
        return io.bytes.data() +
               layout().physical_position(static_cast<std::int64_t>(unit * kUnit));
    }
    std::uint8_t* entry_of(std::uint64_t unit) {
        return io.bytes.data() + layout().entry_offset(unit);
    }

    // Reads unit `unit` through `file`: 0 and the plaintext, or the error
    // and, in `why` when given, what the read said about it.
    std::int64_t read_unit(EncryptedFile& file, std::uint64_t unit, std::vector<std::uint8_t>* out,
                           UnitFailure* why = nullptr) {
        out->assign(kUnit, 0xee);
        return file.pread(io, out->data(), kUnit, unit * kUnit, why);
    }
    std::vector<std::uint8_t> expected(std::uint64_t unit) const {
        return {plain.begin() + static_cast<std::ptrdiff_t>(unit * kUnit),
                plain.begin() + static_cast<std::ptrdiff_t>((unit + 1) * kUnit)};
    }
};

// Both the writer and a fresh reader refuse the unit; the failing read names
// it and gives a reason.
void expect_refused_by_everyone(Gcm& g, std::uint64_t unit) {
    std::vector<std::uint8_t> out;
    UnitFailure writer_why;
    EXPECT_EQ(g.read_unit(*g.writer, unit, &out, &writer_why), kIntegrityFailure);
    EXPECT_EQ(writer_why.unit, static_cast<std::int64_t>(unit));
    EXPECT_NE(writer_why.reason, nullptr);
    auto reader = g.reader();
    UnitFailure why;
    EXPECT_EQ(g.read_unit(*reader, unit, &out, &why), kIntegrityFailure);
    EXPECT_EQ(why.unit, static_cast<std::int64_t>(unit));
    EXPECT_NE(why.reason, nullptr);
}

TEST(AuthenticatedFile, IntactUnitsReadBackForWriterAndReader) {
    Gcm g;
    std::vector<std::uint8_t> out;
    for (std::uint64_t unit = 0; unit < 4; ++unit) {
        UnitFailure why;
        ASSERT_EQ(g.read_unit(*g.writer, unit, &out, &why), static_cast<std::int64_t>(kUnit));
        EXPECT_EQ(out, g.expected(unit));
        EXPECT_EQ(why.unit, -1) << "a read that succeeds names no failure";
        EXPECT_EQ(why.reason, nullptr);
    }
    auto reader = g.reader();
    for (std::uint64_t unit = 0; unit < 4; ++unit) {
        ASSERT_EQ(g.read_unit(*reader, unit, &out), static_cast<std::int64_t>(kUnit));
        EXPECT_EQ(out, g.expected(unit));
    }
}

TEST(AuthenticatedFile, AChangedByteOfDataIsDetected) {
    for (const std::size_t at : {std::size_t{0}, std::size_t{1000}, kUnit - 1}) {
        Gcm g;
        g.data_of(2)[at] ^= 0x01;
        expect_refused_by_everyone(g, 2);
    }
}

TEST(AuthenticatedFile, AChangedByteOfNonceOrTagIsDetected) {
    for (std::size_t at = 0; at < kGcmNonceBytes + kGcmTagBytes; ++at) {
        Gcm g;
        g.entry_of(1)[at] ^= 0x40;
        expect_refused_by_everyone(g, 1);
    }
}

TEST(AuthenticatedFile, AChangedKindOrReservedByteIsDetected) {
    for (std::size_t at = kGcmNonceBytes + kGcmTagBytes; at < kEntryBytes; ++at) {
        for (const std::uint8_t value : {std::uint8_t{0}, std::uint8_t{2}, std::uint8_t{7}}) {
            Gcm g;
            if (g.entry_of(3)[at] == value) {
                continue;
            }
            g.entry_of(3)[at] = value;
            expect_refused_by_everyone(g, 3);
        }
    }
}

// A short last unit: its length is authenticated, so a file cut inside it
// fails for everyone.
TEST(AuthenticatedFile, ACutInsideTheLastUnitIsDetected) {
    Gcm g(2, 300);
    g.io.bytes.resize(g.io.bytes.size() - 100);
    auto reader = g.reader();
    EXPECT_EQ(reader->size(), 2 * kUnit + 200);
    std::vector<std::uint8_t> out(200);
    UnitFailure why;
    EXPECT_EQ(reader->pread(g.io, out.data(), out.size(), 2 * kUnit, &why), kIntegrityFailure);
    EXPECT_EQ(why.unit, 2);
    EXPECT_NE(why.reason, nullptr);
}

TEST(AuthenticatedFile, AUnitMovedWithinTheFileIsDetected) {
    Gcm g;
    // Unit 3's data and entry copied over unit 1's: valid GCM, wrong place.
    std::memcpy(g.data_of(1), g.data_of(3), kUnit);
    std::memcpy(g.entry_of(1), g.entry_of(3), kEntryBytes);
    expect_refused_by_everyone(g, 1);
}

TEST(AuthenticatedFile, AUnitMovedBetweenFilesIsDetected) {
    Gcm a, b;
    // The same instance key: b's unit 2, entry and all, put in a's place 2.
    b.key = nullptr;
    auto outcome =
        EncryptedFile::create(b.io, *a.key, Category::Spill, FileCipher::Aes256Gcm, false);
    ASSERT_TRUE(outcome.file);
    ASSERT_EQ(outcome.file->pwrite(b.io, b.plain.data(), b.plain.size(), 0),
              static_cast<std::int64_t>(b.plain.size()));
    std::memcpy(a.data_of(2), b.data_of(2), kUnit);
    std::memcpy(a.entry_of(2), b.entry_of(2), kEntryBytes);
    expect_refused_by_everyone(a, 2);
}

// Rollback: the unit and entry of an earlier write put back. The writer
// remembers what it last sealed and refuses; a process that only reads the
// file has nothing to compare with and accepts the older version.
TEST(AuthenticatedFile, RollbackIsDetectedByTheWriterOnly) {
    Gcm g;
    std::vector<std::uint8_t> old_data(g.data_of(1), g.data_of(1) + kUnit);
    std::vector<std::uint8_t> old_entry(g.entry_of(1), g.entry_of(1) + kEntryBytes);
    std::vector<std::uint8_t> newer(kUnit, 'N');
    ASSERT_EQ(g.writer->pwrite(g.io, newer.data(), kUnit, kUnit), static_cast<std::int64_t>(kUnit));
    std::memcpy(g.data_of(1), old_data.data(), kUnit);
    std::memcpy(g.entry_of(1), old_entry.data(), kEntryBytes);

    std::vector<std::uint8_t> out;
    UnitFailure why;
    EXPECT_EQ(g.read_unit(*g.writer, 1, &out, &why), kIntegrityFailure);
    EXPECT_EQ(why.unit, 1);
    ASSERT_NE(why.reason, nullptr);
    EXPECT_NE(std::string(why.reason).find("rolled back"), std::string::npos) << why.reason;
    auto reader = g.reader();
    ASSERT_EQ(g.read_unit(*reader, 1, &out), static_cast<std::int64_t>(kUnit));
    EXPECT_EQ(out, g.expected(1)) << "a reader that did not write the file sees the old version";
}

// A written unit and its entry both set to zero look like a hole. The
// writer knows it wrote the unit and refuses; a reader sees zeros.
TEST(AuthenticatedFile, AZeroedUnitAndEntryAreDetectedByTheWriterOnly) {
    Gcm g;
    std::memset(g.data_of(2), 0, kUnit);
    std::memset(g.entry_of(2), 0, kEntryBytes);
    std::vector<std::uint8_t> out;
    EXPECT_EQ(g.read_unit(*g.writer, 2, &out), kIntegrityFailure);
    auto reader = g.reader();
    ASSERT_EQ(g.read_unit(*reader, 2, &out), static_cast<std::int64_t>(kUnit));
    EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](std::uint8_t b) { return b == 0; }));
}

// Zeroing only one of the two is detected by everyone.
TEST(AuthenticatedFile, AZeroedEntryOrZeroedDataAloneIsDetected) {
    Gcm a;
    std::memset(a.entry_of(2), 0, kEntryBytes);
    expect_refused_by_everyone(a, 2);
    Gcm b;
    std::memset(b.data_of(2), 0, kUnit);
    expect_refused_by_everyone(b, 2);
}

// Whole units cut off the end: the writer knows the size it wrote; a
// reader takes the shorter file for the whole file.
TEST(AuthenticatedFile, TruncationAtAUnitBoundaryIsDetectedByTheWriterOnly) {
    Gcm g;
    g.io.bytes.resize(static_cast<std::size_t>(g.layout().physical_size(2 * kUnit)));
    std::vector<std::uint8_t> out(4 * kUnit);
    UnitFailure why;
    EXPECT_EQ(g.writer->pread(g.io, out.data(), out.size(), 0, &why), kIntegrityFailure);
    EXPECT_EQ(why.unit, 2);
    ASSERT_NE(why.reason, nullptr);
    EXPECT_NE(std::string(why.reason).find("truncated"), std::string::npos) << why.reason;
    // Reading past what the writer knows triggers a look at the disk, which
    // is refused too.
    EXPECT_EQ(g.writer->pread(g.io, out.data(), out.size(), 3 * kUnit + 100), kIntegrityFailure);
    auto reader = g.reader();
    EXPECT_EQ(reader->size(), 2 * kUnit);
    EXPECT_EQ(reader->pread(g.io, out.data(), out.size(), 0), static_cast<std::int64_t>(2 * kUnit));
}

// A truncate into the middle of an extent leaves that extent's metadata on
// disk, several groups of it here: the entries of every unit it cut off are
// cleared, so when the file grows again over them, writer and reader alike
// read the skipped units as zeros rather than refusing them.
TEST(AuthenticatedFile, ATruncateClearsTheCutOffEntriesOfItsWholeExtent) {
    Gcm g(600);
    const std::uint64_t kept = 10 * kUnit + 5;
    ASSERT_EQ(g.writer->truncate(g.io, kept), 0);
    for (std::uint64_t unit = 11; unit < 600; ++unit) {
        const std::uint8_t* entry = g.entry_of(unit);
        ASSERT_TRUE(std::all_of(entry, entry + kEntryBytes, [](std::uint8_t b) { return b == 0; }))
            << "unit " << unit << "'s entry survived the truncate";
    }
    const std::vector<std::uint8_t> tail(kUnit, 'z');
    ASSERT_EQ(g.writer->pwrite(g.io, tail.data(), tail.size(), 500 * kUnit),
              static_cast<std::int64_t>(kUnit));
    auto reader = g.reader();
    for (EncryptedFile* file : {g.writer.get(), reader.get()}) {
        std::vector<std::uint8_t> out;
        ASSERT_EQ(g.read_unit(*file, 10, &out), static_cast<std::int64_t>(kUnit));
        EXPECT_TRUE(std::equal(out.begin(), out.begin() + 5, g.plain.begin() + 10 * kUnit));
        EXPECT_TRUE(std::all_of(out.begin() + 5, out.end(), [](std::uint8_t b) { return b == 0; }));
        for (const std::uint64_t unit : {11u, 127u, 128u, 300u, 499u}) {
            ASSERT_EQ(g.read_unit(*file, unit, &out), static_cast<std::int64_t>(kUnit))
                << "unit " << unit;
            EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](std::uint8_t b) { return b == 0; }))
                << "unit " << unit;
        }
        ASSERT_EQ(g.read_unit(*file, 500, &out), static_cast<std::int64_t>(kUnit));
        EXPECT_EQ(out, tail);
    }
}

// A write of zeros throughout is stored as zeros without cipher work, yet
// still authenticated: its entry says zeros and its tag covers that.
TEST(AuthenticatedFile, ZeroWritesAreStoredAsZerosAndStillAuthenticated) {
    Gcm g;
    const std::vector<std::uint8_t> zeros(2 * kUnit, 0);
    ASSERT_EQ(g.writer->pwrite(g.io, zeros.data(), zeros.size(), 4 * kUnit),
              static_cast<std::int64_t>(zeros.size()));
    EXPECT_TRUE(
        std::all_of(g.data_of(4), g.data_of(4) + kUnit, [](std::uint8_t b) { return b == 0; }));
    EXPECT_EQ(g.entry_of(4)[kGcmNonceBytes + kGcmTagBytes],
              static_cast<std::uint8_t>(UnitKind::Zeros));
    std::vector<std::uint8_t> out;
    auto reader = g.reader();
    ASSERT_EQ(g.read_unit(*reader, 4, &out), static_cast<std::int64_t>(kUnit));
    EXPECT_EQ(out, std::vector<std::uint8_t>(kUnit, 0));

    // Data put into a zeros unit, or a zeros entry forged onto another
    // unit, both fail.
    Gcm h;
    ASSERT_EQ(h.writer->pwrite(h.io, zeros.data(), zeros.size(), 4 * kUnit),
              static_cast<std::int64_t>(zeros.size()));
    std::memcpy(h.data_of(4), h.data_of(0), kUnit);
    expect_refused_by_everyone(h, 4);
    std::memcpy(h.entry_of(1), h.entry_of(5), kEntryBytes);
    std::memset(h.data_of(1), 0, kUnit);
    expect_refused_by_everyone(h, 1);
}

// A reader keeps the last metadata block it read. When another process
// rewrites a unit, the reader's cached entry no longer fits the data; the
// entry is read again from disk before the unit is refused, so the reader
// gets the new unit, and a unit whose data changed on disk still fails.
TEST(AuthenticatedFile, AStaleCachedEntryNeverRefusesAGoodUnit) {
    Gcm g;
    auto reader = g.reader();
    std::vector<std::uint8_t> out;
    ASSERT_EQ(g.read_unit(*reader, 1, &out), static_cast<std::int64_t>(kUnit));
    auto other = g.reader();  // another process's engine on the same file
    std::vector<std::uint8_t> newer(kUnit, 'Z');
    ASSERT_EQ(other->pwrite(g.io, newer.data(), kUnit, kUnit), static_cast<std::int64_t>(kUnit));
    ASSERT_EQ(g.read_unit(*reader, 2, &out),
              static_cast<std::int64_t>(kUnit));  // same group, cached
    UnitFailure stale;
    ASSERT_EQ(g.read_unit(*reader, 1, &out, &stale), static_cast<std::int64_t>(kUnit));
    EXPECT_EQ(out, newer);
    EXPECT_EQ(stale.unit, -1) << "the cached entry's failure is not handed back";
    EXPECT_EQ(stale.reason, nullptr);
    g.data_of(3)[7] ^= 1;
    UnitFailure why;
    EXPECT_EQ(g.read_unit(*reader, 3, &out, &why), kIntegrityFailure);
    EXPECT_EQ(why.unit, 3);
    EXPECT_NE(why.reason, nullptr);
}

TEST(AuthenticatedFile, EveryWriteOfAUnitTakesAFreshNonce) {
    Gcm g(1);
    std::set<std::string> nonces;
    nonces.insert(std::string(reinterpret_cast<char*>(g.entry_of(0)), kGcmNonceBytes));
    for (int i = 0; i < 200; ++i) {
        ASSERT_EQ(g.writer->pwrite(g.io, g.plain.data(), kUnit, 0),
                  static_cast<std::int64_t>(kUnit));
        nonces.insert(std::string(reinterpret_cast<char*>(g.entry_of(0)), kGcmNonceBytes));
    }
    EXPECT_EQ(nonces.size(), 201u) << "the same plaintext rewritten in place never reuses a nonce";
}

// A forked child draws other nonces than its parent does next, even though
// both start from the same memory.
TEST(NonceSource, AChildNeverRepeatsItsParentsNonces) {
    std::uint8_t warm[kGcmNonceBytes];
    ASSERT_TRUE(draw_nonce(warm));  // the parent's pool is now filled
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        std::uint8_t nonces[8][kGcmNonceBytes];
        for (auto& nonce : nonces) {
            draw_nonce(nonce);
        }
        const ssize_t n = write(fds[1], nonces, sizeof(nonces));
        _exit(n == static_cast<ssize_t>(sizeof(nonces)) ? 0 : 1);
    }
    std::uint8_t parent[8][kGcmNonceBytes], theirs[8][kGcmNonceBytes];
    for (auto& nonce : parent) {
        ASSERT_TRUE(draw_nonce(nonce));
    }
    ASSERT_EQ(read(fds[0], theirs, sizeof(theirs)), static_cast<ssize_t>(sizeof(theirs)));
    int status = 0;
    waitpid(child, &status, 0);
    close(fds[0]);
    close(fds[1]);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (const auto& ours : parent) {
        for (const auto& other : theirs) {
            EXPECT_NE(std::memcmp(ours, other, kGcmNonceBytes), 0);
        }
    }
}

TEST(AuthenticatedUnits, RefusesToSealBeyondTheNonceLimit) {
    std::uint8_t key[kGcmKeyBytes] = {1, 2, 3};
    std::array<std::uint8_t, kNonceBytes> file_nonce{};
    AuthenticatedUnits units(std::make_unique<GcmCipher>(key), file_nonce, /*nonce_limit=*/3);
    std::uint8_t plain[64] = {}, out[64], entry[kEntryBytes];
    plain[0] = 1;
    for (int i = 0; i < 3; ++i) {
        UnitFailure sealed;
        ASSERT_EQ(units.seal(0, plain, out, sizeof(plain), false, entry, &sealed), 0);
        EXPECT_EQ(sealed.reason, nullptr);
    }
    UnitFailure why;
    EXPECT_EQ(units.seal(5, plain, out, sizeof(plain), false, entry, &why), -EIO);
    EXPECT_EQ(why.unit, 5);
    ASSERT_NE(why.reason, nullptr);
    EXPECT_NE(std::string(why.reason).find("2^32"), std::string::npos);
    EXPECT_EQ(units.nonces_drawn(), 3u);
    EXPECT_EQ(AuthenticatedUnits::kNonceLimit, std::uint64_t{1} << 32);
}

// The plaintext of a unit whose tag was changed is exactly the original
// plaintext: if any of it were left in the caller's buffer, it would be
// found. Whole units are opened in place there, so this is the wipe.
TEST(AuthenticatedFile, NoUnauthenticatedByteIsLeftInTheCallersBuffer) {
    Gcm g(3);
    g.entry_of(1)[kGcmNonceBytes] ^= 0x01;  // the tag only: the data decrypts exactly
    for (const std::size_t offset : {std::size_t{0}, kUnit, kUnit + 100}) {
        auto reader = g.reader();
        std::vector<std::uint8_t> out(3 * kUnit, 0xee);
        ASSERT_EQ(reader->pread(g.io, out.data(), out.size() - offset, offset), kIntegrityFailure);
        const std::vector<std::uint8_t> secret = g.expected(1);
        const auto hit =
            std::search(out.begin(), out.end(), secret.begin() + 200, secret.begin() + 264);
        EXPECT_EQ(hit, out.end()) << "read at " << offset;
    }
}

// The layout keeps every data unit at its logical offset's 64 KiB alignment
// and puts each extent's 2048 entries, 16 groups of 128, in the 64 KiB
// before its units.
TEST(DataLayout, UnitsKeepTheirAlignmentBehindTheirExtentsMetadata) {
    const DataLayout layout = DataLayout::grouped();
    const std::uint64_t extent_bytes = kDataOffsetBytes + kUnitsPerExtent * kUnit;
    for (std::uint64_t unit = 0; unit < 2 * kUnitsPerExtent + 3 * kUnitsPerGroup; ++unit) {
        const std::int64_t data = layout.physical_position(static_cast<std::int64_t>(unit * kUnit));
        EXPECT_EQ(data % 65536, static_cast<std::int64_t>((unit * kUnit) % 65536));
        const std::uint64_t extent = unit / kUnitsPerExtent;
        const std::uint64_t metadata = kDataOffsetBytes + extent * extent_bytes;
        EXPECT_EQ(layout.entry_offset(unit), metadata + (unit % kUnitsPerExtent) * kEntryBytes);
        // A group's entries are one 4096-byte block, aligned.
        EXPECT_EQ(layout.entry_offset(unit / kUnitsPerGroup * kUnitsPerGroup) % kHeaderBytes, 0u);
        EXPECT_EQ(static_cast<std::uint64_t>(data),
                  metadata + kDataOffsetBytes + (unit % kUnitsPerExtent) * kUnit);
        EXPECT_EQ(layout.logical_position(data), static_cast<std::int64_t>(unit * kUnit));
    }
    for (std::int64_t logical = 0; logical < 3 * 2048 * 4096; logical += 40093) {
        EXPECT_EQ(layout.logical_size(layout.physical_size(logical)), logical);
        EXPECT_EQ(layout.logical_position(layout.physical_position(logical)), logical);
    }
    EXPECT_EQ(DataLayout::linear().physical_position(10), 65546);
    EXPECT_EQ(DataLayout::linear().logical_size(65536 + 77), 77);
    EXPECT_EQ(DataLayout::linear().logical_size(4096), 0);  // the header alone
}

}  // namespace
}  // namespace ephemeral_crypt
