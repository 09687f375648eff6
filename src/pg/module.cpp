/*-------------------------------------------------------------------------
 *
 * module.cpp
 *		_PG_init, settings, guard rails and shared memory of ephemeral_crypt.
 *
 * Everything that decides whether the server may start happens here, in the
 * postmaster, before any child exists: the settings are read, the guard rails
 * checked, the instance key created, the file-access layer installed and the
 * self-test run. Any failure is FATAL, because a server that was asked to
 * encrypt must not come up writing plaintext. Children inherit the key and
 * the patched GOTs by fork.
 *
 *-------------------------------------------------------------------------
 */
#include "pg/pg_includes.hpp"

#include "pg/state.hpp"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

EphemeralCryptState ec_state;
char* ec_policy_version = nullptr;

namespace {

char* policy_file = nullptr;
char* policy_public_key = nullptr;
bool require_signed_policy = false;
bool encrypt_temp_relations = true;
bool encrypt_spill_files = true;
bool encrypt_wal = false;
int degradation_setting[EC_CATEGORY_COUNT] = {EC_FAIL_CLOSED, EC_FAIL_CLOSED, EC_FAIL_CLOSED};

// Test-only fault injection, honoured only when the server's environment
// carries EPHEMERAL_CRYPT_TEST_FAULTS=1, so a stray setting in production
// stops the server instead of weakening it.
enum TestFault { FAULT_NONE = -1, FAULT_INSTALL_LAYER = -2 };
int test_fault = FAULT_NONE;
const struct config_enum_entry test_fault_options[] = {
    {"none", FAULT_NONE, false}, {"install_layer", FAULT_INSTALL_LAYER, false},
    {"temp_relation", 0, false}, {"spill", 1, false},
    {"wal", 2, false},           {nullptr, 0, false},
};

const struct config_enum_entry degradation_options[] = {
    {"fail_closed", EC_FAIL_CLOSED, false},
    {"fail_open_audit", EC_FAIL_OPEN_AUDIT, false},
    {nullptr, 0, false},
};

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;
bool counters_attached_before = false;

const char* const event_names[] = {
    "encrypted I/O failed",
    "file rejected",
    "file written in plaintext",
    "bypass refused",
};

// Called by the layer as a wrapper returns, with no lock held and no C++
// object alive in the calling frames, so ereport is safe; WARNING never
// longjmps, even inside a critical section.
void report_layer_event(int event, int category, const char* path, const char* detail) {
    ereport(WARNING,
            (errcode(event == EC_EVENT_PLAINTEXT_FALLBACK ? ERRCODE_WARNING : ERRCODE_IO_ERROR),
             errmsg("ephemeral_crypt: %s: file \"%s\", category %s, key %s", event_names[event],
                    path, ec_bridge_category_name(category), ec_bridge_key_id()),
             errdetail("%s", detail)));
}

void define_settings() {
    DefineCustomBoolVariable(
        "ephemeral_crypt.encrypt_temp_relations", "Encrypts the files of temporary relations.",
        nullptr, &encrypt_temp_relations, true, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "ephemeral_crypt.encrypt_spill_files",
        "Encrypts spill files: work_mem temporary files, shared filesets and logical decoding "
        "spills.",
        nullptr, &encrypt_spill_files, true, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "ephemeral_crypt.encrypt_wal", "Encrypts local WAL segments under the instance key.",
        "Local WAL then survives only as long as the instance: durability must come from a "
        "standby or an archive_library module.",
        &encrypt_wal, false, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "ephemeral_crypt.policy_version", "Policy version declared by the control plane.", nullptr,
        &ec_policy_version, "", PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomEnumVariable("ephemeral_crypt.temp_relation_degradation",
                             "What happens when a temporary relation file cannot be encrypted.",
                             nullptr, &degradation_setting[0], EC_FAIL_CLOSED, degradation_options,
                             PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomEnumVariable("ephemeral_crypt.spill_degradation",
                             "What happens when a spill file cannot be encrypted.", nullptr,
                             &degradation_setting[1], EC_FAIL_CLOSED, degradation_options,
                             PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomEnumVariable(
        "ephemeral_crypt.wal_degradation",
        "What happens when WAL cannot be encrypted; only fail_closed is accepted.", nullptr,
        &degradation_setting[2], EC_FAIL_CLOSED, degradation_options, PGC_POSTMASTER, 0, nullptr,
        nullptr, nullptr);
    DefineCustomStringVariable(
        "ephemeral_crypt.policy_file",
        "Policy file (version, category settings, Ed25519 signature); it overrides the "
        "per-category settings.",
        "Relative paths are taken from the data directory.", &policy_file, "", PGC_POSTMASTER, 0,
        nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "ephemeral_crypt.policy_public_key",
        "Ed25519 public key (hex or base64) that policy files must be signed with.", nullptr,
        &policy_public_key, "", PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "ephemeral_crypt.require_signed_policy",
        "Refuses to start unless the policy file is signed by ephemeral_crypt.policy_public_key.",
        nullptr, &require_signed_policy, false, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomEnumVariable(
        "ephemeral_crypt.test_fault",
        "Test only: injects an encryption failure (requires EPHEMERAL_CRYPT_TEST_FAULTS=1).",
        nullptr, &test_fault, FAULT_NONE, test_fault_options, PGC_POSTMASTER,
        GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("ephemeral_crypt");
}

bool test_faults_allowed() {
    const char* allowed = getenv("EPHEMERAL_CRYPT_TEST_FAULTS");
    return allowed != nullptr && strcmp(allowed, "1") == 0;
}

void check_test_fault() {
    if (test_fault == FAULT_NONE) {
        return;
    }
    if (!test_faults_allowed()) {
        ereport(FATAL,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                 errmsg("ephemeral_crypt.test_fault is a test-only setting"),
                 errhint("Remove ephemeral_crypt.test_fault from the configuration; tests enable "
                         "it with EPHEMERAL_CRYPT_TEST_FAULTS=1 in the server's environment.")));
    }
    ereport(WARNING, (errmsg("ephemeral_crypt: test fault \"%s\" is active",
                             GetConfigOption("ephemeral_crypt.test_fault", false, false))));
}

void check_guard_rails() {
    const bool encrypt_wal = ec_state.settings.encrypt[2];
    if (encrypt_wal && ec_state.settings.degradation[2] != EC_FAIL_CLOSED) {
        ereport(FATAL,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                 errmsg("ephemeral_crypt.wal_degradation must be fail_closed"),
                 errdetail("WAL written in plaintext after an encryption failure would silently "
                           "defeat WAL encryption."),
                 errhint("Set ephemeral_crypt.wal_degradation = fail_closed, or remove it.")));
    }
    const char* archive_library = GetConfigOption("archive_library", true, false);
    if (encrypt_wal && XLogArchiveMode != ARCHIVE_MODE_OFF &&
        (archive_library == nullptr || archive_library[0] == '\0') &&
        XLogArchiveCommand != nullptr && XLogArchiveCommand[0] != '\0') {
        ereport(FATAL,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                 errmsg("ephemeral_crypt.encrypt_wal cannot be combined with archive_command"),
                 errdetail("archive_command runs an external program that would copy encrypted "
                           "WAL, readable by no other instance, into the archive."),
                 errhint("Use an archive_library module (it runs in-process and archives "
                         "plaintext WAL), or set ephemeral_crypt.encrypt_wal = off.")));
    }
#if PG_VERSION_NUM >= 180000 && defined(IOMETHOD_IO_URING_ENABLED)
    // Asynchronous I/O (PostgreSQL 18 and 19) carries one kind of file I/O
    // only: reads of relation blocks into shared and local buffers
    // (smgrstartreadv, from the buffer manager's read streams). BufFile, WAL
    // and logical decoding spills stay synchronous. io_method = worker runs
    // local-buffer reads, that is temporary tables, synchronously in the
    // backend through libc, and I/O workers are forked from the postmaster
    // like any other child, so they inherit the layer. io_method = io_uring
    // submits those reads to the kernel itself, past libc: it would read a
    // temporary table's ciphertext as pages. It is refused only then.
    if (ec_state.settings.encrypt[0] && io_method == IOMETHOD_IO_URING) {
        ereport(FATAL,
                (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                 errmsg("ephemeral_crypt.encrypt_temp_relations cannot be combined with "
                        "io_method = io_uring"),
                 errdetail("With io_method = io_uring, the server reads temporary tables' pages "
                           "straight from the kernel without calling libc, so the encryption "
                           "layer would not see those reads."),
                 errhint("Set io_method = worker (the default) or io_method = sync, or set "
                         "ephemeral_crypt.encrypt_temp_relations = off.")));
    }
#endif
}

const char* policy_problem(int status) {
    switch (status) {
        case EC_POLICY_MISSING:
            return "the policy file does not exist";
        case EC_POLICY_UNREADABLE:
            return "the policy file cannot be read";
        case EC_POLICY_MALFORMED:
            return "the policy file is malformed";
        case EC_POLICY_UNSIGNED:
            return "the policy file is not signed, or no public key is configured to check it";
        case EC_POLICY_BAD_SIGNATURE:
            return "the policy file's signature does not verify";
        default:
            return "the policy file was rejected";
    }
}

// The effective policy comes from the settings, or from the policy file when
// one is named. A named file that is missing, unreadable, malformed or badly
// signed stops the server whatever require_signed_policy says: a broken or
// tampered policy is never silently replaced by defaults.
void resolve_policy() {
    ec_policy& policy = ec_state.policy;
    snprintf(policy.version, sizeof(policy.version), "%s",
             ec_policy_version ? ec_policy_version : "");
    policy.encrypt[0] = encrypt_temp_relations;
    policy.encrypt[1] = encrypt_spill_files;
    policy.encrypt[2] = encrypt_wal;
    for (int i = 0; i < EC_CATEGORY_COUNT; ++i) {
        policy.degradation[i] = degradation_setting[i];
    }
    ec_state.policy_signed = false;
    ec_state.policy_from_file = policy_file != nullptr && policy_file[0] != '\0';
    if (!ec_state.policy_from_file) {
        if (require_signed_policy) {
            ereport(FATAL,
                    (errcode(ERRCODE_CONFIG_FILE_ERROR),
                     errmsg("ephemeral_crypt: a signed policy is required but none is configured"),
                     errhint("Set ephemeral_crypt.policy_file and "
                             "ephemeral_crypt.policy_public_key, or turn off "
                             "ephemeral_crypt.require_signed_policy.")));
        }
    } else {
        char error[512] = {};
        ec_policy from_file = {};
        const int status =
            ec_bridge_load_policy_file(policy_file, policy_public_key ? policy_public_key : "",
                                       &from_file, error, sizeof(error));
        const bool refuse = status == EC_POLICY_MISSING || status == EC_POLICY_UNREADABLE ||
                            status == EC_POLICY_MALFORMED || status == EC_POLICY_BAD_SIGNATURE ||
                            (status == EC_POLICY_UNSIGNED && require_signed_policy);
        if (refuse) {
            ereport(FATAL, (errcode(ERRCODE_CONFIG_FILE_ERROR),
                            errmsg("ephemeral_crypt: policy file \"%s\" rejected: %s", policy_file,
                                   policy_problem(status)),
                            error[0] ? errdetail("%s", error) : 0,
                            errhint("Deploy the policy file the control plane signed (sign it with "
                                    "ephemeral_crypt_policy sign), and check "
                                    "ephemeral_crypt.policy_public_key.")));
        }
        policy = from_file;
        ec_state.policy_signed = status == EC_POLICY_OK;
    }
    if (!ec_bridge_policy_digest(&policy, ec_state.policy_digest)) {
        ereport(FATAL, (errmsg("ephemeral_crypt: could not compute the policy digest")));
    }
    for (int i = 0; i < EC_CATEGORY_COUNT; ++i) {
        ec_state.settings.encrypt[i] = policy.encrypt[i];
        ec_state.settings.degradation[i] = policy.degradation[i];
    }
}

void shmem_request() {
    if (prev_shmem_request_hook != nullptr) {
        prev_shmem_request_hook();
    }
    RequestAddinShmemSpace(MAXALIGN(ec_bridge_counters_size()));
}

void shmem_startup() {
    if (prev_shmem_startup_hook != nullptr) {
        prev_shmem_startup_hook();
    }
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    void* counters = ShmemInitStruct("ephemeral_crypt counters", ec_bridge_counters_size(), &found);
    // After a crash restart the previous segment is gone: start from zero
    // rather than read it. The first time, keep what the postmaster counted.
    ec_bridge_attach_counters(counters, !found, !found && !counters_attached_before);
    counters_attached_before = true;
    LWLockRelease(AddinShmemInitLock);
}

const char* category_state(int category) {
    if (!ec_state.settings.encrypt[category]) {
        return "not encrypted";
    }
    return ec_state.settings.degradation[category] == EC_FAIL_OPEN_AUDIT
               ? "encrypted (fail_open_audit)"
               : "encrypted (fail_closed)";
}

void start_encryption() {
    char error[512] = {};
    if (ec_bridge_create_key_and_configure(&ec_state.settings, report_layer_event, error,
                                           sizeof(error)) != 0) {
        ereport(FATAL, (errcode(ERRCODE_INTERNAL_ERROR),
                        errmsg("ephemeral_crypt: could not create the instance key: %s", error)));
    }
    if (ec_bridge_install(test_fault == FAULT_INSTALL_LAYER, &ec_state.objects_patched,
                          &ec_state.slots_patched, error, sizeof(error)) != 0) {
        ereport(FATAL,
                (errcode(ERRCODE_INTERNAL_ERROR),
                 errmsg("ephemeral_crypt: could not install the file-access layer: %s", error),
                 errhint("The server was not started, so nothing was written unencrypted. "
                         "Remove ephemeral_crypt from shared_preload_libraries to start without "
                         "encryption.")));
    }
    ec_wal_restart_prepare();
    if (ec_state.settings.encrypt[2]) {
        if (ec_bridge_encrypt_plaintext_wal(&ec_state.wal_segments_converted, error,
                                            sizeof(error)) != 0) {
            ereport(FATAL, (errcode(ERRCODE_IO_ERROR),
                            errmsg("ephemeral_crypt: could not encrypt existing WAL: %s", error)));
        }
    }
    if (ec_bridge_self_test(error, sizeof(error)) != 0) {
        ereport(FATAL, (errcode(ERRCODE_INTERNAL_ERROR),
                        errmsg("ephemeral_crypt: self-test failed: %s", error),
                        errhint("The server was not started, so nothing was written "
                                "unencrypted.")));
    }
    // Category faults start after the self-test, which must still prove the
    // layer; they then hit the first file the server creates.
    if (test_fault >= 0) {
        ec_bridge_inject_category_fault(test_fault);
    }
    // Test builds only: hand the key to a test that checks it leaks nowhere.
    if (const char* key_file = getenv("EPHEMERAL_CRYPT_TEST_KEY_FILE")) {
        if (test_faults_allowed() && !ec_bridge_expose_key_for_testing(key_file)) {
            ereport(FATAL, (errmsg("ephemeral_crypt: EPHEMERAL_CRYPT_TEST_KEY_FILE is set but this "
                                   "build has no test hooks (build with EC_TEST_HOOKS=1)")));
        }
    }
    ec_state.ready = true;
}

}  // namespace

const char* ec_degradation_name(int degradation) {
    return degradation == EC_FAIL_OPEN_AUDIT ? "fail_open_audit" : "fail_closed";
}

void _PG_init(void) {
    if (!process_shared_preload_libraries_in_progress) {
        // CREATE EXTENSION loads the library to validate its C functions; let
        // it install, so the functions exist and explain themselves when called.
        if (creating_extension) {
            return;
        }
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("ephemeral_crypt must be loaded via shared_preload_libraries"),
                        errhint("Add ephemeral_crypt to shared_preload_libraries in "
                                "postgresql.conf and restart the server.")));
    }
    define_settings();
    check_test_fault();
    resolve_policy();
    check_guard_rails();
    ec_state.settings.data_dir = DataDir;
    start_encryption();

    if (ec_state.settings.encrypt[2]) {
        ec_wal_restart_register();
    }
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = shmem_request;
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = shmem_startup;

    if (ec_state.wal_segments_converted > 0) {
        ereport(LOG, (errmsg("ephemeral_crypt: encrypted %d WAL segment(s) that were written "
                             "before WAL encryption was enabled",
                             ec_state.wal_segments_converted)));
    }
    ereport(LOG,
            (errmsg("ephemeral_crypt: ready: key %s, policy version \"%s\", digest %s, %s%s, "
                    "cipher %s, temp_relation: %s, spill: %s, wal: %s; layer patched %d slot(s) "
                    "in %d object(s); counters in ephemeral_crypt_encryption_status()",
                    ec_bridge_key_id(), ec_state.policy.version, ec_state.policy_digest,
                    ec_state.policy_signed ? "signed" : "unsigned",
                    ec_state.policy_from_file ? " (policy file)" : "", ec_bridge_cipher_name(),
                    category_state(0), category_state(1), category_state(2), ec_state.slots_patched,
                    ec_state.objects_patched)));
}
