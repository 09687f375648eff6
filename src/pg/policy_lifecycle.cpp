/*-------------------------------------------------------------------------
 *
 * policy_lifecycle.cpp
 *		The policy after start-up: signed rollout on reload, freshness, and
 *		refusing connections while the policy is stale.
 *
 * One background worker, "ephemeral_crypt policy", runs when a policy file
 * is named. On SIGHUP (pg_reload_conf()) it reads the file again, and the
 * engine verifies it, decides (apply, unchanged, pending restart, rejected,
 * rollback) and publishes an applied policy in shared memory with a new
 * sequence number. Every process's layer checks that number when it opens a
 * file, with one atomic load and no palloc or elog, and copies the new
 * ciphers and degradations when it changed; a file keeps what its header
 * recorded. Verifying once and publishing, rather than each process
 * re-reading the file on its own SIGHUP, means every process applies the
 * same policy, a backend busy in a long query included (it handles SIGHUP
 * only between queries), and a file that changes while processes read it
 * can never leave them disagreeing. The worker also re-reads the file when
 * it starts, so a policy rolled out before a crash restart (which lays the
 * shared block out again from the start-up policy) is in force again.
 *
 * Freshness. The worker sleeps until the policy's earliest deadline
 * (not_after, or the key's creation plus max_key_age) and logs one WARNING
 * per policy when it passes; SQL computes staleness itself at every call,
 * so it never lags the worker. With ephemeral_crypt.stale_policy_action =
 * refuse_connections, ClientAuthentication_hook refuses new connections of
 * roles that are not superusers while the policy is stale. Staleness never
 * changes what is encrypted.
 *
 * The same worker runs the periodic attestation (attestation.cpp) when
 * ephemeral_crypt.attestation_interval is set, so it is registered even
 * without a policy file; it then only attests.
 *
 * Locking: the shared block is a seqlock (core/shared_policy.hpp) written
 * only by this worker after start-up; no LWLock is taken.
 *
 *-------------------------------------------------------------------------
 */
#include "pg/pg_includes.hpp"

// libpq/auth.h brings in libpq-be.h, which includes the Kerberos headers
// when the server was built with GSSAPI; the build roots need not have them,
// and nothing here uses GSSAPI. Port's layout is the same either way (its
// GSSAPI state is behind a pointer in both forms), so the definition is
// left out for this file.
#undef ENABLE_GSS
extern "C" {
#include "libpq/auth.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/wait_event.h"
}

#include "pg/extension.hpp"

extern "C" {
PGDLLEXPORT void ephemeral_crypt_policy_worker_main(Datum argument);
}

