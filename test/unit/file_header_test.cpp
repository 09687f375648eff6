// Header encoding round trips, in both format versions, and the named result
// for every kind of damage.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <openssl/sha.h>

#include "core/file_header.hpp"
#include "test_support.hpp"

namespace ephemeral_crypt {
namespace {

namespace L = header_layout;

class FileHeaderTest : public ::testing::Test {
  protected:
    void SetUp() override {
        key_ = InstanceKey::generate();
        header_.category = Category::Wal;
        for (std::size_t i = 0; i < kNonceBytes; ++i) {
            header_.nonce[i] = static_cast<std::uint8_t>(i + 1);
        }
        ASSERT_TRUE(encode_header(header_, *key_, encoded_.data()));
    }

    // Encodes header_ as the test has set it, and decodes the result as a
    // reader of the file would.
    DecodedHeader round_trip() {
        const bool encoded = encode_header(header_, *key_, encoded_.data());
        EXPECT_TRUE(encoded);
        return decode_header(encoded_.data(), encoded_.size(), key_.get());
    }

    HeaderStatus decode_with_byte_flipped(std::size_t offset) {
        auto copy = encoded_;
        copy[offset] ^= 0x01;
        return decode_header(copy.data(), copy.size(), key_.get()).status;
    }

    std::unique_ptr<InstanceKey> key_;
    FileHeader header_;
    std::vector<std::uint8_t> encoded_ = std::vector<std::uint8_t>(kHeaderBytes);
};

TEST_F(FileHeaderTest, RoundTrips) {
    const DecodedHeader decoded = round_trip();
    ASSERT_EQ(decoded.status, HeaderStatus::Ok);
    EXPECT_EQ(decoded.header.category, Category::Wal);
    EXPECT_EQ(decoded.header.cipher, kCipherAes256Xts);
    EXPECT_EQ(decoded.header.data_unit_bytes, 4096u);
    EXPECT_EQ(decoded.header.key_id, key_->id());
    EXPECT_EQ(decoded.header.nonce, header_.nonce);
    EXPECT_FALSE(decoded.header.plaintext_audit());
}

TEST_F(FileHeaderTest, PlaintextAuditMarkerRoundTrips) {
    header_.flags = kFlagPlaintextAudit;
    header_.cipher = kCipherNone;
    const DecodedHeader decoded = round_trip();
    ASSERT_EQ(decoded.status, HeaderStatus::Ok);
    EXPECT_TRUE(decoded.header.plaintext_audit());
}

// Format v2 records AES-256-GCM; each version accepts only its own ciphers,
// so the version alone decides how the data is laid out.
TEST_F(FileHeaderTest, AuthenticatedHeaderRoundTrips) {
    header_.version = kFormatVersionAuthenticated;
    header_.cipher = kCipherAes256Gcm;
    const DecodedHeader decoded = round_trip();
    ASSERT_EQ(decoded.status, HeaderStatus::Ok);
    EXPECT_EQ(decoded.header.version, kFormatVersionAuthenticated);
    EXPECT_TRUE(decoded.header.authenticated());
}

TEST_F(FileHeaderTest, ACipherOutsideItsVersionIsCorrupt) {
    const struct {
        std::uint16_t version;
        std::uint8_t cipher;
        std::uint32_t flags;
    } mismatched[] = {
        {kFormatVersionLinear, kCipherAes256Gcm, 0},
        {kFormatVersionAuthenticated, kCipherAes256Xts, 0},
        {kFormatVersionAuthenticated, kCipherNone, kFlagPlaintextAudit},
        {kFormatVersionAuthenticated, kCipherAes256Gcm, kFlagPlaintextAudit},
        {kFormatVersionLinear, 3, 0},
    };
    for (const auto& m : mismatched) {
        header_.version = m.version;
        header_.cipher = m.cipher;
        header_.flags = m.flags;
        ASSERT_TRUE(encode_header(header_, *key_, encoded_.data()));
        EXPECT_EQ(decode_header(encoded_.data(), encoded_.size(), key_.get()).status,
                  HeaderStatus::Corrupt)
            << "version " << m.version << ", cipher " << int{m.cipher};
    }
}

TEST_F(FileHeaderTest, NoMagicIsNotOurs) {
    std::vector<std::uint8_t> plain(kHeaderBytes, 'x');
    EXPECT_EQ(decode_header(plain.data(), plain.size(), key_.get()).status, HeaderStatus::NotOurs);
    EXPECT_EQ(decode_with_byte_flipped(L::kMagic), HeaderStatus::NotOurs);
    EXPECT_EQ(decode_with_byte_flipped(L::kMagic + 7), HeaderStatus::NotOurs);
    EXPECT_EQ(decode_header(plain.data(), 3, key_.get()).status, HeaderStatus::NotOurs);
}

TEST_F(FileHeaderTest, ShortInputIsTruncated) {
    for (std::size_t len :
         {std::size_t{0}, std::size_t{1}, std::size_t{8}, L::kEnd, kHeaderBytes - 1}) {
        EXPECT_EQ(decode_header(encoded_.data(), len, key_.get()).status, HeaderStatus::Truncated)
            << len;
    }
}

TEST_F(FileHeaderTest, OtherVersionIsUnsupported) {
    EXPECT_EQ(decode_with_byte_flipped(L::kVersion), HeaderStatus::UnsupportedVersion);
    EXPECT_EQ(decode_with_byte_flipped(L::kVersion + 1), HeaderStatus::UnsupportedVersion);
    for (const std::uint8_t version : {std::uint8_t{0}, std::uint8_t{3}, std::uint8_t{255}}) {
        auto copy = encoded_;
        copy[L::kVersion] = version;
        EXPECT_EQ(decode_header(copy.data(), copy.size(), key_.get()).status,
                  HeaderStatus::UnsupportedVersion)
            << int{version};
    }
}

TEST_F(FileHeaderTest, EveryOtherFieldCorruptedIsCorrupt) {
    for (std::size_t offset = L::kCategory; offset < L::kEnd; ++offset) {
        EXPECT_EQ(decode_with_byte_flipped(offset), HeaderStatus::Corrupt) << "offset " << offset;
    }
}

TEST_F(FileHeaderTest, ReservedBytesAreNotInterpreted) {
    EXPECT_EQ(decode_with_byte_flipped(L::kEnd), HeaderStatus::Ok);
    EXPECT_EQ(decode_with_byte_flipped(kHeaderBytes - 1), HeaderStatus::Ok);
}

TEST_F(FileHeaderTest, AnotherInstancesHeaderIsForeign) {
    auto other = InstanceKey::generate();
    const DecodedHeader decoded = decode_header(encoded_.data(), encoded_.size(), other.get());
    EXPECT_EQ(decoded.status, HeaderStatus::ForeignInstance);
    EXPECT_EQ(decoded.header.key_id, key_->id());
}

TEST_F(FileHeaderTest, ForgedHeaderWithValidChecksumIsCorrupt) {
    // Someone who rewrites a field and recomputes the unkeyed checksum still
    // cannot produce the MAC.
    auto forged = encoded_;
    forged[L::kCategory] = static_cast<std::uint8_t>(Category::Spill);
    std::uint8_t digest[32];
    SHA256(forged.data(), L::kChecksum, digest);
    std::memcpy(forged.data() + L::kChecksum, digest, L::kChecksumBytes);
    EXPECT_EQ(decode_header(forged.data(), forged.size(), key_.get()).status,
              HeaderStatus::Corrupt);
    // Without a key only structure is checked, and the forgery is not visible.
    EXPECT_EQ(decode_header(forged.data(), forged.size(), nullptr).status, HeaderStatus::Ok);
}

TEST_F(FileHeaderTest, KeylessDecodeAcceptsAnyIntactHeader) {
    const DecodedHeader decoded = decode_header(encoded_.data(), encoded_.size(), nullptr);
    EXPECT_EQ(decoded.status, HeaderStatus::Ok);
    EXPECT_EQ(decoded.header.key_id, key_->id());
}

TEST_F(FileHeaderTest, RandomInputsNeverCrash) {
    const std::uint64_t seed = testing::test_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    std::vector<std::uint8_t> buf(kHeaderBytes);
    for (int round = 0; round < 2000; ++round) {
        const std::size_t len = rng() % (kHeaderBytes + 1);
        std::vector<std::uint8_t> input(len);
        for (auto& b : input) {
            b = static_cast<std::uint8_t>(rng());
        }
        if (len >= 8 && rng() % 2) {
            std::memcpy(input.data(), kHeaderMagic, 8);
        }
        const auto status = decode_header(input.data(), input.size(), key_.get()).status;
        EXPECT_NE(status, HeaderStatus::Ok);
    }
}

TEST(HeaderStatusName, NamesAreDistinct) {
    // Joined by spaces, so an empty, altered or run-together name shows.
    std::string names;
    for (const HeaderStatus status :
         {HeaderStatus::Ok, HeaderStatus::NotOurs, HeaderStatus::UnsupportedVersion,
          HeaderStatus::Truncated, HeaderStatus::ForeignInstance, HeaderStatus::Corrupt}) {
        names.append(header_status_name(status)).push_back(' ');
    }
    EXPECT_EQ(names, "ok not_ours unsupported_version truncated foreign_instance corrupt ");
}

}  // namespace
}  // namespace ephemeral_crypt
