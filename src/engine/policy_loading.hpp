// Which policy is in force: the one the settings declare, or the one a
// named policy file holds. A named file that is missing, unreadable,
// malformed or badly signed refuses the start whatever
// require_signed_policy says: a broken or tampered policy is never silently
// replaced by the settings. With require_signed_policy, an unsigned file or
// no file at all refuses too. A file whose serial is older than the newest
// this data directory has accepted (policy_lifecycle.hpp) refuses the start
// as well. core/policy.hpp defines the file and its digest; this decides
// what start-up does with them.
#pragma once

#include "core/no_postgres.hpp"

#include <cstdint>
#include <optional>
#include <string>

#include "core/policy.hpp"

namespace ephemeral_crypt::engine {

struct PolicyRequest {
    Policy from_settings;     // version and categories as the settings say
    std::string policy_file;  // empty: none named
    std::string public_key;   // text of the Ed25519 public key, or empty
    bool require_signed = false;
    // The newest serial the data directory has accepted; nullopt when none.
    std::optional<std::int64_t> accepted_serial;
};

enum class PolicyVerdict {
    Accepted,         // `policy` is in force
    SignedButNoFile,  // require_signed_policy without a policy file
    FileRejected,     // the named file refuses the start; file_status says why
    RolledBack,       // the file verifies but is older than the accepted serial
};

struct PolicyResolution {
    PolicyVerdict verdict = PolicyVerdict::Accepted;
    Policy policy;           // the effective policy, when Accepted
    bool from_file = false;  // a policy file was named
    bool signed_ok = false;  // it verified under the public key
    PolicyFileStatus file_status = PolicyFileStatus::Ok;
    std::string detail;    // the loader's explanation of a rejected file
    int error_number = 0;  // errno, when the file could not be read
    std::string digest;    // SHA-256 of the effective policy, when Accepted
};

// Throws EngineError only if the digest cannot be computed.
PolicyResolution resolve_policy(const PolicyRequest& request);

}  // namespace ephemeral_crypt::engine
