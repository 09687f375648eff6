// The sealed segment: what a cleanly stopped WAL-encrypted instance leaves
// readable. Its shutdown checkpoint is the first record of a fresh segment
// (the sealer made it so); as the postmaster exits, still holding the key,
// it rewrites that segment in plaintext: the long page header and the
// checkpoint record, zeros after. That is nothing pg_control does not
// already keep in the clear, and no user data. Stock tools that HA managers
// run on a stopped data directory (pg_waldump, pg_rewind, Patroni) then read
// the end of its WAL truthfully, and the next instance, finding it intact,
// encrypts it under its own key and continues after it. docs/wal.md tells
// the whole sequence; src/pg/wal_restart.cpp checks the record with
// PostgreSQL's own definitions.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace ephemeral_crypt::engine {

// Largest checkpoint prefix a sealed segment holds: a long page header and a
// checkpoint record fit many times over in one WAL page.
inline constexpr std::size_t kSealedPrefixMax = 8192;

// Rewrites `segment_path` durably in plaintext: its bytes up to the end of
// the checkpoint record at `checkpoint_offset` (read through the layer,
// which decrypts), then zeros to `segment_bytes`. Throws EngineError; the
// encrypted segment is left as it was then.
void leave_checkpoint_readable(const std::string& segment_path, std::uint64_t checkpoint_offset,
                               std::uint64_t segment_bytes);

// Reads up to `len` bytes from the start of `segment_path` if it is
// plaintext (no header of ours). Returns the bytes read; 0 when the file is
// missing, encrypted, or unreadable.
std::size_t read_plaintext_start(const std::string& segment_path, std::uint8_t* buf,
                                 std::size_t len) noexcept;

}  // namespace ephemeral_crypt::engine
