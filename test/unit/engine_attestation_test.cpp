// The attestation's checks that decide from given data: the policy file
// check (no file named, the digest in force, another digest, a file that no
// longer verifies, an unsigned file when signatures are not required, a
// stale policy), and the key memory check against smaps texts (locked and
// out of dumps passes, a region without "lo" or "dd" fails, no smaps fails).
#include <gtest/gtest.h>

#include <sys/mman.h>

#include <cstdio>
#include <string>

#include "core/policy.hpp"
#include "core/secure_memory.hpp"
#include "engine/attestation.hpp"

namespace ephemeral_crypt::engine {
namespace {

PolicyFileResult verified(const std::string& version) {
    PolicyFileResult loaded;
    loaded.status = PolicyFileStatus::Ok;
    loaded.signed_ok = true;
    loaded.policy.version = version;
    loaded.policy.of(Category::Spill).enabled = true;
    return loaded;
}

TEST(EngineAttestation, NoPolicyFilePasses) {
    const AttestationCheck check = check_policy_file("", PolicyFileResult(), true, "x", "");
    EXPECT_EQ(check.name, "policy_file");
    EXPECT_TRUE(check.passed);
}

TEST(EngineAttestation, PolicyFileWithTheDigestInForcePasses) {
    const PolicyFileResult loaded = verified("a");
    const AttestationCheck check =
        check_policy_file("p.policy", loaded, true, policy_digest_hex(loaded.policy), "");
    EXPECT_TRUE(check.passed) << check.detail;
}

TEST(EngineAttestation, AnotherDigestOnDiskFailsNamingBoth) {
    const PolicyFileResult loaded = verified("b");
    const std::string in_force = policy_digest_hex(verified("a").policy);
    const AttestationCheck check = check_policy_file("p.policy", loaded, true, in_force, "");
    EXPECT_FALSE(check.passed);
    EXPECT_NE(check.detail.find(policy_digest_hex(loaded.policy)), std::string::npos);
    EXPECT_NE(check.detail.find(in_force), std::string::npos);
}

TEST(EngineAttestation, AFileThatNoLongerVerifiesFails) {
    PolicyFileResult loaded = verified("a");
    loaded.status = PolicyFileStatus::BadSignature;
    loaded.signed_ok = false;
    loaded.error = "bad signature";
    const AttestationCheck check =
        check_policy_file("p.policy", loaded, true, policy_digest_hex(loaded.policy), "");
    EXPECT_FALSE(check.passed);
    EXPECT_EQ(check.detail, "\"p.policy\" no longer verifies: bad signature");
}

TEST(EngineAttestation, UnsignedFilePassesOnlyWhenSignaturesAreNotRequired) {
    PolicyFileResult loaded = verified("a");
    loaded.status = PolicyFileStatus::Unsigned;
    loaded.signed_ok = false;
    const std::string digest = policy_digest_hex(loaded.policy);
    EXPECT_TRUE(check_policy_file("p.policy", loaded, false, digest, "").passed);
    EXPECT_FALSE(check_policy_file("p.policy", loaded, true, digest, "").passed);
}

TEST(EngineAttestation, AStalePolicyFails) {
    const PolicyFileResult loaded = verified("a");
    const AttestationCheck check = check_policy_file(
        "p.policy", loaded, true, policy_digest_hex(loaded.policy), "policy expired");
    EXPECT_FALSE(check.passed);
    EXPECT_EQ(check.detail, "the policy in force is stale: policy expired");
}

// An smaps text with one mapping per kept region, flagged as given.
std::string smaps_for_kept_regions(const char* flags) {
    std::vector<std::pair<std::uintptr_t, std::size_t>> kept;
    kept_locked_ranges(kept);
    const void* base = nullptr;
    std::size_t bytes = 0;
    SecureArena::process().reservation(&base, &bytes);
    std::string text;
    char line[256];
    if (base != nullptr) {
        const auto start = reinterpret_cast<std::uintptr_t>(base);
        std::snprintf(line, sizeof line, "%lx-%lx ---p 00000000 00:00 0\nVmFlags: mr mw me dd\n",
                      static_cast<unsigned long>(start), static_cast<unsigned long>(start + bytes));
        text += line;
    }
    std::vector<std::pair<std::uintptr_t, std::size_t>> chunks;
    SecureArena::process().committed_ranges(chunks);
    kept.insert(kept.end(), chunks.begin(), chunks.end());
    for (const auto& [start, length] : kept) {
        std::snprintf(line, sizeof line, "%lx-%lx rw-p 00000000 00:00 0\nVmFlags: rd wr %s\n",
                      static_cast<unsigned long>(start), static_cast<unsigned long>(start + length),
                      flags);
        text += line;
    }
    return text;
}

TEST(EngineAttestation, KeyMemoryLockedAndOutOfDumpsPasses) {
    static unsigned char secret[64];
    ASSERT_EQ(keep_locked(secret, sizeof secret), 0);
    const AttestationCheck check = check_key_memory(smaps_for_kept_regions("lo dd"));
    EXPECT_TRUE(check.passed) << check.detail;
    EXPECT_FALSE(check_key_memory(smaps_for_kept_regions("dd")).passed);
    const AttestationCheck dumped = check_key_memory(smaps_for_kept_regions("lo"));
    EXPECT_FALSE(dumped.passed);
    EXPECT_NE(dumped.detail.find("core dumps"), std::string::npos) << dumped.detail;
    EXPECT_FALSE(check_key_memory("").passed);
    // The real smaps of this process agrees.
    const AttestationCheck real = check_key_memory(read_own_smaps());
    EXPECT_TRUE(real.passed) << real.detail;
    forget_locked(secret);
}

}  // namespace
}  // namespace ephemeral_crypt::engine
