/*-------------------------------------------------------------------------
 *
 * extension.hpp
 *		What the files of src/pg share: the state the postmaster settles in
 *		_PG_init, and the entry points each file offers the others.
 *
 * ec_state and the GUC variables are written only in the postmaster, before
 * any child exists, and are read-only afterwards: every child inherits them
 * by fork. The counters, the only state that changes while the server runs,
 * live in shared memory (shmem.cpp) as lock-free atomics.
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

/*---- Shared memory (shmem.cpp) ----*/

void ec_install_shmem_hooks();

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
