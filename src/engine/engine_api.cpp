// The C interface of the engine room (engine_api.h): each entry point turns
// its C arguments into the engine's C++ types, runs the engine inside the
// one fence, and turns the result back. The static_asserts below tie every
// mirrored size and enum of the C header to the C++ definition it mirrors,
// so the two cannot drift apart silently.
#include "engine/engine_api.h"

#include <sodium.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/attestation_schedule.hpp"
#include "core/counters.hpp"
#include "core/crypto_error.hpp"
#include "core/event_ring.hpp"
#include "core/policy.hpp"
#include "core/policy_lifecycle.hpp"
#include "core/sha256.hpp"
#include "core/shared_policy.hpp"
#include "engine/attestation.hpp"
#include "engine/counters.hpp"
#include "engine/errors.hpp"
#include "engine/inspection.hpp"
#include "engine/policy_lifecycle.hpp"
#include "engine/policy_loading.hpp"
#include "engine/sealed_segment.hpp"
#include "engine/self_test.hpp"
#include "engine/startup.hpp"
#include "engine/test_hooks.hpp"
#include "engine/wal_segments.hpp"
#include "interpose/wal_command.hpp"
#include "interpose/wal_staging.hpp"

namespace ec = ephemeral_crypt;
namespace engine = ephemeral_crypt::engine;
namespace ip = ephemeral_crypt::interpose;

// ---- The C header mirrors these C++ definitions ----

namespace {

// True when each C value equals the C++ enumerator beside it.
template <class Enum, std::size_t N>
constexpr bool mirrors(const int (&c_values)[N], const Enum (&cpp_values)[N]) {
    for (std::size_t i = 0; i < N; ++i) {
        if (c_values[i] != static_cast<int>(cpp_values[i])) {
            return false;
        }
    }
    return true;
}

using ec::Category;
using ec::Degradation;
using ec::FileCipher;
using ec::PolicyFileStatus;
using engine::PathProblem;
using engine::PolicyVerdict;
using engine::ReloadVerdict;
using ip::LayerEvent;

}  // namespace

static_assert(EC_CATEGORY_COUNT == ec::kCategoryCount);
static_assert(mirrors({EC_CATEGORY_TEMP_RELATION, EC_CATEGORY_SPILL, EC_CATEGORY_WAL},
                      {static_cast<int>(ec::category_index(Category::TempRelation)),
                       static_cast<int>(ec::category_index(Category::Spill)),
                       static_cast<int>(ec::category_index(Category::Wal))}),
              "category indexes");
static_assert(mirrors({EC_FAIL_CLOSED, EC_FAIL_OPEN_AUDIT},
                      {Degradation::FailClosed, Degradation::FailOpenAudit}),
              "degradation classes");
static_assert(mirrors({EC_CIPHER_AES_256_XTS, EC_CIPHER_AES_256_GCM},
                      {FileCipher::Aes256Xts, FileCipher::Aes256Gcm}),
              "ciphers");
static_assert(mirrors({EC_EVENT_IO_FAILURE, EC_EVENT_HEADER_REJECTED, EC_EVENT_PLAINTEXT_FALLBACK,
                       EC_EVENT_BYPASS_REFUSED, EC_EVENT_INTEGRITY_FAILURE,
                       EC_EVENT_LOCKED_MEMORY_EXHAUSTED, EC_EVENT_STAGING_FAILED},
                      {LayerEvent::IoFailure, LayerEvent::HeaderRejected,
                       LayerEvent::PlaintextFallback, LayerEvent::BypassRefused,
                       LayerEvent::IntegrityFailure, LayerEvent::LockedMemoryExhausted,
                       LayerEvent::StagingFailed}),
              "layer events");
static_assert(mirrors({EC_POLICY_OK, EC_POLICY_MISSING, EC_POLICY_UNREADABLE, EC_POLICY_MALFORMED,
                       EC_POLICY_UNSIGNED, EC_POLICY_BAD_SIGNATURE},
                      {PolicyFileStatus::Ok, PolicyFileStatus::Missing,
                       PolicyFileStatus::Unreadable, PolicyFileStatus::Malformed,
                       PolicyFileStatus::Unsigned, PolicyFileStatus::BadSignature}),
              "policy file statuses");
