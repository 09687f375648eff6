// HKDF-SHA256 (RFC 5869) through OpenSSL's EVP_KDF. Every key the extension uses
// is derived from the instance key with a distinct `info` label, so no two
// purposes ever share key material.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>

namespace ephemeral_crypt {

// Returns false if OpenSSL refuses; the output is then zeroed.
bool hkdf_sha256(const std::uint8_t* input_key, std::size_t input_key_len, const std::uint8_t* salt,
                 std::size_t salt_len, const std::uint8_t* info, std::size_t info_len,
                 std::uint8_t* out, std::size_t out_len) noexcept;

}  // namespace ephemeral_crypt
