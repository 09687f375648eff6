// Instance key properties: fresh per generation, printable id, derivations
// that separate files and categories, no way to print the key itself, and
// memory that is locked and excluded from core dumps, in the process that
// made the key and in every child it forks.
#include <gtest/gtest.h>

#include <sodium.h>

#include <array>
#include <cstring>
#include <string>

#include "core/instance_key.hpp"
#include "locked_memory_support.hpp"

namespace ephemeral_crypt {
namespace {

TEST(InstanceKey, EachGenerationIsFresh) {
    auto a = InstanceKey::generate();
    auto b = InstanceKey::generate();
    EXPECT_NE(a->id(), b->id());
    std::uint8_t ka[kInstanceKeyBytes], kb[kInstanceKeyBytes];
    a->copy_key_bytes_for_testing(ka);
    b->copy_key_bytes_for_testing(kb);
    EXPECT_NE(0, std::memcmp(ka, kb, sizeof(ka)));
}

TEST(InstanceKey, IdIsSixteenHexDigitsAndNotTheKey) {
    auto key = InstanceKey::generate();
    const std::string hex = key->id_hex();
    ASSERT_EQ(hex.size(), 16u);
    EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos);
    std::uint8_t bytes[kInstanceKeyBytes];
    key->copy_key_bytes_for_testing(bytes);
    EXPECT_NE(0, std::memcmp(bytes, key->id().data(), kKeyIdBytes));
}

TEST(InstanceKey, CreationTimeIsNow) {
    const auto before = std::chrono::system_clock::now();
    auto key = InstanceKey::generate();
    const auto after = std::chrono::system_clock::now();
    EXPECT_LE(before, key->created_at());
    EXPECT_GE(after, key->created_at());
}

TEST(InstanceKey, FileKeysDependOnNonceAndCategory) {
    auto key = InstanceKey::generate();
    std::uint8_t nonce_a[32] = {1};
    std::uint8_t nonce_b[32] = {2};
    std::array<std::uint8_t, kFileKeyBytes> a{}, a_again{}, b{}, a_wal{};
    ASSERT_TRUE(key->derive_file_key(nonce_a, 32, Category::Spill, a.data()));
    ASSERT_TRUE(key->derive_file_key(nonce_a, 32, Category::Spill, a_again.data()));
    ASSERT_TRUE(key->derive_file_key(nonce_b, 32, Category::Spill, b.data()));
    ASSERT_TRUE(key->derive_file_key(nonce_a, 32, Category::Wal, a_wal.data()));
    EXPECT_EQ(a, a_again);
    EXPECT_NE(a, b);
    EXPECT_NE(a, a_wal);
}

TEST(InstanceKey, KeyMemoryIsReadOnly) {
    // The guarded block is mprotect'ed read-only after creation: a write
    // through a stray pointer must fault instead of silently changing the key.
    auto key = InstanceKey::generate();
    EXPECT_DEATH(
        {
            auto* raw = const_cast<std::uint8_t*>(
                reinterpret_cast<const std::uint8_t*>(key->secrets_address_for_testing()));
            raw[0] ^= 1;
        },
        "");
}

TEST(InstanceKey, KeyMemoryIsLockedAndNonDumpableHereAndInForkedChildren) {
    auto key = InstanceKey::generate();
    const void* secrets = key->secrets_address_for_testing();
    EXPECT_EQ(testing::locked_and_non_dumpable(secrets, "the instance key"), "");
    // The kernel drops memory locks in a child; the fork handler takes them
    // again before the child runs anything else.
    EXPECT_EQ(testing::in_child([secrets] {
                  return testing::locked_and_non_dumpable(secrets,
                                                          "the child's copy of the instance key");
              }),
              "");
}

TEST(InstanceKey, DestroyingTheKeyUnmapsItsMemory) {
    auto key = InstanceKey::generate();
    const void* secrets = key->secrets_address_for_testing();
    key.reset();
    const testing::Mapping after = testing::mapping_of(secrets);
    EXPECT_FALSE(after.found && after.permissions.find('r') != std::string::npos)
        << "the key's page is still readable after the key was destroyed";
}

}  // namespace
}  // namespace ephemeral_crypt
