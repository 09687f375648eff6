// The start-up policy decision (see policy_loading.hpp).
#include "engine/policy_loading.hpp"

#include "core/policy_lifecycle.hpp"
#include "engine/errors.hpp"

namespace ephemeral_crypt::engine {

namespace {

bool refuses_the_start(PolicyFileStatus status, bool require_signed) noexcept {
    switch (status) {
        case PolicyFileStatus::Ok:
            return false;
        case PolicyFileStatus::Unsigned:
            return require_signed;
        case PolicyFileStatus::Missing:
        case PolicyFileStatus::Unreadable:
        case PolicyFileStatus::Malformed:
        case PolicyFileStatus::BadSignature:
            break;
    }
    return true;
}

}  // namespace

PolicyResolution resolve_policy(const PolicyRequest& request) {
    PolicyResolution resolution;
    resolution.policy = request.from_settings;
    resolution.from_file = !request.policy_file.empty();
    if (!resolution.from_file) {
        if (request.require_signed) {
            resolution.verdict = PolicyVerdict::SignedButNoFile;
            return resolution;
        }
    } else {
        PolicyFileResult loaded = load_policy_file(request.policy_file, request.public_key);
        resolution.file_status = loaded.status;
        if (refuses_the_start(loaded.status, request.require_signed)) {
            resolution.verdict = PolicyVerdict::FileRejected;
            resolution.detail = std::move(loaded.error);
            resolution.error_number = loaded.error_number;
            return resolution;
        }
        if (request.accepted_serial &&
            compare_serial(loaded.policy.serial, *request.accepted_serial) == SerialOrder::Older) {
            resolution.verdict = PolicyVerdict::RolledBack;
            resolution.detail = "serial " + std::to_string(loaded.policy.serial) +
                                " is older than serial " +
                                std::to_string(*request.accepted_serial) +
                                ", the newest policy this data directory has accepted";
            return resolution;
        }
        resolution.policy = std::move(loaded.policy);
        resolution.signed_ok = loaded.status == PolicyFileStatus::Ok;
    }
    resolution.digest = policy_digest_hex(resolution.policy);
    if (resolution.digest.empty()) {
        throw EngineError("could not compute the policy digest");
    }
    return resolution;
}

}  // namespace ephemeral_crypt::engine
