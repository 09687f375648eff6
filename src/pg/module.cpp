/*-------------------------------------------------------------------------
 *
 * module.cpp
 *		_PG_init: everything that decides whether the server may start.
 *
 * It all happens in the postmaster, before any child exists, as a list of
 * steps: the settings are defined and checked, the effective policy is
 * settled (settings or a signed policy file), the guard rails are checked,
 * the instance key is created and the file-access layer installed, WAL left
 * by a previous instance is rebuilt or refused, plaintext WAL is encrypted,
 * and the self-test runs. Any failure is FATAL, because a server that was
 * asked to encrypt must not come up writing plaintext. Children inherit the
 * key, the settings and the patched GOTs by fork. One LOG line then says
 * which key, which policy and which categories are in force, each with its
 * cipher.
 *
 * The engine does the work (engine/engine_api.h); this file decides what is
 * FATAL and words it.
 *
 *-------------------------------------------------------------------------
 */
#include "pg/pg_includes.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

#include "pg/extension.hpp"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

EphemeralCryptState ec_state;

void ec_register_worker(const char* function_name, const char* name, EcWorkerStart start) {
    BackgroundWorker worker;
    memset(&worker, 0, sizeof(worker));
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
    worker.bgw_start_time = start == EcWorkerStart::PostmasterStart
                                ? BgWorkerStart_PostmasterStart
                                : BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = 5;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "ephemeral_crypt");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function_name);
    snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
    snprintf(worker.bgw_type, BGW_MAXLEN, "%s", name);
    RegisterBackgroundWorker(&worker);
}