namespace {

/*---- Saved hook values ----*/

ClientAuthentication_hook_type prev_client_authentication_hook = nullptr;

/*---- Function declarations ----*/

void reload_policy_file(bool at_worker_start);
void warn_if_stale(uint64_t* warned_generation);
long sleep_ms_until_deadline();
void refuse_login_while_stale(Port* port, int status);

// The longest the worker sleeps without a reload: a deadline moved by a
// clock change is noticed within this.
constexpr long kLongestSleepMs = 60 * 1000;

/*---- Reload ----*/

// Reads the policy file again and reports what became of it. Only WARNING
// and LOG are raised here, so nothing longjmps out of the worker's loop.
void reload_policy_file(bool at_worker_start) {
    ec_reload_report report;
    ec_error error;
    if (ec_engine_reload_policy(ec_policy_file, ec_policy_public_key, ec_require_signed_policy,
                                ec_unix_ms_now(), &report, &error) != EC_OK) {
        ec_report_engine_error(WARNING, ERRCODE_INTERNAL_ERROR,
                               "policy file not reloaded; the policy in force stays", &error,
                               nullptr);
        return;
    }
    // The decision trail: every outcome but a routine "unchanged".
    switch (report.verdict) {
        case EC_RELOAD_APPLIED:
            ec_trail_event("policy_loaded", -1, ec_policy_file, 0,
                           psprintf("version \"%s\", serial %lld, digest %s", report.version,
                                    static_cast<long long>(report.serial), report.digest));
            break;
        case EC_RELOAD_UNCHANGED:
            if (at_worker_start) {
                ec_trail_event("policy_in_force", -1, ec_policy_file, 0,
                               "the policy file holds the policy in force");
            }
            break;
        case EC_RELOAD_PENDING_RESTART:
            ec_trail_event("policy_pending_restart", -1, ec_policy_file, 0, report.detail);
            break;
        case EC_RELOAD_ROLLED_BACK:
            ec_trail_event("policy_rolled_back", -1, ec_policy_file, 0, report.detail);
            break;
        default:
            ec_trail_event(
                "policy_rejected", -1, ec_policy_file, report.saved_errno,
                report.detail[0] ? report.detail : ec_policy_problem(report.file_status));
            break;
    }
    switch (report.verdict) {
        case EC_RELOAD_APPLIED:
            ereport(LOG,
                    (errcode(ERRCODE_SUCCESSFUL_COMPLETION),
                     errmsg("ephemeral_crypt: policy reloaded: version \"%s\", serial %lld, "
                            "digest %s; files created from now on follow it",
                            report.version, static_cast<long long>(report.serial), report.digest)));
            break;
        case EC_RELOAD_UNCHANGED:
            ereport(at_worker_start ? DEBUG1 : LOG,
                    (errcode(ERRCODE_SUCCESSFUL_COMPLETION),
                     errmsg("ephemeral_crypt: policy file \"%s\" unchanged (digest %s)",
                            ec_policy_file, report.digest)));
            break;
        case EC_RELOAD_PENDING_RESTART:
            ereport(LOG,
                    (errcode(ERRCODE_CANT_CHANGE_RUNTIME_PARAM),
                     errmsg("ephemeral_crypt: policy file \"%s\" (serial %lld, digest %s) "
                            "needs a restart to take effect; the policy in force stays",
                            ec_policy_file, static_cast<long long>(report.serial), report.digest),
                     errdetail("Needs a restart: %s.", report.detail)));
            break;
        case EC_RELOAD_ROLLED_BACK:
            ereport(WARNING,
                    (errcode(ERRCODE_CONFIG_FILE_ERROR),
                     errmsg("ephemeral_crypt: policy file \"%s\" not reloaded: it is older than "
                            "the policy in force; the policy in force stays",
                            ec_policy_file),
                     errdetail("%s.", report.detail),
                     errhint("Deploy a policy file with a serial at least that of the policy in "
                             "force.")));
            break;
        default:
            errno = report.saved_errno;
            ereport(WARNING,
                    (report.saved_errno != 0 ? errcode_for_file_access()
                                             : errcode(ERRCODE_CONFIG_FILE_ERROR),
                     errmsg("ephemeral_crypt: policy file \"%s\" not reloaded: %s; the policy in "
                            "force stays",
                            ec_policy_file, ec_policy_problem(report.file_status)),
                     report.detail[0] ? errdetail("%s", report.detail) : 0));
            break;
    }
}

/*---- Freshness ----*/

// One WARNING per policy in force, when it goes stale.
void warn_if_stale(uint64_t* warned_generation) {
    ec_policy_state state;
    if (!ec_engine_read_policy_state(ec_unix_ms_now(), &state) || !state.stale ||
        *warned_generation == state.generation) {
        return;
    }
    *warned_generation = state.generation;
    ec_trail_event("policy_stale", -1, ec_policy_file, 0, state.stale_reason);
    ereport(WARNING,
            (errcode(ERRCODE_WARNING),
             errmsg("ephemeral_crypt: the policy in force is stale: %s", state.stale_reason),
             errdetail("Policy version \"%s\", serial %lld, digest %s. Encryption goes on "
                       "unchanged; ephemeral_crypt_status() reports ready = false.",
                       state.policy.version, static_cast<long long>(state.serial), state.digest),
             errhint("Deploy a fresh signed policy file and reload the configuration.")));
}

long sleep_ms_until_deadline() {
    ec_policy_state state;
    if (!ec_engine_read_policy_state(ec_unix_ms_now(), &state) || !state.has_deadline ||
        state.stale) {
        return kLongestSleepMs;
    }
    // Wake on the deadline itself, not before it: 1 ms past is stale.
    return state.time_left_ms < kLongestSleepMs ? static_cast<long>(state.time_left_ms) + 1
                                                : kLongestSleepMs;
}

/*---- Connections ----*/

void refuse_login_while_stale(Port* port, int status) {
    if (prev_client_authentication_hook != nullptr) {
        prev_client_authentication_hook(port, status);
    }
    if (status != STATUS_OK || ec_stale_policy_action != EC_STALE_REFUSE_CONNECTIONS) {
        return;
    }
    ec_policy_state state;
    if (!ec_engine_read_policy_state(ec_unix_ms_now(), &state) || !state.stale) {
        return;
    }
    // Superusers still get in, to deploy a fresh policy or change the setting.
    const Oid role = get_role_oid(port->user_name, true);
    if (OidIsValid(role) && superuser_arg(role)) {
        return;
    }
    ereport(FATAL,
            (errcode(ERRCODE_CANNOT_CONNECT_NOW),
             errmsg("ephemeral_crypt: new connections are refused while the encryption policy is "
                    "stale"),
             errdetail("%s; ephemeral_crypt.stale_policy_action is refuse_connections.",
                       state.stale_reason),
             errhint("Deploy a fresh signed policy file and reload the configuration.")));
}

}  // namespace

/*---- The worker ----*/

void ephemeral_crypt_policy_worker_main(Datum) {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    BackgroundWorkerUnblockSignals();
    if (ec_state.policy_from_file) {
        reload_policy_file(true);
    }
    ec_attestation_settings_changed();
    uint64_t warned_generation = 0;
    for (;;) {
        warn_if_stale(&warned_generation);
        ec_attestation_run_if_due();
        long sleep_ms = sleep_ms_until_deadline();
        const long attestation_ms = ec_attestation_ms_until_due();
        if (attestation_ms >= 0 && attestation_ms < sleep_ms) {
            sleep_ms = attestation_ms;
        }
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sleep_ms,
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
            if (ec_state.policy_from_file) {
                reload_policy_file(false);
            }
            ec_attestation_settings_changed();
        }
    }
}

/*---- Entry points ----*/

const char* ec_policy_problem(int file_status) {
    switch (file_status) {
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

int64_t ec_unix_ms_now() {
    // PostgreSQL's microseconds since 2000-01-01 to Unix milliseconds.
    return GetCurrentTimestamp() / 1000 +
           static_cast<int64>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;
}

void ec_policy_lifecycle_init() {
    prev_client_authentication_hook = ClientAuthentication_hook;
    ClientAuthentication_hook = refuse_login_while_stale;
    // Always registered: it reloads a policy file, and runs the periodic
    // attestation (attestation.cpp), which a reload may turn on.
    // From the postmaster's start, so a standby reloads too.
    ec_register_worker("ephemeral_crypt_policy_worker_main", "ephemeral_crypt policy",
                       EcWorkerStart::PostmasterStart);
}
