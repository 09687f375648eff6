// What the policy tests share: a sample policy and its file form, a fresh
// signing key pair, and text helpers.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "core/policy.hpp"

namespace ephemeral_crypt::testing {

inline Policy sample_policy() {
    Policy policy;
    policy.version = "2026-11-01.3";
    policy.of(Category::TempRelation) = {true, Degradation::FailClosed};
    policy.of(Category::Spill) = {true, Degradation::FailOpenAudit};
    policy.of(Category::Wal) = {false, Degradation::FailClosed};
    return policy;
}

// The file form of sample_policy(), with the comments and spacing a human
// would add.
inline constexpr char kSampleText[] =
    "# fleet policy\n"
    "version = 2026-11-01.3\n"
    "\n"
    "temp_relation = on\n"
    "spill = on\n"
    "spill_degradation = fail_open_audit\n"
    "wal = off\n";

struct Keys {
    std::string public_text;
    std::string secret_text;
    std::uint8_t secret[kPolicySecretKeyBytes];
};

inline Keys make_keys() {
    Keys keys;
    generate_keypair(&keys.public_text, &keys.secret_text);
    EXPECT_EQ(keys.public_text.size(), 64u);
    EXPECT_EQ(keys.secret_text.size(), 128u);
    std::string error;
    EXPECT_TRUE(parse_secret_key(keys.secret_text, keys.secret, &error)) << error;
    return keys;
}

inline std::string sign(std::string_view text, const Keys& keys) {
    std::string error;
    std::string out = sign_policy_text(text, keys.secret, &error);
    EXPECT_FALSE(out.empty()) << error;
    return out;
}

inline std::string replace_once(std::string text, const std::string& from, const std::string& to) {
    const std::size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) {
        text.replace(at, from.size(), to);
    }
    return text;
}

}  // namespace ephemeral_crypt::testing