namespace {

const char* const nothing_written_hint =
    "The server was not started, so nothing was written unencrypted.";

const char* const event_names[] = {
    "encrypted I/O failed",
    "file rejected",
    "file written in plaintext",
    "bypass refused",
    "data failed authentication",
    "no locked memory for the file's key",
    "WAL not staged for a shell command",
};
static_assert(sizeof(event_names) / sizeof(event_names[0]) == EC_EVENT_STAGING_FAILED + 1,
              "a name for every layer event");

// The decision trail's action for each layer event.
const char* const event_actions[] = {
    "io_failure",     "header_rejected",   "plaintext_fallback",
    "bypass_refused", "integrity_failure", "locked_memory_exhausted",
};
static_assert(sizeof(event_actions) / sizeof(event_actions[0]) ==
                  EC_EVENT_LOCKED_MEMORY_EXHAUSTED + 1,
              "an action for every layer event");

/*---- Function declarations ----*/

void report_layer_event(int event, int category, const char* path, int64_t unit,
                        const char* detail);
void refuse_unless_preloaded();
void resolve_policy();
void check_wal_staging_directory();
void check_guard_rails();
void start_encryption();
void encrypt_existing_wal();
void run_self_test();
void arm_test_hooks();
void log_ready();
const char* category_state(int category);

/*---- Layer events ----*/

// Called by the layer as a wrapper returns, with no lock held and no C++
// object alive in the calling frames, so ereport is safe; WARNING never
// longjmps, even inside a critical section. The call itself then fails (EIO,
// or ENOMEM for want of locked memory), and PostgreSQL raises its usual error
// for it.
void report_layer_event(int event, int category, const char* path, int64_t unit,
                        const char* detail) {
    // The errno the call fails with: the wrapper's, set before it returns
    // through the callback (EIO when none is set yet). A fallback succeeded,
    // and a refused bypass sets its errno (which depends on the call) only
    // after the callback: 0 for both.
    const int error_number = event == EC_EVENT_PLAINTEXT_FALLBACK ? 0
                             : event == EC_EVENT_BYPASS_REFUSED   ? 0
                             : event == EC_EVENT_LOCKED_MEMORY_EXHAUSTED
                                 ? ENOMEM
                                 : (errno != 0 ? errno : EIO);
    ec_trail_event(event_actions[event], category, path, error_number, detail);
    if (event == EC_EVENT_INTEGRITY_FAILURE) {
        ereport(WARNING, (errcode(ERRCODE_DATA_CORRUPTED),
                          errmsg("ephemeral_crypt: %s: file \"%s\", category %s, unit %lld, key %s",
                                 event_names[event], path, ec_engine_category_name(category),
                                 static_cast<long long>(unit), ec_engine_key_id()),
                          errdetail("%s No byte of the unit was returned.", detail),
                          errhint("Something other than this server wrote to the file on disk.")));
        return;
    }
    if (event == EC_EVENT_STAGING_FAILED) {
        ereport(WARNING,
                (errcode(ERRCODE_IO_ERROR),
                 errmsg("ephemeral_crypt: %s: file \"%s\", staging directory \"%s\"",
                        event_names[event], path, ec_wal_staging_directory),
                 errdetail("%s.", detail),
                 errhint("archive_command and restore_command see encrypted WAL through a copy "
                         "in ephemeral_crypt.wal_staging_directory, which must exist on a tmpfs "
                         "with room for a segment. A failed archive_command is retried; a failed "
                         "restore_command stops recovery rather than end it early.")));
        return;
    }
    const bool no_locked_memory = event == EC_EVENT_LOCKED_MEMORY_EXHAUSTED;
    ereport(WARNING,
            (errcode(event == EC_EVENT_PLAINTEXT_FALLBACK ? ERRCODE_WARNING
                     : no_locked_memory                   ? ERRCODE_OUT_OF_MEMORY
                                                          : ERRCODE_IO_ERROR),
             errmsg("ephemeral_crypt: %s: file \"%s\", category %s, key %s", event_names[event],
                    path, ec_engine_category_name(category), ec_engine_key_id()),
             errdetail("%s", detail),
             no_locked_memory
                 ? errhint("Each open encrypted file keeps about 3 kB of key and cipher state in "
                           "locked memory. Raise the server's RLIMIT_MEMLOCK (LimitMEMLOCK= in "
                           "its systemd unit, or memlock in /etc/security/limits.conf), or "
                           "lower max_files_per_process.")
                 : 0));
}

/*---- Start-up steps, in the order _PG_init takes them ----*/

void refuse_unless_preloaded() {
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("ephemeral_crypt must be loaded via shared_preload_libraries"),
                    errhint("Add ephemeral_crypt to shared_preload_libraries in "
                            "postgresql.conf and restart the server.")));
}

