// The policy entry points of the C interface (engine_api.h): settling the
// start-up policy from the settings or the signed policy file, publishing it
// in shared memory, reading the policy in force with its freshness, and
// deciding a reload. The policy the layer was set up with stays in this
// process (inherited by fork): the shared block starts from it, and a reload
// tells from it what must wait for a restart.
#include "engine/engine_api.h"

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "core/policy.hpp"
#include "core/policy_lifecycle.hpp"
#include "core/shared_policy.hpp"
#include "engine/engine_api_internal.hpp"
#include "engine/errors.hpp"
#include "engine/policy_lifecycle.hpp"
#include "engine/policy_loading.hpp"
#include "interpose/layer.hpp"

using engine::ReloadVerdict;
using namespace engine::api;

ec::SharedPolicy* engine::api::g_shared_policy = nullptr;

namespace {

// The policy settled at start-up (the postmaster's, inherited by fork).
ec::Policy g_started_policy;
bool g_started_signed = false;
bool g_started_from_file = false;
std::int64_t g_loaded_at_ms = 0;

ec::Policy to_core_policy(const ec_policy& policy) {
    ec::Policy core;
    core.version = policy.version;
    for (int i = 0; i < EC_CATEGORY_COUNT; ++i) {
        core.category[i] =
            to_core_category(policy.encrypt[i], policy.degradation[i], policy.cipher[i]);
    }
    return core;
}

void to_c_policy(const ec::Policy& core, ec_policy* out) noexcept {
    copy_text(out->version, sizeof(out->version), core.version);
    for (int i = 0; i < EC_CATEGORY_COUNT; ++i) {
        out->encrypt[i] = core.category[i].enabled;
        out->degradation[i] = static_cast<int>(core.category[i].degradation);
        out->cipher[i] = static_cast<int>(core.category[i].cipher);
    }
}

}  // namespace

