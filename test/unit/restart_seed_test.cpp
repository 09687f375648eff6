// The restart seed's byte format: round trips, the exact layout earlier
// versions wrote, and refusal of every kind of damage.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "core/restart_seed.hpp"
#include "core/sha256.hpp"
#include "test_support.hpp"

namespace ephemeral_crypt {
namespace {

RestartSeed sample_seed() {
    RestartSeed seed;
    seed.timeline = 3;
    seed.checkpoint_lsn = 0x0000000105000028ull;
    seed.prefix.resize(40 + 114);
    for (std::size_t i = 0; i < seed.prefix.size(); ++i) {
        seed.prefix[i] = static_cast<std::uint8_t>(i * 7 + 1);
    }
    return seed;
}

TEST(RestartSeed, RoundTrips) {
    const RestartSeed seed = sample_seed();
    const std::vector<std::uint8_t> bytes = encode_restart_seed(seed);
    ASSERT_EQ(bytes.size(), kRestartSeedHeaderBytes + seed.prefix.size() + kRestartSeedDigestBytes);
    const auto decoded = decode_restart_seed(bytes.data(), bytes.size());
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->timeline, seed.timeline);
    EXPECT_EQ(decoded->checkpoint_lsn, seed.checkpoint_lsn);
    EXPECT_EQ(decoded->prefix, seed.prefix);
}

TEST(RestartSeed, LayoutIsTheDocumentedOne) {
    // Magic, then timeline, prefix length and LSN little-endian, the prefix,
    // and SHA-256 over everything before the digest: the bytes the packed
    // struct of earlier versions produced on x86-64.
    const RestartSeed seed = sample_seed();
    const std::vector<std::uint8_t> bytes = encode_restart_seed(seed);
    ASSERT_FALSE(bytes.empty());
    EXPECT_EQ(std::memcmp(bytes.data(), "ECSEED01", 8), 0);
    const std::vector<std::uint8_t> timeline = {3, 0, 0, 0};
    const std::vector<std::uint8_t> length = {154, 0, 0, 0};
    const std::vector<std::uint8_t> lsn = {0x28, 0x00, 0x00, 0x05, 0x01, 0x00, 0x00, 0x00};
    EXPECT_EQ(std::vector<std::uint8_t>(bytes.begin() + 8, bytes.begin() + 12), timeline);
    EXPECT_EQ(std::vector<std::uint8_t>(bytes.begin() + 12, bytes.begin() + 16), length);
    EXPECT_EQ(std::vector<std::uint8_t>(bytes.begin() + 16, bytes.begin() + 24), lsn);
    EXPECT_EQ(std::vector<std::uint8_t>(bytes.begin() + 24, bytes.end() - 32), seed.prefix);
    std::uint8_t digest[kSha256Bytes];
    ASSERT_TRUE(sha256(bytes.data(), bytes.size() - 32, digest));
    EXPECT_EQ(std::memcmp(digest, bytes.data() + bytes.size() - 32, 32), 0);
}

TEST(RestartSeed, EveryFlippedByteIsRefused) {
    const std::vector<std::uint8_t> bytes = encode_restart_seed(sample_seed());
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        std::vector<std::uint8_t> damaged = bytes;
        damaged[i] ^= 0x20;
        EXPECT_FALSE(decode_restart_seed(damaged.data(), damaged.size()).has_value())
            << "byte " << i;
    }
}

TEST(RestartSeed, WrongLengthsAreRefused) {
    const std::vector<std::uint8_t> bytes = encode_restart_seed(sample_seed());
    for (std::size_t len = 0; len < bytes.size(); ++len) {
        EXPECT_FALSE(decode_restart_seed(bytes.data(), len).has_value()) << "length " << len;
    }
    std::vector<std::uint8_t> longer = bytes;
    longer.push_back(0);
    EXPECT_FALSE(decode_restart_seed(longer.data(), longer.size()).has_value());
    EXPECT_FALSE(decode_restart_seed(nullptr, 0).has_value());
}

TEST(RestartSeed, RandomInputsNeverDecode) {
    std::mt19937_64 rng(testing::test_seed());
    for (int round = 0; round < 2000; ++round) {
        std::vector<std::uint8_t> input(rng() % 300);
        for (auto& byte : input) {
            byte = static_cast<std::uint8_t>(rng());
        }
        if (input.size() >= 8 && rng() % 2 == 0) {
            std::memcpy(input.data(), kRestartSeedMagic, 8);  // get past the magic
        }
        EXPECT_FALSE(decode_restart_seed(input.data(), input.size()).has_value());
    }
}

TEST(RestartSeed, EmptyPrefixRoundTrips) {
    RestartSeed seed;
    seed.timeline = 1;
    seed.checkpoint_lsn = 42;
    const std::vector<std::uint8_t> bytes = encode_restart_seed(seed);
    ASSERT_EQ(bytes.size(), kRestartSeedHeaderBytes + kRestartSeedDigestBytes);
    const auto decoded = decode_restart_seed(bytes.data(), bytes.size());
    ASSERT_TRUE(decoded.has_value());
    EXPECT_TRUE(decoded->prefix.empty());
    EXPECT_EQ(decoded->checkpoint_lsn, 42u);
}

}  // namespace
}  // namespace ephemeral_crypt