// The effective policy comes from the settings, or from the policy file when
// one is named (engine/policy_loading.hpp says when a file refuses the start).
void resolve_policy() {
    const ec_policy from_settings = ec_policy_from_settings();
    ec_policy_resolution resolved;
    ec_error error;
    if (ec_engine_resolve_policy(&from_settings, ec_policy_file, ec_policy_public_key,
                                 ec_require_signed_policy, &resolved, &error) != EC_OK) {
        if (resolved.verdict == EC_POLICY_SIGNED_BUT_NO_FILE) {
            ereport(FATAL,
                    (errcode(ERRCODE_CONFIG_FILE_ERROR),
                     errmsg("ephemeral_crypt: a signed policy is required but none is configured"),
                     errhint("Set ephemeral_crypt.policy_file and "
                             "ephemeral_crypt.policy_public_key, or turn off "
                             "ephemeral_crypt.require_signed_policy.")));
        }
        if (resolved.verdict == EC_POLICY_FILE_REJECTED) {
            // The loader's explanation already names the errno, if any.
            errno = error.saved_errno;
            ereport(FATAL, (error.saved_errno != 0 ? errcode_for_file_access()
                                                   : errcode(ERRCODE_CONFIG_FILE_ERROR),
                            errmsg("ephemeral_crypt: policy file \"%s\" rejected: %s",
                                   ec_policy_file, ec_policy_problem(resolved.file_status)),
                            error.message[0] ? errdetail("%s", error.message) : 0,
                            errhint("Deploy the policy file the control plane signed (sign it with "
                                    "ephemeral_crypt_policy sign), and check "
                                    "ephemeral_crypt.policy_public_key.")));
        }
        if (resolved.verdict == EC_POLICY_ROLLED_BACK) {
            ereport(FATAL,
                    (errcode(ERRCODE_CONFIG_FILE_ERROR),
                     errmsg("ephemeral_crypt: policy file \"%s\" rejected: it is older than the "
                            "newest policy this data directory has accepted",
                            ec_policy_file),
                     errdetail("%s.", error.message),
                     errhint("Deploy the current policy file the control plane signed. The "
                             "serial accepted last is kept in ephemeral_crypt.policy_serial in "
                             "the data directory.")));
        }
        ec_report_engine_error(FATAL, ERRCODE_INTERNAL_ERROR, nullptr, &error, nullptr);
    }
    ec_state.policy = resolved.policy;
    memcpy(ec_state.policy_digest, resolved.digest, sizeof(ec_state.policy_digest));
    memcpy(ec_state.cipher_summary, resolved.cipher_summary, sizeof(ec_state.cipher_summary));
    ec_state.policy_signed = resolved.signed_ok;
    ec_state.policy_from_file = resolved.from_file;
    for (int category = 0; category < EC_CATEGORY_COUNT; ++category) {
        ec_state.settings.encrypt[category] = resolved.policy.encrypt[category];
        ec_state.settings.degradation[category] = resolved.policy.degradation[category];
        ec_state.settings.cipher[category] = resolved.policy.cipher[category];
    }
    ec_state.settings.data_dir = DataDir;
    ec_state.settings.wal_staging_dir = ec_wal_staging_directory;
}

// archive_command and restore_command see encrypted WAL through a staged
// copy (interpose/wrappers_command.cpp). A staging directory that cannot
// serve is said at start-up, but refuses nothing: only archiving and
// restoring need it, and each refuses to stage anywhere but a memory file
// system, retrying (archive) or stopping recovery (restore) with a WARNING.
// So a single-user start, which archives nothing, is never refused for it.
void check_wal_staging_directory() {
    if (!ec_state.settings.encrypt[EC_CATEGORY_WAL] || !IsPostmasterEnvironment) {
        return;
    }
    const char* problem = ec_engine_staging_directory_problem(ec_wal_staging_directory);
    if (problem != nullptr) {
        ereport(WARNING,
                (errcode_for_file_access(),
                 errmsg("ephemeral_crypt: %s: \"%s\": %m", problem, ec_wal_staging_directory),
                 errdetail("archive_command and restore_command will fail until it is fixed; "
                           "archiving is retried."),
                 errhint("Point ephemeral_crypt.wal_staging_directory at a directory on a tmpfs, "
                         "such as /dev/shm, with room for a few WAL segments.")));
    }
}