extern "C" {

ec_status ec_engine_resolve_policy(const ec_policy* from_settings, const char* policy_file,
                                   const char* public_key, bool require_signed,
                                   ec_policy_resolution* out, ec_error* error) {
    std::memset(out, 0, sizeof(*out));
    return fenced(error, [&] {
        engine::PolicyRequest request;
        request.from_settings = to_core_policy(*from_settings);
        request.policy_file = policy_file != nullptr ? policy_file : "";
        request.public_key = public_key != nullptr ? public_key : "";
        request.require_signed = require_signed;
        if (!request.policy_file.empty()) {
            request.accepted_serial = engine::read_accepted_serial(engine::kAcceptedSerialFile);
        }
        const engine::PolicyResolution resolved = engine::resolve_policy(request);
        out->verdict = static_cast<int>(resolved.verdict);
        out->file_status = static_cast<int>(resolved.file_status);
        out->from_file = resolved.from_file;
        out->signed_ok = resolved.signed_ok;
        if (resolved.verdict != engine::PolicyVerdict::Accepted) {
            fill_error(error, resolved.error_number, resolved.detail.c_str());
            return EC_FAILED;
        }
        // Only a verified serial moves the floor: an unsigned file's claim
        // could otherwise lock out every policy the control plane signs.
        if (resolved.signed_ok &&
            engine::raises_accepted_serial(resolved.policy.serial, request.accepted_serial)) {
            engine::record_accepted_serial(engine::kAcceptedSerialFile, resolved.policy.serial);
        }
        g_started_policy = resolved.policy;
        g_started_signed = resolved.signed_ok;
        g_started_from_file = resolved.from_file;
        g_loaded_at_ms = unix_ms_now();
        to_c_policy(resolved.policy, &out->policy);
        copy_text(out->digest, sizeof(out->digest), resolved.digest);
        copy_text(out->cipher_summary, sizeof(out->cipher_summary),
                  ec::cipher_summary(resolved.policy));
        return EC_OK;
    });
}

size_t ec_engine_policy_state_size(void) {
    return ec::SharedPolicy::bytes();
}

void ec_engine_attach_policy_state(void* shared, bool initialize) {
    auto* block =
        initialize ? ec::SharedPolicy::create(shared) : static_cast<ec::SharedPolicy*>(shared);
    if (initialize) {
        ec::PolicySnapshot snapshot;
        ec::snapshot_policy(g_started_policy, &snapshot);
        snapshot.generation = 1;
        snapshot.loaded_at_ms = g_loaded_at_ms;
        snapshot.signed_ok = g_started_signed;
        snapshot.from_file = g_started_from_file;
        copy_text(snapshot.digest, sizeof(snapshot.digest),
                  ec::policy_digest_hex(g_started_policy));
        block->publish(snapshot);
    }
    g_shared_policy = block;
    ip::attach_shared_policy(block);
}

bool ec_engine_read_policy_state(int64_t now_unix_ms, ec_policy_state* out) {
    std::memset(out, 0, sizeof(*out));
    ec::PolicySnapshot snapshot;
    if (g_shared_policy == nullptr || !g_shared_policy->read(&snapshot)) {
        return false;
    }
    try {
        const ec::Policy policy = ec::policy_of(snapshot);
        out->generation = snapshot.generation;
        to_c_policy(policy, &out->policy);
        copy_text(out->digest, sizeof(out->digest), snapshot.digest);
        copy_text(out->cipher_summary, sizeof(out->cipher_summary), ec::cipher_summary(policy));
        out->signed_ok = snapshot.signed_ok;
        out->from_file = snapshot.from_file;
        out->serial = snapshot.serial;
        out->has_not_after = snapshot.has_not_after;
        out->not_after_unix_ms = snapshot.not_after * 1000;
        out->has_max_key_age = snapshot.has_max_key_age;
        out->max_key_age_seconds = snapshot.max_key_age;
        out->loaded_at_unix_ms = snapshot.loaded_at_ms;
        out->pending_restart = snapshot.pending_restart;
        copy_text(out->pending_digest, sizeof(out->pending_digest), snapshot.pending_digest);
        copy_text(out->pending_detail, sizeof(out->pending_detail), snapshot.pending_detail);
        out->reloads_rejected = g_shared_policy->reloads_rejected.load(std::memory_order_relaxed);
        const ec::Freshness freshness =
            ec::evaluate_freshness(policy, now_unix_ms, ec_engine_key_created_at_unix_ms());
        out->stale = freshness.stale();
        out->has_deadline = freshness.deadline_ms.has_value();
        out->deadline_unix_ms = freshness.deadline_ms.value_or(0);
        out->time_left_ms = freshness.time_left_ms;
        copy_text(out->stale_reason, sizeof(out->stale_reason),
                  ec::stale_reason_text(policy, freshness));
        return true;
    } catch (...) {
        return false;
    }
}

ec_status ec_engine_reload_policy(const char* policy_file, const char* public_key,
                                  bool require_signed, int64_t now_unix_ms, ec_reload_report* out,
                                  ec_error* error) {
    std::memset(out, 0, sizeof(*out));
    out->verdict = EC_RELOAD_REJECTED;
    return fenced(error, [&] {
        ec::PolicySnapshot in_force;
        if (g_shared_policy == nullptr || !g_shared_policy->read(&in_force)) {
            throw engine::EngineError("the policy in force is not in shared memory");
        }
        const std::optional<std::int64_t> floor =
            engine::read_accepted_serial(engine::kAcceptedSerialFile);
        const ec::PolicyFileResult loaded = ec::load_policy_file(
            policy_file != nullptr ? policy_file : "", public_key != nullptr ? public_key : "");
        const engine::ReloadDecision decision = engine::decide_reload(
            loaded, require_signed, ec::policy_of(in_force), g_started_policy, floor);
        out->verdict = static_cast<int>(decision.verdict);
        out->file_status = static_cast<int>(decision.file_status);
        out->saved_errno = decision.error_number;
        out->serial = decision.policy.serial;
        copy_text(out->version, sizeof(out->version), decision.policy.version);
        copy_text(out->digest, sizeof(out->digest), decision.digest);
        copy_text(out->detail, sizeof(out->detail), decision.detail);
        ec::PolicySnapshot next = in_force;
        switch (decision.verdict) {
            case ReloadVerdict::Rejected:
            case ReloadVerdict::RolledBack:
                g_shared_policy->reloads_rejected.fetch_add(1, std::memory_order_relaxed);
                return EC_OK;
            case ReloadVerdict::Unchanged:
                if (!in_force.pending_restart) {
                    return EC_OK;
                }
                // The file went back to the policy in force: nothing waits.
                next.pending_restart = false;
                next.pending_digest[0] = '\0';
                next.pending_detail[0] = '\0';
                break;
            case ReloadVerdict::PendingRestart:
                next.pending_restart = true;
                copy_text(next.pending_digest, sizeof(next.pending_digest), decision.digest);
                copy_text(next.pending_detail, sizeof(next.pending_detail), decision.detail);
                break;
            case ReloadVerdict::Applied: {
                // The floor moves first: a policy in force is never newer
                // than what the next start-up will insist on.
                if (loaded.signed_ok &&
                    engine::raises_accepted_serial(decision.policy.serial, floor)) {
                    engine::record_accepted_serial(engine::kAcceptedSerialFile,
                                                   decision.policy.serial);
                }
                next = ec::PolicySnapshot();
                ec::snapshot_policy(decision.policy, &next);
                next.generation = in_force.generation + 1;
                next.loaded_at_ms = now_unix_ms;
                next.signed_ok = loaded.signed_ok;
                next.from_file = true;
                copy_text(next.digest, sizeof(next.digest), decision.digest);
                break;
            }
        }
        g_shared_policy->publish(next);
        return EC_OK;
    });
}

}  // extern "C"
