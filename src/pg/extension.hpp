/*-------------------------------------------------------------------------
 *
 * extension.hpp
 *		What the files of src/pg share: the state the postmaster settles in
 *		_PG_init, and the entry points each file offers the others.
 *
 * ec_state and the GUC variables are written only in the postmaster, before
 * any child exists, and are read-only afterwards: every child inherits them
 * by fork (ephemeral_crypt.stale_policy_action alone changes on reload). What
 * changes while the server runs lives in shared memory (shmem.cpp): the
 * counters, as lock-free atomics, and the policy in force, which a reload
 * may replace (policy_lifecycle.cpp); ec_state.policy stays the start-up one.
 *
 *-------------------------------------------------------------------------
 */
#pragma once

#include "engine/engine_api.h"

/*---- State settled by _PG_init ----*/

struct EphemeralCryptState {
    bool ready;            // key, layer and self-test all succeeded
    ec_settings settings;  // the effective per-category settings
    int objects_patched;
    int slots_patched;
    int wal_segments_converted;
    ec_policy policy;                      // the effective policy (settings or policy file)
    char policy_digest[EC_DIGEST_BUFFER];  // SHA-256 of its canonical rendering, hex
    char cipher_summary[EC_CIPHER_SUMMARY_BUFFER];  // the categories' ciphers, for SQL
    bool policy_signed;
    bool policy_from_file;
};

extern EphemeralCryptState ec_state;

/*---- Background workers (module.cpp) ----*/

// When a background worker of the extension starts.
enum class EcWorkerStart { PostmasterStart, RecoveryFinished };
// Registers a worker of this library: it attaches to shared memory and is
// restarted 5 s after it exits; `name` is both its name and its type, as
// pg_stat_activity shows them.
void ec_register_worker(const char* function_name, const char* name, EcWorkerStart start);

/*---- Settings (guc.cpp) ----*/

// Defines every ephemeral_crypt.* setting and reserves the prefix.
void ec_define_settings();
// Refuses the start if a setting was rejected when it was parsed.
void ec_check_rejected_settings();
// The policy the settings declare (used unless a policy file is named).
ec_policy ec_policy_from_settings();
extern char* ec_policy_file;
extern char* ec_wal_staging_directory;
extern char* ec_policy_public_key;
extern bool ec_require_signed_policy;
// The test-only fault switch: honoured only with EPHEMERAL_CRYPT_TEST_FAULTS=1.
enum { EC_FAULT_NONE = -1, EC_FAULT_INSTALL_LAYER = -2 };  // else a category index
extern int ec_test_fault;
bool ec_test_faults_allowed();
// ephemeral_crypt.stale_policy_action (PGC_SIGHUP).
enum { EC_STALE_WARN = 0, EC_STALE_REFUSE_CONNECTIONS = 1 };
extern int ec_stale_policy_action;

/*---- Shared memory (shmem.cpp) ----*/

void ec_install_shmem_hooks();

/*---- The policy after start-up (policy_lifecycle.cpp) ----*/

// Installs the login check and registers the worker that reloads a policy
// file on SIGHUP and runs the periodic attestation.
void ec_policy_lifecycle_init();
// What is wrong with a policy file, by its ec_policy_file_status.
const char* ec_policy_problem(int file_status);
// Now, in Unix milliseconds.
int64_t ec_unix_ms_now();

/*---- The decision trail (decision_trail.cpp) ----*/

// Records an event in the ring and logs it, with the process, the policy in
// force and the key id. `category` -1 for none; `file` and `detail` may be
// null. Only for decisions off the routine path: never on a successful I/O.
void ec_trail_event(const char* action, int category, const char* file, int error_number,
                    const char* detail);
// ephemeral_crypt.event_ring_size: events the ring keeps.
extern int ec_event_ring_size;

/*---- The periodic attestation (attestation.cpp) ----*/

// ephemeral_crypt.attestation_interval and attestation_scan_budget, in ms
// (PGC_SIGHUP); the test-only ephemeral_crypt.test_divert_got_slot.
extern int ec_attestation_interval_ms;
extern int ec_attestation_scan_budget_ms;
extern bool ec_test_divert_got_slot;

// What the last run published.
struct ec_attestation_snapshot {
    bool enabled;
    bool has_run;
    int64_t runs;
    int64_t last_run_unix_ms;
    int64_t next_run_unix_ms;
    int64_t duration_us;
    int64_t cpu_us;
    ec_attestation_report report;
};

size_t ec_attestation_shmem_size();
void ec_attestation_shmem_attach(void* block, bool initialize);
// False before shared memory exists (or if the writer never let go).
bool ec_attestation_read(ec_attestation_snapshot* out);
// True, with the first failing check as the reason, while the last run
// failed a check and attestation is on.
bool ec_attestation_failing(char* reason, size_t reason_len);
// The policy worker's part: how long until the next run (-1: off), what a
// reload changes, and the run itself when it is due.
long ec_attestation_ms_until_due();
void ec_attestation_settings_changed();
void ec_attestation_run_if_due();

/*---- WAL across restarts (wal_restart.cpp) ----*/

// Registers the shutdown sealer and the postmaster's exit hook.
void ec_wal_restart_register();
// Before the startup process runs: rebuilds or removes WAL left by the
// previous instance, or refuses to start.
void ec_wal_restart_prepare();

/*---- Reporting an engine failure (engine_errors.cpp) ----*/

// Reports a failed engine call at `elevel`: "ephemeral_crypt: <what>:
// <message>", with errno set from the error, errcode_for_file_access() and
// ": %m" when a system call failed, and `code` otherwise. `what` and `hint`
// may be null. Does not return for elevel >= ERROR.
void ec_report_engine_error(int elevel, int code, const char* what, const ec_error* error,
                            const char* hint);
