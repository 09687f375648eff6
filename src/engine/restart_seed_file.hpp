// The restart seed on disk: written by the postmaster as it exits after a
// sealed clean shutdown (it still holds the key), read by the next
// postmaster to rebuild, under its new key, the WAL segment whose first
// record is the shutdown checkpoint. The bytes are core/restart_seed.hpp's;
// this file does the I/O. docs/wal.md tells the whole sequence.
#pragma once

#include "core/no_postgres.hpp"

#include <cstdint>
#include <string>

namespace ephemeral_crypt::engine {

// The seed's name in the data directory.
inline constexpr char kRestartSeedFile[] = "ephemeral_crypt.restart";

// Saves the plaintext of `segment_path` up to the end of the checkpoint
// record at `checkpoint_offset` (read through the layer, which decrypts),
// durably, as `seed_path`. Throws EngineError.
void save_restart_seed(const std::string& seed_path, const std::string& segment_path,
                       std::uint64_t checkpoint_offset, std::uint32_t timeline,
                       std::uint64_t checkpoint_lsn);

// Removes the seed; a missing seed is fine.
void discard_restart_seed(const std::string& seed_path) noexcept;

// Rebuilds `segment_path` (`segment_bytes` long) byte for byte under the
// current key if the seed describes exactly this checkpoint. False when no
// seed matches (none, damaged, or another checkpoint's); throws EngineError
// if a matching seed cannot be written out.
bool rebuild_from_seed(const std::string& seed_path, const std::string& segment_path,
                       std::uint32_t timeline, std::uint64_t checkpoint_lsn,
                       std::uint64_t segment_bytes);

}  // namespace ephemeral_crypt::engine
