// The C interface of the engine room (engine_api.h), its start-up part: the
// static_asserts that tie every mirrored size and enum of the C header to
// the C++ definition it mirrors, so the two cannot drift apart silently;
// then starting the instance, installing the layer, the self-test, the key's
// identity, the names of categories, degradations and ciphers, the staging
// directory's check, and the test hooks. Each entry point turns its C
// arguments into the engine's C++ types, runs the engine inside the one
// fence (engine_api_internal.hpp), and turns the result back. The other
// subjects have a file each: engine_api_policy.cpp, engine_api_events.cpp,
// engine_api_counters.cpp, engine_api_wal.cpp, engine_api_inspection.cpp and
// engine_api_attestation.cpp.
#include "engine/engine_api.h"

#include <chrono>
#include <cstddef>
#include <string_view>
#include <type_traits>

#include "core/category.hpp"
#include "core/counters.hpp"
#include "core/event_ring.hpp"
#include "core/instance_key.hpp"
#include "core/policy.hpp"
#include "core/sha256.hpp"
#include "core/shared_policy.hpp"
#include "core/wal_command.hpp"
#include "engine/counters.hpp"
#include "engine/engine_api_internal.hpp"
#include "engine/inspection.hpp"
#include "engine/policy_lifecycle.hpp"
#include "engine/policy_loading.hpp"
#include "engine/self_test.hpp"
#include "engine/startup.hpp"
#include "engine/test_hooks.hpp"
#include "interpose/layer.hpp"

using namespace engine::api;

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

char engine::api::g_key_id[EC_KEY_ID_BUFFER];

namespace {

ec_event_callback g_callback = nullptr;

void forward_event(ip::LayerEvent event, ec::Category category, const char* path, std::int64_t unit,
                   const char* detail) {
    if (g_callback != nullptr) {
        g_callback(static_cast<int>(event), static_cast<int>(ec::category_index(category)), path,
                   unit, detail);
    }
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
    return path != nullptr && ec::is_shell_safe_path(path);
}

const char* ec_engine_staging_directory_problem(const char* directory) {
    return ip::staging_directory_problem(directory);
}

void ec_engine_inject_category_fault(int category) {
    if (valid_category(category)) {
        engine::inject_category_fault(category_at(category));
    }
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
