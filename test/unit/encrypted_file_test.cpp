// Engine tests, in both formats (AES-256-XTS, format v1; AES-256-GCM,
// format v2) unless a test is about one of them. The centrepiece is a
// model-based property test: random sequences of writes, reads, truncates
// and allocations on an encrypted file must behave byte for byte like the
// same sequence on a plain in-memory file. What the authenticated format
// detects is tested in authenticated_file_test.cpp.
#include <gtest/gtest.h>

#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "core/encrypted_file.hpp"
#include "memory_io.hpp"
#include "test_support.hpp"

// Allocation counting for the "no allocation on the aligned path" check:
// C++ allocations through operator new, OpenSSL's through its hooks.
namespace {
std::atomic<long> g_allocations{0};

void* counting_malloc(std::size_t n, const char*, int) {
    ++g_allocations;
    return std::malloc(n);
}
void* counting_realloc(void* p, std::size_t n, const char*, int) {
    ++g_allocations;
    return std::realloc(p, n);
}
void counting_free(void* p, const char*, int) {
    std::free(p);
}

const bool g_hooks_installed =
    CRYPTO_set_mem_functions(counting_malloc, counting_realloc, counting_free) == 1;
}  // namespace

// These replace the global allocation functions with malloc/free; GCC 12
// inlines them into std::vector and then takes the pair for a mismatch.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t n) {
    ++g_allocations;
    if (void* p = std::malloc(n ? n : 1)) {
        return p;
    }
    throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    ++g_allocations;
    return std::malloc(n ? n : 1);
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}

namespace ephemeral_crypt {
namespace {

using testing::MemoryIo;

struct Fixture {
    std::unique_ptr<InstanceKey> key = InstanceKey::generate();
    MemoryIo io;
    std::unique_ptr<EncryptedFile> file;

    explicit Fixture(FileCipher cipher = FileCipher::Aes256Xts, Category category = Category::Spill,
                     bool plaintext_audit = false) {
        auto outcome = EncryptedFile::create(io, *key, category, cipher, plaintext_audit);
        EXPECT_EQ(outcome.error, 0);
        file = std::move(outcome.file);
    }

    DataLayout layout() const { return file->layout(); }
    // What the disk must hold for a logical size.
    std::size_t physical_size(std::uint64_t logical) const {
        return static_cast<std::size_t>(layout().physical_size(static_cast<std::int64_t>(logical)));
    }

    void reopen() {
        auto outcome = EncryptedFile::open(io, *key);
        ASSERT_EQ(outcome.status, HeaderStatus::Ok);
        ASSERT_TRUE(outcome.file);
        file = std::move(outcome.file);
    }