static_assert(mirrors({EC_POLICY_ACCEPTED, EC_POLICY_SIGNED_BUT_NO_FILE, EC_POLICY_FILE_REJECTED,
                       EC_POLICY_ROLLED_BACK},
                      {PolicyVerdict::Accepted, PolicyVerdict::SignedButNoFile,
                       PolicyVerdict::FileRejected, PolicyVerdict::RolledBack}),
              "policy verdicts");
static_assert(mirrors({EC_RELOAD_APPLIED, EC_RELOAD_UNCHANGED, EC_RELOAD_PENDING_RESTART,
                       EC_RELOAD_REJECTED, EC_RELOAD_ROLLED_BACK},
                      {ReloadVerdict::Applied, ReloadVerdict::Unchanged,
                       ReloadVerdict::PendingRestart, ReloadVerdict::Rejected,
                       ReloadVerdict::RolledBack}),
              "reload verdicts");
// The event record mirrors the ring's event, field for field.
static_assert(sizeof(ec_event_record{}.backend_type) == sizeof(ec::DecisionEvent{}.backend_type) &&
              sizeof(ec_event_record{}.action) == sizeof(ec::DecisionEvent{}.action) &&
              sizeof(ec_event_record{}.file) == sizeof(ec::DecisionEvent{}.file) &&
              sizeof(ec_event_record{}.detail) == sizeof(ec::DecisionEvent{}.detail) &&
              sizeof(ec_event_record{}.policy_version) ==
                  sizeof(ec::DecisionEvent{}.policy_version) &&
              sizeof(ec_event_record{}.policy_digest) ==
                  sizeof(ec::DecisionEvent{}.policy_digest) &&
              sizeof(ec_event_record{}.key_id) == sizeof(ec::DecisionEvent{}.key_id));
static_assert(EC_PENDING_DETAIL_BUFFER == ec::kPendingDetailBytes &&
              sizeof(ec_policy_state{}.pending_digest) == sizeof(ec::PolicySnapshot{}.digest));
static_assert(mirrors({EC_PATH_OK, EC_PATH_EMPTY, EC_PATH_TRAVERSAL, EC_PATH_OUTSIDE,
                       EC_PATH_MISSING, EC_PATH_NOT_REGULAR, EC_PATH_UNREADABLE},
                      {PathProblem::None, PathProblem::Empty, PathProblem::Traversal,
                       PathProblem::Outside, PathProblem::Missing, PathProblem::NotRegular,
                       PathProblem::Unreadable}),
              "path problems");
// The counter values mirror EC_CATEGORY_COUNTERS: as many fields, each at
// the offset and of the type the engine's snapshot gives it.
static_assert(EC_COUNTER_COUNT == ec::kCounterFieldCount &&
                  sizeof(ec_counter_values) == sizeof(engine::CounterSnapshot),
              "ec_counter_values lists every counter of EC_CATEGORY_COUNTERS");
