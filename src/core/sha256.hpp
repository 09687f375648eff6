// SHA-256, the one way every room computes it: the header checksum and the
// policy digest come through here.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>

namespace ephemeral_crypt {

inline constexpr std::size_t kSha256Bytes = 32;

// False only if OpenSSL cannot provide SHA-256.
bool sha256(const void* data, std::size_t len, std::uint8_t out[kSha256Bytes]) noexcept;

}  // namespace ephemeral_crypt