void check_guard_rails() {
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
    if (ec_state.settings.encrypt[EC_CATEGORY_TEMP_RELATION] && io_method == IOMETHOD_IO_URING) {
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

void start_encryption() {
    ec_error error;
    if (ec_engine_start(&ec_state.settings, report_layer_event, &error) != EC_OK) {
        ec_report_engine_error(FATAL, ERRCODE_INTERNAL_ERROR, "could not create the instance key",
                               &error, nullptr);
    }
    if (ec_engine_install_layer(ec_test_fault == EC_FAULT_INSTALL_LAYER, &ec_state.objects_patched,
                                &ec_state.slots_patched, &error) != EC_OK) {
        ec_report_engine_error(
            FATAL, ERRCODE_INTERNAL_ERROR, "could not install the file-access layer", &error,
            "The server was not started, so nothing was written unencrypted. Remove "
            "ephemeral_crypt from shared_preload_libraries to start without encryption.");
    }
}

void encrypt_existing_wal() {
    if (!ec_state.settings.encrypt[EC_CATEGORY_WAL]) {
        return;
    }
    ec_error error;
    if (ec_engine_encrypt_plaintext_wal(&ec_state.wal_segments_converted, &error) != EC_OK) {
        ec_report_engine_error(FATAL, ERRCODE_IO_ERROR, "could not encrypt existing WAL", &error,
                               nullptr);
    }
}

void run_self_test() {
    ec_error error;
    if (ec_engine_self_test(&error) != EC_OK) {
        ec_report_engine_error(FATAL, ERRCODE_INTERNAL_ERROR, "self-test failed", &error,
                               nothing_written_hint);
    }
}

// Test-only switches, armed after the self-test, which must still prove the
// layer: a category fault then hits the first file the server creates.
void arm_test_hooks() {
    if (ec_test_fault >= 0) {
        ec_engine_inject_category_fault(ec_test_fault);
    }
    // Test builds only: hand the key to a test that checks it leaks nowhere.
    const char* key_file = getenv("EPHEMERAL_CRYPT_TEST_KEY_FILE");
    if (key_file != nullptr && ec_test_faults_allowed() &&
        !ec_engine_expose_key_for_testing(key_file)) {
        ereport(FATAL, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("ephemeral_crypt: EPHEMERAL_CRYPT_TEST_KEY_FILE is set but this "
                               "build has no test hooks (build with EC_TEST_HOOKS=1)")));
    }
}

/*---- The startup line ----*/

// "not encrypted", or "encrypted with <cipher> (<degradation>)".
const char* category_state(int category) {
    if (!ec_state.settings.encrypt[category]) {
        return "not encrypted";
    }
    return psprintf("encrypted with %s (%s)",
                    ec_engine_cipher_name(ec_state.settings.cipher[category]),
                    ec_engine_degradation_name(ec_state.settings.degradation[category]));
}

void log_ready() {
    if (ec_state.wal_segments_converted > 0) {
        ereport(LOG, (errcode(ERRCODE_SUCCESSFUL_COMPLETION),
                      errmsg("ephemeral_crypt: encrypted %d plaintext WAL segment(s) in pg_wal "
                             "under the new key",
                             ec_state.wal_segments_converted)));
    }
    ereport(LOG, (errcode(ERRCODE_SUCCESSFUL_COMPLETION),
                  errmsg("ephemeral_crypt: ready: key %s, policy version \"%s\", digest %s, %s%s, "
                         "temp_relation: %s, spill: %s, wal: %s; layer patched %d slot(s) "
                         "in %d object(s); counters in ephemeral_crypt_encryption_status()",
                         ec_engine_key_id(), ec_state.policy.version, ec_state.policy_digest,
                         ec_state.policy_signed ? "signed" : "unsigned",
                         ec_state.policy_from_file ? " (policy file)" : "",
                         category_state(EC_CATEGORY_TEMP_RELATION),
                         category_state(EC_CATEGORY_SPILL), category_state(EC_CATEGORY_WAL),
                         ec_state.slots_patched, ec_state.objects_patched)));
}

}  // namespace

/*---- Module load ----*/

void _PG_init(void) {
    if (!process_shared_preload_libraries_in_progress) {
        // CREATE EXTENSION loads the library to validate its C functions; let
        // it install, so the functions exist and explain themselves when called.
        if (creating_extension) {
            return;
        }
        refuse_unless_preloaded();
    }
    ec_define_settings();
    ec_check_rejected_settings();
    resolve_policy();
    check_guard_rails();
    start_encryption();
    check_wal_staging_directory();
    ec_wal_restart_prepare();
    encrypt_existing_wal();
    run_self_test();
    arm_test_hooks();
    ec_state.ready = true;

    if (ec_state.settings.encrypt[EC_CATEGORY_WAL]) {
        ec_wal_restart_register();
    }
    ec_install_shmem_hooks();
    ec_policy_lifecycle_init();
    log_ready();
}
