// The restart seed's byte format: what a cleanly stopped WAL-encrypted
// instance leaves for the next one so it can rebuild the segment that holds
// the shutdown checkpoint under its own key. Pure encoding and decoding;
// src/engine/restart_seed_file.cpp reads and writes the file.
//
// Layout (version 01; integers little-endian), docs/formats.md explains it:
//
//   offset  bytes  field
//   0       8      magic "ECSEED01"
//   8       4      timeline of the checkpoint
//   12      4      prefix length P
//   16      8      LSN of the shutdown checkpoint record
//   24      P      the segment's plaintext from its start to the end of the
//                  checkpoint record (a page header and the record)
//   24 + P  32     SHA-256 over bytes [0, 24 + P)
//
// A seed decodes only if its magic, its length (24 + P + 32 exactly) and its
// digest all check out; anything else is not a seed of ours.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace ephemeral_crypt {

inline constexpr char kRestartSeedMagic[8] = {'E', 'C', 'S', 'E', 'E', 'D', '0', '1'};
inline constexpr std::size_t kRestartSeedHeaderBytes = 24;
inline constexpr std::size_t kRestartSeedDigestBytes = 32;
// A WAL long page header and a shutdown checkpoint record fit many times over.
inline constexpr std::size_t kRestartSeedMaxPrefix = 8192;

struct RestartSeed {
    std::uint32_t timeline = 0;
    std::uint64_t checkpoint_lsn = 0;
    std::vector<std::uint8_t> prefix;  // plaintext of the segment's first bytes
};

// The seed's bytes; empty if the digest cannot be computed or the prefix is
// longer than a 32-bit length can say.
std::vector<std::uint8_t> encode_restart_seed(const RestartSeed& seed);

// The seed in `data`, or nothing if the bytes are not an intact seed.
std::optional<RestartSeed> decode_restart_seed(const std::uint8_t* data, std::size_t len);

}  // namespace ephemeral_crypt
