// The policy after start-up: the newest serial this data directory has
// accepted (kept in a small file so a restart cannot be fed an older
// policy), and what a reload of the policy file does with the policy in
// force. A reload applies whole or not at all: a file that does not verify,
// or is older than the policy in force, leaves that policy as it is; one
// that turns a category's encryption on or off waits for a restart, since
// the layer of every running process was set up for the categories it
// encrypts; anything else (version, ciphers, degradation, serial, freshness)
// applies to files created from then on.
#pragma once

#include "core/no_postgres.hpp"

#include <cstdint>
#include <optional>
#include <string>

#include "core/policy.hpp"

namespace ephemeral_crypt::engine {

// The accepted serial's file in the data directory: one line, the decimal
// serial, replaced durably (write to a temporary name, fsync, rename, fsync
// the directory).
inline constexpr char kAcceptedSerialFile[] = "ephemeral_crypt.policy_serial";

// nullopt when the file does not exist. Throws EngineError when it cannot
// be read or does not hold one serial: a damaged record must not silently
// lower the floor.
std::optional<std::int64_t> read_accepted_serial(const std::string& path);
// Throws EngineError (with the errno) when it cannot be written.
void record_accepted_serial(const std::string& path, std::int64_t serial);

// Whether to record `candidate` after a verified policy was accepted: when
// it raises the floor, or sets a first one that is not the default 0.
bool raises_accepted_serial(std::int64_t candidate, std::optional<std::int64_t> floor) noexcept;

enum class ReloadVerdict {
    Applied,         // the file's policy is now in force
    Unchanged,       // the file verifies and holds the policy in force
    PendingRestart,  // it verifies, and needs a restart; the policy in force stays
    Rejected,        // missing, unreadable, malformed or badly signed; nothing changes
    RolledBack,      // it verifies, and is older than the policy in force
};

struct ReloadDecision {
    ReloadVerdict verdict = ReloadVerdict::Rejected;
    PolicyFileStatus file_status = PolicyFileStatus::Ok;
    Policy policy;       // what the file holds (when it parsed)
    std::string digest;  // its digest (when it parsed)
    // Why it was not applied, or what needs the restart; names the line
    // when the file has one to blame.
    std::string detail;
    int error_number = 0;
};

// Decides what a reload does with `loaded` (the file read again, checked
// against the configured key). `in_force` is the policy every process uses
// now, `started` the one the layer was set up with at start-up, `floor` the
// newest serial the data directory has accepted.
ReloadDecision decide_reload(const PolicyFileResult& loaded, bool require_signed,
                             const Policy& in_force, const Policy& started,
                             std::optional<std::int64_t> floor);

}  // namespace ephemeral_crypt::engine
