// Hexadecimal text for byte strings (key ids, digests, policy keys, known
// answers), through libsodium's constant-time sodium_bin2hex and
// sodium_hex2bin so that no room writes its own digit tables. Output is
// lowercase; input may be either case.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ephemeral_crypt {

// 2 * len lowercase digits.
std::string to_hex(const std::uint8_t* data, std::size_t len);

// The same into a caller's buffer of at least 2 * len + 1 bytes (NUL
// included), for paths that must not allocate. False if it is too small.
bool to_hex(const std::uint8_t* data, std::size_t len, char* out, std::size_t out_len) noexcept;

// Decodes exactly 2 * len hex digits, nothing else, into `out`.
bool from_hex(std::string_view text, std::uint8_t* out, std::size_t len) noexcept;

// Decodes an even number of hex digits of any length; empty on bad input.
std::vector<std::uint8_t> bytes_from_hex(std::string_view text);

}  // namespace ephemeral_crypt
