// The periodic attestation's checks: each re-proves, in the process that
// runs it (the policy worker), one thing start-up proved. The ciphers'
// known answers and a round trip through the server's own GOT slots; every
// slot the layer patches still holding the layer, in every object loaded
// now; the memory holding key material still locked and out of core dumps
// (/proc/self/smaps against the arena's own records); the policy file on
// disk still the policy in force, verified and fresh; every file of an
// encrypted category carrying our header, within a time budget. A check
// never throws: what went wrong is its detail.
#pragma once

#include "core/no_postgres.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include "core/policy.hpp"
#include "core/path_classifier.hpp"

namespace ephemeral_crypt::engine {

struct AttestationCheck {
    std::string name;  // ciphers, got_slots, key_memory, policy_file, data_directory
    bool passed = false;
    std::string detail;
};

AttestationCheck check_ciphers();
AttestationCheck check_got_slots();
// `smaps` is the text of /proc/self/smaps (read by the caller, so the
// parsing can be tested on a given text).
AttestationCheck check_key_memory(const std::string& smaps);
std::string read_own_smaps();
// `loaded` is the policy file read again; `in_force_digest` the digest in
// force; `stale_reason` empty while the policy is fresh.
AttestationCheck check_policy_file(const std::string& path, const PolicyFileResult& loaded,
                                   bool require_signed, const std::string& in_force_digest,
                                   const std::string& stale_reason);

struct ScanOutcome {
    AttestationCheck check;
    int files_scanned = 0;
    bool cut_short = false;
};
// Files of the categories in `encrypted` (indexed by category_index) that
// carry no header are findings, named in the detail; an empty file is not
// (its header is written with its first write). `budget_ms` <= 0: no limit.
ScanOutcome check_data_directory(const ClassifierRoots& roots, const bool encrypted[kCategoryCount],
                                 std::int64_t budget_ms);

}  // namespace ephemeral_crypt::engine
