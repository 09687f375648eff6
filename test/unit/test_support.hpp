// Small helpers shared by the unit tests: hex decoding and a seeded RNG whose
// seed can be forced with EPHEMERAL_CRYPT_SEED to replay a failure.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/hex.hpp"

namespace ephemeral_crypt::testing {

inline std::vector<std::uint8_t> from_hex(const std::string& hex) {
    return bytes_from_hex(hex);
}

inline std::uint64_t test_seed() {
    if (const char* forced = std::getenv("EPHEMERAL_CRYPT_SEED")) {
        return std::strtoull(forced, nullptr, 10);
    }
    return std::random_device{}();
}

}  // namespace ephemeral_crypt::testing
