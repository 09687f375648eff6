// The WAL segments of a pg_wal directory, as start-up needs them: which are
// plaintext (written before WAL encryption was on, or brought by
// pg_basebackup), which are this instance's, and which belong to a previous
// instance whose key is gone. Plaintext segments are encrypted in place;
// foreign ones can only be counted and removed.
#pragma once

#include "core/no_postgres.hpp"

#include <string>
#include <vector>

#include "core/instance_key.hpp"

namespace ephemeral_crypt::engine {

enum class SegmentKind { Plaintext, Current, Foreign };

struct WalSegment {
    std::string path;  // wal_dir + "/" + name
    SegmentKind kind = SegmentKind::Plaintext;
    std::string key_id;  // for a Foreign segment whose header names a key
};

// The segments (24 hex digits, optionally ".partial") of `wal_dir`, each
// classified by its first bytes: no header, a header under `key`, or any
// other header. The one place start-up reads segment headers. Throws
// EngineError if the directory cannot be listed.
std::vector<WalSegment> list_wal_segments(const std::string& wal_dir, const InstanceKey* key);

// Rewrites every plaintext segment of `wal_dir` through the layer (so it is
// encrypted under the instance key) into a temporary file renamed over it,
// durably. Returns how many were converted; throws EngineError on failure.
int encrypt_plaintext_segments(const std::string& wal_dir, const InstanceKey* key);

// Removes every segment of another instance; returns how many. Throws
// EngineError on failure.
int remove_foreign_segments(const std::string& wal_dir, const InstanceKey* key);

// Removes every encrypted segment of `wal_dir`, this instance's or another's:
// at a sealed shutdown, the only WAL left is then the plaintext sealed
// segment, so a stock tool that looks at every segment (pg_waldump with
// PGDATA, pg_rewind) finds only readable WAL. Returns how many; throws
// EngineError on failure.
int remove_encrypted_segments(const std::string& wal_dir, const InstanceKey* key);

struct ForeignWal {
    int segments = 0;
    std::string first_key_id;  // of the first one listed whose header names a key
};

// Counts the segments of another instance. A directory that cannot be listed
// counts none: the startup process then meets the files itself.
ForeignWal find_foreign_segments(const std::string& wal_dir, const InstanceKey* key);

}  // namespace ephemeral_crypt::engine