    std::vector<std::uint8_t> read_all() {
        std::vector<std::uint8_t> out(file->size());
        EXPECT_EQ(file->pread(io, out.data(), out.size(), 0),
                  static_cast<std::int64_t>(out.size()));
        return out;
    }
};

bool contains(const std::vector<std::uint8_t>& haystack, const std::string& needle) {
    return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
           haystack.end();
}

// The tests that hold in both formats.
class EncryptedFileBoth : public ::testing::TestWithParam<FileCipher> {
  protected:
    Fixture f{GetParam()};
};

std::string cipher_label(const ::testing::TestParamInfo<FileCipher>& info) {
    return info.param == FileCipher::Aes256Gcm ? "Gcm" : "Xts";
}

INSTANTIATE_TEST_SUITE_P(Ciphers, EncryptedFileBoth,
                         ::testing::Values(FileCipher::Aes256Xts, FileCipher::Aes256Gcm),
                         cipher_label);

TEST_P(EncryptedFileBoth, NewFileHasOnlyAHeader) {
    EXPECT_EQ(f.io.bytes.size(), kHeaderBytes);
    EXPECT_EQ(f.file->size(), 0u);
    char buf[16];
    EXPECT_EQ(f.file->pread(f.io, buf, sizeof(buf), 0), 0);
}

TEST_P(EncryptedFileBoth, LogicalSizeFollowsTheLayout) {
    std::vector<std::uint8_t> data(10000, 0x41);
    ASSERT_EQ(f.file->pwrite(f.io, data.data(), data.size(), 123), 10000);
    EXPECT_EQ(f.file->size(), 10123u);
    // v1: the header's 64 KiB + data; v2: that, the extent's 64 KiB of
    // metadata, then the data.
    EXPECT_EQ(f.io.bytes.size(), kDataOffsetBytes + 10123 +
                                     (GetParam() == FileCipher::Aes256Gcm ? kDataOffsetBytes : 0));
    f.reopen();
    EXPECT_EQ(f.file->size(), 10123u);
}

// Across an extent boundary (2048 units), v2 adds the next extent's 64 KiB
// of metadata.
TEST_P(EncryptedFileBoth, LargeFilesKeepTheirSizeAcrossGroups) {
    std::vector<std::uint8_t> data(2050 * kDataUnitBytes + 5, 0x42);
    ASSERT_EQ(f.file->pwrite(f.io, data.data(), data.size(), 0),
              static_cast<std::int64_t>(data.size()));
    EXPECT_EQ(f.io.bytes.size(), f.physical_size(data.size()));
    EXPECT_EQ(f.io.bytes.size(),
              kDataOffsetBytes + data.size() +
                  (GetParam() == FileCipher::Aes256Gcm ? 2 * kDataOffsetBytes : 0));
    f.reopen();
    EXPECT_EQ(f.file->size(), data.size());
    EXPECT_EQ(f.read_all(), data);
}

TEST_P(EncryptedFileBoth, PhysicalBytesNeverContainThePlaintext) {
    const std::string canary = "EPHEMERAL-CANARY-7f3a9c-do-not-leak";
    std::string text;
    while (text.size() < 3 * kDataUnitBytes + 77) {
        text += canary;
    }
    // Aligned, unaligned, partial-unit and short-tail writes.
    ASSERT_GT(f.file->pwrite(f.io, text.data(), text.size(), 0), 0);
    ASSERT_GT(f.file->pwrite(f.io, canary.data(), canary.size(), 5000), 0);
    ASSERT_GT(f.file->pwrite(f.io, canary.data(), 9, text.size()), 0);
    EXPECT_FALSE(contains(f.io.bytes, canary));
    EXPECT_FALSE(contains(f.io.bytes, canary.substr(0, 12)));
    f.reopen();
    const auto all = f.read_all();
    EXPECT_TRUE(contains(all, canary));
}

TEST_P(EncryptedFileBoth, HolesAndTruncateExtensionsReadAsZeros) {
    const char tail[] = "tail-bytes";
    ASSERT_EQ(f.file->pwrite(f.io, tail, sizeof(tail), 10 * kDataUnitBytes + 5),
              static_cast<std::int64_t>(sizeof(tail)));
    std::vector<std::uint8_t> hole(10 * kDataUnitBytes + 5, 0xff);
    ASSERT_EQ(f.file->pread(f.io, hole.data(), hole.size(), 0),
              static_cast<std::int64_t>(hole.size()));
    EXPECT_TRUE(std::all_of(hole.begin(), hole.end(), [](std::uint8_t b) { return b == 0; }));

    const std::uint64_t before = f.file->size();
    ASSERT_EQ(f.file->truncate(f.io, before + 3 * kDataUnitBytes + 7), 0);
    std::vector<std::uint8_t> extension(3 * kDataUnitBytes + 7, 0xff);
    ASSERT_EQ(f.file->pread(f.io, extension.data(), extension.size(), before),
              static_cast<std::int64_t>(extension.size()));
    EXPECT_TRUE(
        std::all_of(extension.begin(), extension.end(), [](std::uint8_t b) { return b == 0; }));
    char check[sizeof(tail)];
    ASSERT_EQ(f.file->pread(f.io, check, sizeof(check), 10 * kDataUnitBytes + 5),
              static_cast<std::int64_t>(sizeof(check)));
    EXPECT_STREQ(check, tail);
}

bool physical_unit_is_zero(const Fixture& f, std::uint64_t unit, std::size_t len = kDataUnitBytes) {
    const auto begin =
        f.io.bytes.begin() + static_cast<std::ptrdiff_t>(f.layout().physical_position(
                                 static_cast<std::int64_t>(unit * kDataUnitBytes)));
    return std::all_of(begin, begin + static_cast<std::ptrdiff_t>(len),
                       [](std::uint8_t b) { return b == 0; });
}

// md.c extends relations with zero pages and WAL segments are pre-filled with
// zeros; such writes are stored as zeros and cost no cipher work (in v2 their
// entries still authenticate them: authenticated_file_test.cpp).
TEST_P(EncryptedFileBoth, WritesOfZerosAreStoredAsZerosAndReadBackAsZeros) {
    std::vector<std::uint8_t> data(8192, 0x5a);
    const std::vector<std::uint8_t> zeros(8192, 0);
    ASSERT_EQ(f.file->pwrite(f.io, data.data(), data.size(), 0), 8192);
    ASSERT_EQ(f.file->pwrite(f.io, zeros.data(), zeros.size(), 8192), 8192);  // an extension
    EXPECT_FALSE(physical_unit_is_zero(f, 0));
    EXPECT_TRUE(physical_unit_is_zero(f, 2));
    EXPECT_TRUE(physical_unit_is_zero(f, 3));
    ASSERT_EQ(f.file->pwrite(f.io, zeros.data(), kDataUnitBytes, 0),
              static_cast<std::int64_t>(kDataUnitBytes));
    EXPECT_TRUE(physical_unit_is_zero(f, 0));   // data overwritten with zeros
    EXPECT_FALSE(physical_unit_is_zero(f, 1));  // untouched data stays encrypted
    f.reopen();
    auto all = f.read_all();
    ASSERT_EQ(all.size(), 16384u);
    EXPECT_TRUE(std::all_of(all.begin(), all.begin() + kDataUnitBytes,
                            [](std::uint8_t b) { return b == 0; }));
    EXPECT_TRUE(std::all_of(all.begin() + kDataUnitBytes, all.begin() + 8192,
                            [](std::uint8_t b) { return b == 0x5a; }));
    EXPECT_TRUE(std::all_of(all.begin() + 8192, all.end(), [](std::uint8_t b) { return b == 0; }));
}

// A write of zeros that covers a unit only in part merges into that unit,
// which stays encrypted; the units it covers whole are stored as zeros.
TEST_P(EncryptedFileBoth, ZeroWritesOverPartsOfUnitsKeepTheRestOfThem) {
    const std::vector<std::uint8_t> data(3 * kDataUnitBytes, 0x5a);
    const std::vector<std::uint8_t> zeros(2 * kDataUnitBytes, 0);
    ASSERT_EQ(f.file->pwrite(f.io, data.data(), data.size(), 0),
              static_cast<std::int64_t>(data.size()));
    ASSERT_EQ(f.file->pwrite(f.io, zeros.data(), kDataUnitBytes + 100, 0),
              static_cast<std::int64_t>(kDataUnitBytes + 100));
    ASSERT_EQ(f.file->pwrite(f.io, zeros.data(), 50, 2 * kDataUnitBytes + 10), 50);
    EXPECT_TRUE(physical_unit_is_zero(f, 0));
    EXPECT_FALSE(physical_unit_is_zero(f, 1));
    EXPECT_FALSE(physical_unit_is_zero(f, 2));
    f.reopen();
    std::vector<std::uint8_t> expected = data;
    std::fill(expected.begin(), expected.begin() + kDataUnitBytes + 100, 0);
    std::fill(expected.begin() + 2 * kDataUnitBytes + 10,
              expected.begin() + 2 * kDataUnitBytes + 60, 0);
    EXPECT_EQ(f.read_all(), expected);
}

// Only a write that is zero throughout is stored as zeros: a zero unit inside
// real data is encrypted, so the layout of a page's free space stays hidden.
TEST_P(EncryptedFileBoth, ZeroUnitsInsideAWriteOfDataAreEncrypted) {
    std::vector<std::uint8_t> page(8192, 0);
    std::memset(page.data(), 0x77, 100);  // a page header, then free space
    ASSERT_EQ(f.file->pwrite(f.io, page.data(), page.size(), 0), 8192);
    EXPECT_FALSE(physical_unit_is_zero(f, 0));
    EXPECT_FALSE(physical_unit_is_zero(f, 1));
    f.reopen();
    EXPECT_EQ(f.read_all(), page);
}

// A short last unit of zeros: in XTS a unit shorter than one AES block is a
// keystream XOR, never a hole, so it is not stored as zeros; in GCM it is,
// its entry saying so.
TEST_P(EncryptedFileBoth, ShortZeroTailsRoundTrip) {
    const std::vector<std::uint8_t> zeros(kDataUnitBytes + 10, 0);
    ASSERT_EQ(f.file->pwrite(f.io, zeros.data(), zeros.size(), 0),
              static_cast<std::int64_t>(zeros.size()));
    EXPECT_TRUE(physical_unit_is_zero(f, 0));
    EXPECT_EQ(physical_unit_is_zero(f, 1, 10), GetParam() == FileCipher::Aes256Gcm);
    f.reopen();
    EXPECT_EQ(f.read_all(), zeros);
}

TEST_P(EncryptedFileBoth, AllocatedRangesReadAsZeros) {
    ASSERT_EQ(f.file->pwrite(f.io, "abc", 3, 0), 3);
    ASSERT_EQ(f.file->allocate(f.io, 0, 5 * kDataUnitBytes + 3), 0);
    EXPECT_EQ(f.file->size(), 5 * kDataUnitBytes + 3);
    const auto all = f.read_all();
    EXPECT_EQ(std::string(all.begin(), all.begin() + 3), "abc");
    EXPECT_TRUE(std::all_of(all.begin() + 3, all.end(), [](std::uint8_t b) { return b == 0; }));
}

TEST_P(EncryptedFileBoth, WriteErrorsKeepTheirErrno) {
    f.io.fail_writes = true;
    char page[8192] = {};
    EXPECT_EQ(f.file->pwrite(f.io, page, sizeof(page), 0), -ENOSPC);
}

// What a failing call said about its failure, for a failing assertion.
std::string describe(const UnitFailure& why) {
    return why.reason == nullptr ? "no failure recorded"
                                 : "unit " + std::to_string(why.unit) + ": " + why.reason;
}

TEST_P(EncryptedFileBoth, ShortPhysicalFileIsAnError) {
    std::vector<std::uint8_t> data(3 * kDataUnitBytes, 1);
    ASSERT_EQ(f.file->pwrite(f.io, data.data(), data.size(), 0), 3 * 4096);
    // Someone shrinks the file behind the engine's back, mid-unit.
    f.io.bytes.resize(f.physical_size(kDataUnitBytes + 100));
    std::vector<std::uint8_t> out(3 * kDataUnitBytes);
    UnitFailure why;
    const std::int64_t got = f.file->pread(f.io, out.data(), out.size(), 0, &why);
    // The engine must not hand back a unit it could only partly read; in
    // v2 that is an integrity failure, and the read names the cut unit.
    if (GetParam() == FileCipher::Aes256Gcm) {
        EXPECT_EQ(got, kIntegrityFailure);
        EXPECT_EQ(why.unit, 1) << describe(why);
        EXPECT_NE(why.reason, nullptr);
    } else {
        EXPECT_EQ(got, -EIO);
        EXPECT_EQ(why.reason, nullptr) << "format v1 cannot tell a cut from a read error";
    }
}

TEST_P(EncryptedFileBoth, PlaintextAuditFilesStoreDataInTheClearAfterAMarkedHeader) {
    Fixture f(GetParam(), Category::Spill, /*plaintext_audit=*/true);
    EXPECT_TRUE(f.file->plaintext_audit());
    // Whatever the category's cipher: format v1, linear, cipher byte 0.
    EXPECT_EQ(f.file->header().version, kFormatVersionLinear);
    EXPECT_FALSE(f.layout().is_grouped());
    const std::string text = "audited plaintext";
    ASSERT_EQ(f.file->pwrite(f.io, text.data(), text.size(), 0),
              static_cast<std::int64_t>(text.size()));
    EXPECT_TRUE(contains(f.io.bytes, text));
    f.reopen();
    EXPECT_TRUE(f.file->plaintext_audit());
    const auto all = f.read_all();
    EXPECT_EQ(std::string(all.begin(), all.end()), text);
}

TEST_P(EncryptedFileBoth, ForeignFilesAreRecognised) {
    auto other = InstanceKey::generate();
    auto outcome = EncryptedFile::open(f.io, *other);
    EXPECT_EQ(outcome.status, HeaderStatus::ForeignInstance);
    EXPECT_FALSE(outcome.file);
}

TEST_P(EncryptedFileBoth, AlignedPathDoesNotAllocate) {
    ASSERT_TRUE(g_hooks_installed);
    std::vector<std::uint8_t> page(8192, 0x33), back(8192);
    f.io.bytes.reserve(kHeaderBytes + 64 * 8192 + 4 * kHeaderBytes);
    // Warm up: the first call allocates the per-thread scratch buffers (and
    // in v2 the record of the first group's units, which the 32 pages below
    // stay inside).
    ASSERT_EQ(f.file->pwrite(f.io, page.data(), page.size(), 0), 8192);
    ASSERT_EQ(f.file->pread(f.io, back.data(), back.size(), 0), 8192);
    const long before = g_allocations.load();
    for (int i = 0; i < 32; ++i) {
        ASSERT_EQ(f.file->pwrite(f.io, page.data(), page.size(), i * 8192), 8192);
        ASSERT_EQ(f.file->pread(f.io, back.data(), back.size(), i * 8192), 8192);
    }
    EXPECT_EQ(g_allocations.load() - before, 0);
    EXPECT_EQ(back, page);
}

// v1: one system call per aligned 8 KiB write or read. v2: a write takes two
// (the data, and the two units' entries); a read one more when the group's
// metadata block is not the one the thread read last.
TEST_P(EncryptedFileBoth, AlignedWriteAndReadCostOneCallOrTwoWithMetadata) {
    std::vector<std::uint8_t> page(8192, 0x33);
    ASSERT_EQ(f.file->pwrite(f.io, page.data(), page.size(), 0), 8192);
    ASSERT_EQ(f.file->pwrite(f.io, page.data(), page.size(), 8192), 8192);
    int writes = f.io.writes, reads = f.io.reads;
    ASSERT_EQ(f.file->pwrite(f.io, page.data(), page.size(), 0), 8192);
    ASSERT_EQ(f.file->pread(f.io, page.data(), page.size(), 0), 8192);
    const bool v2 = GetParam() == FileCipher::Aes256Gcm;
    EXPECT_EQ(f.io.writes - writes, v2 ? 2 : 1);
    EXPECT_EQ(f.io.reads - reads, v2 ? 2 : 1);
    reads = f.io.reads;
    ASSERT_EQ(f.file->pread(f.io, page.data(), page.size(), 8192), 8192);
    EXPECT_EQ(f.io.reads - reads, 1) << "the group's block is cached";
}

// The model: a plain byte vector with POSIX file semantics.
struct PlainModel {
    std::vector<std::uint8_t> bytes;
    void write(const std::uint8_t* data, std::size_t len, std::uint64_t off) {
        if (off + len > bytes.size()) {
            bytes.resize(off + len, 0);
        }
        std::memcpy(bytes.data() + off, data, len);
    }
    std::vector<std::uint8_t> read(std::size_t len, std::uint64_t off) const {
        if (off >= bytes.size()) {
            return {};
        }
        const std::size_t n = std::min<std::size_t>(len, bytes.size() - off);
        return {bytes.begin() + off, bytes.begin() + off + n};
    }
};

std::uint64_t pick_offset(std::mt19937_64& rng, std::uint64_t size) {
    const std::uint64_t limit = std::max<std::uint64_t>(size + 2 * kDataUnitBytes, 64);
    switch (rng() % 5) {
        case 0:  // unit-aligned
            return (rng() % (limit / kDataUnitBytes + 1)) * kDataUnitBytes;
        case 1:  // near a unit boundary
            return (rng() % (limit / kDataUnitBytes + 1)) * kDataUnitBytes + (rng() % 33) - 16 +
                   kDataUnitBytes;
        case 2:  // near the end
            return size > 20 ? size - (rng() % 20) + (rng() % 40) : rng() % 40;
        case 3: {  // near the end of the first or second group of 128 units (format v2)
            const std::uint64_t boundary = (1 + rng() % 2) * kUnitsPerGroup * kDataUnitBytes;
            return boundary - 2 * kDataUnitBytes + rng() % (4 * kDataUnitBytes);
        }
        default:
            return rng() % limit;
    }
}

std::size_t pick_length(std::mt19937_64& rng) {
    switch (rng() % 4) {
        case 0:
            return 1 + rng() % 20;
        case 1:
            return kDataUnitBytes * (1 + rng() % 3);
        case 2:
            return 8192;
        default:
            return 1 + rng() % (5 * kDataUnitBytes);
    }
}

class EncryptedFileProperty : public ::testing::TestWithParam<FileCipher> {};

INSTANTIATE_TEST_SUITE_P(Ciphers, EncryptedFileProperty,
                         ::testing::Values(FileCipher::Aes256Xts, FileCipher::Aes256Gcm),
                         cipher_label);

TEST_P(EncryptedFileProperty, RandomOperationsMatchAPlainFile) {
    const std::uint64_t seed = testing::test_seed();
    // Printed on failure; set EPHEMERAL_CRYPT_SEED to replay.
    SCOPED_TRACE("EPHEMERAL_CRYPT_SEED=" + std::to_string(seed));
    std::mt19937_64 rng(seed);
    constexpr int kSequences = 300;
    constexpr int kOperations = 40;
    for (int sequence = 0; sequence < kSequences; ++sequence) {
        Fixture f(GetParam());
        PlainModel model;
        for (int op = 0; op < kOperations; ++op) {
            const std::uint64_t size = model.bytes.size();
            const int choice = static_cast<int>(rng() % 10);
            if (choice < 5) {
                const std::uint64_t off = pick_offset(rng, size);
                std::vector<std::uint8_t> data(pick_length(rng));
                // One write in five is all zeros, the form stored as zeros.
                const bool zeros = rng() % 5 == 0;
                for (auto& b : data) {
                    b = static_cast<std::uint8_t>(zeros || rng() % 3 == 0 ? 0 : rng());
                }
                UnitFailure why;
                const std::int64_t put = f.file->pwrite(f.io, data.data(), data.size(), off, &why);
                ASSERT_EQ(put, static_cast<std::int64_t>(data.size()))
                    << "sequence " << sequence << " op " << op << ": " << describe(why);
                model.write(data.data(), data.size(), off);
            } else if (choice < 8) {
                const std::uint64_t off = pick_offset(rng, size);
                const std::size_t len = pick_length(rng);
                std::vector<std::uint8_t> got(len, 0xee);
                const std::int64_t n = f.file->pread(f.io, got.data(), len, off);
                const auto expected = model.read(len, off);
                ASSERT_EQ(n, static_cast<std::int64_t>(expected.size()))
                    << "sequence " << sequence << " op " << op << " read " << len << "@" << off;
                got.resize(static_cast<std::size_t>(n));
                ASSERT_EQ(got, expected) << "sequence " << sequence << " op " << op;
            } else if (choice == 8) {
                const std::uint64_t length =
                    rng() % 2 ? pick_offset(rng, size) : rng() % (size + 1);
                ASSERT_EQ(f.file->truncate(f.io, length), 0);
                model.bytes.resize(length, 0);
            } else {
                const std::uint64_t off = pick_offset(rng, size);
                const std::size_t len = pick_length(rng);
                ASSERT_EQ(f.file->allocate(f.io, off, len), 0);
                if (off + len > model.bytes.size()) {
                    model.bytes.resize(off + len, 0);
                }
            }
            ASSERT_EQ(f.file->size(), model.bytes.size()) << "sequence " << sequence;
            ASSERT_EQ(f.io.bytes.size(), f.physical_size(model.bytes.size()));
            if (rng() % 8 == 0) {
                f.reopen();
            }
        }
        f.reopen();
        ASSERT_EQ(f.read_all(), model.bytes) << "sequence " << sequence;
    }
}

}  // namespace
}  // namespace ephemeral_crypt