#define EC_MIRRORS_COUNTER(name, snapshot_type, meaning)                                          \
    static_assert(offsetof(ec_counter_values, name) == offsetof(engine::CounterSnapshot, name) && \
                      std::is_same_v<decltype(ec_counter_values::name), snapshot_type>,           \
                  "ec_counter_values." #name " mirrors its place in EC_CATEGORY_COUNTERS");
EC_CATEGORY_COUNTERS(EC_MIRRORS_COUNTER)
#undef EC_MIRRORS_COUNTER
// The text buffers: key id, digest and policy version, and the header
// status names the file report carries.
static_assert(EC_KEY_ID_BUFFER == 2 * ec::kKeyIdBytes + 1 &&
              sizeof(ec_file_report{}.key_id) == EC_KEY_ID_BUFFER);
static_assert(EC_DIGEST_BUFFER == 2 * ec::kSha256Bytes + 1 &&
              sizeof(ec_policy_resolution{}.digest) == EC_DIGEST_BUFFER);
static_assert(EC_POLICY_VERSION_BUFFER == ec::kPolicyVersionMaxBytes + 1 &&
              sizeof(ec_policy{}.version) == EC_POLICY_VERSION_BUFFER);
static_assert(sizeof(ec_file_report{}.header_status) >
              std::string_view("unsupported_version").size());
static_assert(EC_CIPHER_SUMMARY_BUFFER >
              std::string_view("AES-256-GCM (temp_relation, spill), AES-256-XTS (wal)").size());

namespace {

// Where the server keeps what start-up reads and writes: its working
// directory is the data directory.
constexpr char kWalDir[] = "pg_wal";

char g_key_id[EC_KEY_ID_BUFFER];
ec_event_callback g_callback = nullptr;
std::vector<engine::FileReport> g_scan_results;

// The policy settled at start-up (the postmaster's, inherited by fork), and
// the shared block every process reads the policy in force from.
ec::Policy g_started_policy;
bool g_started_signed = false;
bool g_started_from_file = false;
std::int64_t g_loaded_at_ms = 0;
ec::SharedPolicy* g_shared_policy = nullptr;
ec::EventRing* g_event_ring = nullptr;
ec::RingSnapshot g_event_snapshot;

std::int64_t unix_ms_now() noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void copy_text(char* out, std::size_t out_len, const std::string& text) noexcept {
    std::snprintf(out, out_len, "%s", text.c_str());
}

void fill_error(ec_error* error, int saved_errno, const char* message) noexcept {
    if (error != nullptr) {
        error->status = EC_FAILED;
        error->saved_errno = saved_errno;
        std::snprintf(error->message, sizeof(error->message), "%s", message);
    }
}

// The one place where C++ exceptions stop: every entry point that can fail
// runs its body through this, so nothing is ever thrown into PostgreSQL's C
// frames. The body returns EC_OK or reports a failure through fill_error;
// an exception becomes the message and errno it carries.
template <class Body>
ec_status fenced(ec_error* error, Body&& body) noexcept {
    if (error != nullptr) {
        error->status = EC_OK;
        error->saved_errno = 0;
        error->message[0] = '\0';
    }
    try {
        return body();
    } catch (const engine::EngineError& e) {
        fill_error(error, e.error_number(), e.what());
    } catch (const std::bad_alloc&) {
        fill_error(error, 0, "out of memory");
    } catch (const std::exception& e) {
        fill_error(error, 0, e.what());
    } catch (...) {
        fill_error(error, 0, "unexpected C++ exception");
    }
    return EC_FAILED;
}

bool valid_category(int category) noexcept {
    return category >= 0 && category < EC_CATEGORY_COUNT;
}

ec::Category category_at(int index) noexcept {
    return ec::kAllCategories[index];
}

ec::Degradation degradation_from(int value) noexcept {
    return value == EC_FAIL_OPEN_AUDIT ? ec::Degradation::FailOpenAudit
                                       : ec::Degradation::FailClosed;
}

ec::FileCipher cipher_from(int value) noexcept {
    return value == EC_CIPHER_AES_256_GCM ? ec::FileCipher::Aes256Gcm : ec::FileCipher::Aes256Xts;
}

void forward_event(ip::LayerEvent event, ec::Category category, const char* path, std::int64_t unit,
                   const char* detail) {
    if (g_callback != nullptr) {
        g_callback(static_cast<int>(event), static_cast<int>(ec::category_index(category)), path,
                   unit, detail);
    }
}

ec::CategoryPolicy to_core_category(bool encrypt, int degradation, int cipher) noexcept {
    ec::CategoryPolicy core;
    core.enabled = encrypt;
    core.degradation = degradation_from(degradation);
    core.cipher = cipher_from(cipher);
    return core;
}

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

void to_c_report(const engine::FileReport& report, ec_file_report* out) noexcept {
    std::memset(out, 0, sizeof(*out));
    copy_text(out->path, sizeof(out->path), report.path);
    out->category = report.category ? static_cast<int>(ec::category_index(*report.category)) : -1;
    out->has_header = report.has_header;
    copy_text(out->header_status, sizeof(out->header_status), report.header_status);
    out->encrypted = report.encrypted;
    out->plaintext_audit = report.plaintext_audit;
    copy_text(out->key_id, sizeof(out->key_id), report.key_id);
    out->current_instance = report.current_instance;
    out->physical_size = report.physical_size;
    out->logical_size = report.logical_size;
}

}  // namespace

extern "C" {

ec_status ec_engine_start(const ec_settings* settings, ec_event_callback callback,
                          ec_error* error) {
    return fenced(error, [&] {
        engine::StartSettings start;
        for (int i = 0; i < EC_CATEGORY_COUNT; ++i) {
            start.policy[i] = to_core_category(settings->encrypt[i], settings->degradation[i],
                                               settings->cipher[i]);
        }
        start.data_dir = settings->data_dir;
        start.wal_staging_dir = settings->wal_staging_dir ? settings->wal_staging_dir : "";
        start.on_event = forward_event;
        g_callback = callback;
        engine::start_instance(start);
        copy_text(g_key_id, sizeof(g_key_id), engine::instance_key()->id_hex());
        return EC_OK;
    });
}

ec_status ec_engine_install_layer(bool inject_failure, int* objects_patched, int* slots_patched,
                                  ec_error* error) {
    return fenced(error, [&] {
        const ip::InstallReport report = engine::install_layer(inject_failure);
        *objects_patched = report.objects_patched;
        *slots_patched = report.slots_patched;
        return EC_OK;
    });
}

ec_status ec_engine_self_test(ec_error* error) {
    return fenced(error, [&] {
        engine::run_self_test(engine::server_file_calls(), "");
        return EC_OK;
    });
}

const char* ec_engine_key_id(void) {
    return g_key_id;
}

int64_t ec_engine_key_created_at_unix_ms(void) {
    const ec::InstanceKey* key = engine::instance_key();
    if (key == nullptr) {
        return 0;
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               key->created_at().time_since_epoch())
        .count();
}

const char* ec_engine_category_name(int category) {
    return valid_category(category) ? ec::category_name(category_at(category)).data() : "unknown";
}

const char* ec_engine_degradation_name(int degradation) {
    return ec::degradation_name(degradation_from(degradation)).data();
}

const char* ec_engine_cipher_name(int cipher) {
    return ec::file_cipher_name(cipher_from(cipher)).data();
}

bool ec_engine_is_shell_safe_path(const char* path) {
    return path != nullptr && ip::is_shell_safe_path(path);
}

const char* ec_engine_staging_directory_problem(const char* directory) {
    const int error = ip::staging_directory_error(directory);
    if (error == 0) {
        return nullptr;
    }
    errno = error;
    return ip::staging_problem(error);
}

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

size_t ec_engine_event_ring_size(int capacity) {
    return ec::EventRing::bytes_for(capacity > 0 ? static_cast<std::size_t>(capacity) : 0);
}

void ec_engine_attach_event_ring(void* shared, int capacity, bool initialize) {
    g_event_ring = initialize ? ec::EventRing::create(
                                    shared, capacity > 0 ? static_cast<std::size_t>(capacity) : 0)
                              : static_cast<ec::EventRing*>(shared);
}

bool ec_engine_record_event(ec_event_record* event) {
    if (g_event_ring == nullptr) {
        return false;
    }
    // Copied field by field, with snprintf, so nothing here allocates.
    ec::DecisionEvent stored;
    stored.time_ms = event->time_unix_ms != 0 ? event->time_unix_ms : unix_ms_now();
    stored.pid = event->pid;
    stored.error_number = event->error_number;
    stored.category = event->category;
    std::snprintf(stored.backend_type, sizeof(stored.backend_type), "%s", event->backend_type);
    std::snprintf(stored.action, sizeof(stored.action), "%s", event->action);
    std::snprintf(stored.file, sizeof(stored.file), "%s", event->file);
    std::snprintf(stored.detail, sizeof(stored.detail), "%s", event->detail);
    ec::PolicySnapshot policy;
    if (g_shared_policy != nullptr && g_shared_policy->read(&policy)) {
        // Truncated to the event's field (a version may be up to 256 bytes).
        std::memcpy(stored.policy_version, policy.version,
                    std::min(strnlen(policy.version, sizeof(policy.version)),
                             sizeof(stored.policy_version) - 1));
        std::snprintf(stored.policy_digest, sizeof(stored.policy_digest), "%s", policy.digest);
    }
    std::snprintf(stored.key_id, sizeof(stored.key_id), "%s", g_key_id);
    // What was stored, for the caller's log line.
    event->id = g_event_ring->push(stored);
    event->time_unix_ms = stored.time_ms;
    std::snprintf(event->policy_version, sizeof(event->policy_version), "%s",
                  stored.policy_version);
    std::snprintf(event->policy_digest, sizeof(event->policy_digest), "%s", stored.policy_digest);
    std::snprintf(event->key_id, sizeof(event->key_id), "%s", stored.key_id);
    return true;
}

ec_status ec_engine_snapshot_events(int* count, uint64_t* dropped, ec_error* error) {
    *count = 0;
    *dropped = 0;
    return fenced(error, [&] {
        if (g_event_ring == nullptr) {
            throw engine::EngineError("the event ring is not in shared memory");
        }
        g_event_snapshot = g_event_ring->snapshot();
        *count = static_cast<int>(g_event_snapshot.events.size());
        *dropped = g_event_snapshot.dropped;
        return EC_OK;
    });
}

bool ec_engine_event_at(int index, ec_event_record* out) {
    if (index < 0 || static_cast<std::size_t>(index) >= g_event_snapshot.events.size()) {
        return false;
    }
    const ec::DecisionEvent& event = g_event_snapshot.events[static_cast<std::size_t>(index)];
    std::memset(out, 0, sizeof(*out));
    out->id = event.id;
    out->time_unix_ms = event.time_ms;
    out->pid = event.pid;
    out->error_number = event.error_number;
    out->category = event.category;
    std::memcpy(out->backend_type, event.backend_type, sizeof(out->backend_type));
    std::memcpy(out->action, event.action, sizeof(out->action));
    std::memcpy(out->file, event.file, sizeof(out->file));
    std::memcpy(out->detail, event.detail, sizeof(out->detail));
    std::memcpy(out->policy_version, event.policy_version, sizeof(out->policy_version));
    std::memcpy(out->policy_digest, event.policy_digest, sizeof(out->policy_digest));
    std::memcpy(out->key_id, event.key_id, sizeof(out->key_id));
    // Every text NUL-terminated, whatever the shared copy held.
    out->backend_type[sizeof(out->backend_type) - 1] = '\0';
    out->action[sizeof(out->action) - 1] = '\0';
    out->file[sizeof(out->file) - 1] = '\0';
    out->detail[sizeof(out->detail) - 1] = '\0';
    out->policy_version[sizeof(out->policy_version) - 1] = '\0';
    out->policy_digest[sizeof(out->policy_digest) - 1] = '\0';
    out->key_id[sizeof(out->key_id) - 1] = '\0';
    return true;
}

void ec_engine_event_counts(uint64_t* recorded, uint64_t* dropped) {
    *recorded = 0;
    *dropped = 0;
    if (g_event_ring != nullptr) {
        g_event_ring->counts(recorded, dropped);
    }
}

ec_status ec_engine_encrypt_plaintext_wal(int* converted, ec_error* error) {
    *converted = 0;
    return fenced(error, [&] {
        *converted = engine::encrypt_plaintext_segments(kWalDir, engine::instance_key());
        return EC_OK;
    });
}

ec_status ec_engine_find_foreign_wal(int* segments, char key_id[EC_KEY_ID_BUFFER],
                                     ec_error* error) {
    *segments = 0;
    key_id[0] = '\0';
    return fenced(error, [&] {
        const engine::ForeignWal found =
            engine::find_foreign_segments(kWalDir, engine::instance_key());
        *segments = found.segments;
        copy_text(key_id, EC_KEY_ID_BUFFER, found.first_key_id);
        return EC_OK;
    });
}

ec_status ec_engine_remove_foreign_wal(int* removed, ec_error* error) {
    *removed = 0;
    return fenced(error, [&] {
        *removed = engine::remove_foreign_segments(kWalDir, engine::instance_key());
        return EC_OK;
    });
}

ec_status ec_engine_leave_checkpoint_readable(const char* segment_path, uint64_t checkpoint_offset,
                                              uint64_t segment_bytes, ec_error* error) {
    return fenced(error, [&] {
        engine::leave_checkpoint_readable(segment_path, checkpoint_offset, segment_bytes);
        engine::remove_encrypted_segments(kWalDir, engine::instance_key());
        return EC_OK;
    });
}

size_t ec_engine_read_plaintext_segment_start(const char* segment_path, uint8_t* buf, size_t len) {
    return engine::read_plaintext_start(segment_path, buf, len);
}

size_t ec_engine_counters_size(size_t processes) {
    return ec::SharedCounters::bytes_for(processes);
}

void ec_engine_attach_counters(void* shared, size_t processes, bool initialize, bool merge_local) {
    auto* counters = initialize ? ec::SharedCounters::create(shared, processes)
                                : static_cast<ec::SharedCounters*>(shared);
    ip::attach_counters(counters, merge_local);
}

void ec_engine_detach_counters(void) {
    ip::detach_counters();
    // The policy block goes with the rest of shared memory: the layer falls
    // back to the start-up policy (whose WAL cipher is the only one a
    // postmaster's exit uses) instead of reading unmapped memory.
    ip::attach_shared_policy(nullptr);
    g_shared_policy = nullptr;
    g_event_ring = nullptr;
}

bool ec_engine_read_counters(int category, ec_counter_values* out) {
    if (!valid_category(category) || out == nullptr) {
        return false;
    }
    const engine::CounterSnapshot snapshot = engine::read_counters(category_at(category));
#define EC_COPY_COUNTER(name, snapshot_type, meaning) out->name = snapshot.name;
    EC_CATEGORY_COUNTERS(EC_COPY_COUNTER)
#undef EC_COPY_COUNTER
    return true;
}

ec_status ec_engine_inspect_file(const char* path, ec_file_report* out, int* problem,
                                 ec_error* error) {
    *problem = EC_PATH_UNREADABLE;
    return fenced(error, [&] {
        const engine::Inspection inspection = engine::inspect_file(
            path != nullptr ? path : "", ip::config().roots, engine::instance_key());
        *problem = static_cast<int>(inspection.problem);
        if (inspection.problem != engine::PathProblem::None) {
            fill_error(error, inspection.error_number, inspection.message.c_str());
            return EC_FAILED;
        }
        to_c_report(inspection.report, out);
        return EC_OK;
    });
}

ec_status ec_engine_scan(int* found, ec_error* error) {
    *found = 0;
    g_scan_results.clear();
    return fenced(error, [&] {
        g_scan_results = engine::scan_data_directory(ip::config().roots, engine::instance_key());
        *found = static_cast<int>(g_scan_results.size());
        return EC_OK;
    });
}

bool ec_engine_scan_result(int index, ec_file_report* out) {
    if (index < 0 || static_cast<std::size_t>(index) >= g_scan_results.size()) {
        return false;
    }
    to_c_report(g_scan_results[static_cast<std::size_t>(index)], out);
    return true;
}

void ec_engine_inject_category_fault(int category) {
    if (valid_category(category)) {
        engine::inject_category_fault(category_at(category));
    }
}

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

void ec_engine_repatch_slots(void) {
    ip::patch_new_objects();
}

bool ec_engine_divert_slot_for_testing(void) {
    return ip::divert_slot_for_testing();
}

bool ec_engine_expose_key_for_testing(const char* path) {
    return engine::expose_key_for_testing(path);
}

}  // extern "C"
