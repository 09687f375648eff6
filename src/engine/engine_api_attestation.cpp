// The attestation's entry points of the C interface (engine_api.h): running
// the five checks against the policy in force, telling whether an outcome
// changed since the last one, and the jittered delay before the next run.
#include "engine/engine_api.h"

#include <sodium.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/attestation_schedule.hpp"
#include "core/policy.hpp"
#include "core/shared_policy.hpp"
#include "engine/attestation.hpp"
#include "engine/engine_api_internal.hpp"
#include "engine/errors.hpp"
#include "interpose/layer.hpp"

using namespace engine::api;

extern "C" {

ec_status ec_engine_attest(const char* policy_file, const char* public_key, bool require_signed,
                           int64_t now_unix_ms, int scan_budget_ms, ec_attestation_report* out,
                           ec_error* error) {
    std::memset(out, 0, sizeof(*out));
    return fenced(error, [&] {
        ec::PolicySnapshot in_force;
        if (g_shared_policy == nullptr || !g_shared_policy->read(&in_force)) {
            throw engine::EngineError("the policy in force is not in shared memory");
        }
        ec_policy_state state;
        if (!ec_engine_read_policy_state(now_unix_ms, &state)) {
            throw engine::EngineError("the policy in force could not be read");
        }
        const std::string path = policy_file != nullptr ? policy_file : "";
        ec::PolicyFileResult loaded;
        if (!path.empty()) {
            loaded = ec::load_policy_file(path, public_key != nullptr ? public_key : "");
        }
        bool encrypted[ec::kCategoryCount];
        for (const ec::Category category : ec::kAllCategories) {
            encrypted[ec::category_index(category)] = ip::category_enabled(category);
        }
        const engine::ScanOutcome scan =
            engine::check_data_directory(ip::config().roots, encrypted, scan_budget_ms);
        const engine::AttestationCheck checks[EC_ATTESTATION_CHECKS] = {
            engine::check_ciphers(),
            engine::check_got_slots(),
            engine::check_key_memory(engine::read_own_smaps()),
            engine::check_policy_file(path, loaded, require_signed, in_force.digest,
                                      state.stale ? state.stale_reason : ""),
            scan.check,
        };
        for (int i = 0; i < EC_ATTESTATION_CHECKS; ++i) {
            copy_text(out->checks[i].name, sizeof(out->checks[i].name), checks[i].name);
            out->checks[i].passed = checks[i].passed;
            copy_text(out->checks[i].detail, sizeof(out->checks[i].detail), checks[i].detail);
        }
        out->check_count = EC_ATTESTATION_CHECKS;
        out->files_scanned = scan.files_scanned;
        out->scan_cut_short = scan.cut_short;
        return EC_OK;
    });
}

bool ec_engine_attestation_changed(const ec_attestation_report* previous,
                                   const ec_attestation_report* next) {
    try {
        const auto outcome = [](const ec_attestation_report* report) {
            std::vector<ec::CheckOutcome> checks;
            for (int i = 0; report != nullptr && i < report->check_count; ++i) {
                checks.push_back(
                    ec::CheckOutcome{report->checks[i].name, report->checks[i].passed});
            }
            return checks;
        };
        return ec::outcome_changed(outcome(previous), previous != nullptr, outcome(next));
    } catch (...) {
        return true;
    }
}

int64_t ec_engine_attestation_delay_ms(int64_t interval_ms) {
    return ec::jittered_delay_ms(
        interval_ms,
        randombytes_random() | (static_cast<std::uint64_t>(randombytes_random()) << 32));
}

}  // extern "C"
