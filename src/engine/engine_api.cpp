// The C interface of the engine room (engine_api.h): each entry point turns
// its C arguments into the engine's C++ types, runs the engine inside the
// one fence, and turns the result back. The static_asserts below tie every
// mirrored size and enum of the C header to the C++ definition it mirrors,
// so the two cannot drift apart silently.
#include "engine/engine_api.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "core/counters.hpp"
#include "core/crypto_error.hpp"
#include "core/policy.hpp"
#include "core/sha256.hpp"
#include "engine/counters.hpp"
#include "engine/errors.hpp"
#include "engine/inspection.hpp"
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
static_assert(mirrors({EC_POLICY_ACCEPTED, EC_POLICY_SIGNED_BUT_NO_FILE, EC_POLICY_FILE_REJECTED},
                      {PolicyVerdict::Accepted, PolicyVerdict::SignedButNoFile,
                       PolicyVerdict::FileRejected}),
              "policy verdicts");
static_assert(mirrors({EC_PATH_OK, EC_PATH_EMPTY, EC_PATH_TRAVERSAL, EC_PATH_OUTSIDE,
                       EC_PATH_MISSING, EC_PATH_NOT_REGULAR, EC_PATH_UNREADABLE},
                      {PathProblem::None, PathProblem::Empty, PathProblem::Traversal,
                       PathProblem::Outside, PathProblem::Missing, PathProblem::NotRegular,
                       PathProblem::Unreadable}),
              "path problems");
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
        const engine::PolicyResolution resolved = engine::resolve_policy(request);
        out->verdict = static_cast<int>(resolved.verdict);
        out->file_status = static_cast<int>(resolved.file_status);
        out->from_file = resolved.from_file;
        out->signed_ok = resolved.signed_ok;
        if (resolved.verdict != engine::PolicyVerdict::Accepted) {
            fill_error(error, resolved.error_number, resolved.detail.c_str());
            return EC_FAILED;
        }
        to_c_policy(resolved.policy, &out->policy);
        copy_text(out->digest, sizeof(out->digest), resolved.digest);
        copy_text(out->cipher_summary, sizeof(out->cipher_summary),
                  ec::cipher_summary(resolved.policy));
        return EC_OK;
    });
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
}

bool ec_engine_read_counters(int category, ec_counter_values* out) {
    if (!valid_category(category) || out == nullptr) {
        return false;
    }
    const engine::CounterSnapshot snapshot = engine::read_counters(category_at(category));
    out->files_encrypted = snapshot.files_encrypted;
    out->files_open = snapshot.files_open;
    out->bytes_encrypted = snapshot.bytes_encrypted;
    out->bytes_decrypted = snapshot.bytes_decrypted;
    out->failures = snapshot.failures;
    out->plaintext_fallbacks = snapshot.plaintext_fallbacks;
    out->integrity_failures = snapshot.integrity_failures;
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

bool ec_engine_expose_key_for_testing(const char* path) {
    return engine::expose_key_for_testing(path);
}

}  // extern "C"
