/*-------------------------------------------------------------------------
 *
 * attestation.cpp
 *		The periodic attestation: the policy worker re-checks, every
 *		ephemeral_crypt.attestation_interval (with +/- 10 % jitter), what
 *		start-up proved, and publishes the result for SQL.
 *
 * It runs inside the policy worker (policy_lifecycle.cpp), which already
 * wakes on its latch and on SIGHUP, rather than in a worker of its own: an
 * instance gives no second max_worker_processes slot to it, and a reload
 * and a run never race. The engine does the checks (engine/attestation.hpp)
 * and returns them as data; this file times the run (wall clock and the
 * thread's CPU time), writes the result to shared memory, and logs a LOG
 * line and records an "attestation_changed" event in the decision trail only
 * when the outcome (a check's verdict) changes, never once per run.
 *
 * Locking: one block in shared memory, written only by the policy worker,
 * read by any backend (ephemeral_crypt_attestation(), and ready in
 * ephemeral_crypt_status()). It is a seqlock: the writer makes the sequence
 * odd, copies, and makes it even; a reader copies and retries while the
 * sequence was odd or moved. No LWLock is taken, so a reader never waits on
 * a run in progress.
 *
 *-------------------------------------------------------------------------
 */
#include "pg/pg_includes.hpp"

#include <time.h>

extern "C" {
#include "port/atomics.h"
}

#include "pg/extension.hpp"

/*---- Setting variables ----*/

int ec_attestation_interval_ms = 0;
int ec_attestation_scan_budget_ms = 2000;
bool ec_test_divert_got_slot = false;

namespace {

/*---- Shared state ----*/

struct AttestationShared {
    pg_atomic_uint64 sequence;  // odd while the worker writes
    bool enabled;               // attestation_interval > 0 when the worker last looked
    bool has_run;
    int64 runs;
    int64 last_run_unix_ms;
    int64 next_run_unix_ms;  // 0: none scheduled
    int64 duration_us;
    int64 cpu_us;
    ec_attestation_report report;
};

AttestationShared* shared = nullptr;

/*---- Function declarations ----*/

int64 thread_cpu_us();
void publish(const AttestationShared& next);
void log_change(const ec_attestation_report& report);

int64 thread_cpu_us() {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) {
        return 0;
    }
    return static_cast<int64>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

void publish(const AttestationShared& next) {
    const uint64 sequence = pg_atomic_read_u64(&shared->sequence);
    pg_atomic_write_u64(&shared->sequence, sequence + 1);
    pg_write_barrier();
    shared->enabled = next.enabled;
    shared->has_run = next.has_run;
    shared->runs = next.runs;
    shared->last_run_unix_ms = next.last_run_unix_ms;
    shared->next_run_unix_ms = next.next_run_unix_ms;
    shared->duration_us = next.duration_us;
    shared->cpu_us = next.cpu_us;
    memcpy(&shared->report, &next.report, sizeof(next.report));
    pg_write_barrier();
    pg_atomic_write_u64(&shared->sequence, sequence + 2);
}

// One LOG line and one trail event for a changed outcome.
void log_change(const ec_attestation_report& report) {
    StringInfoData failing;
    initStringInfo(&failing);
    for (int i = 0; i < report.check_count; ++i) {
        if (!report.checks[i].passed) {
            appendStringInfo(&failing, "%s%s: %s", failing.len > 0 ? "; " : "",
                             report.checks[i].name, report.checks[i].detail);
        }
    }
    const bool ok = failing.len == 0;
    ec_trail_event("attestation_changed", -1, nullptr, 0,
                   ok ? "every attestation check passes" : failing.data);
    if (ok) {
        ereport(LOG, (errcode(ERRCODE_SUCCESSFUL_COMPLETION),
                      errmsg("ephemeral_crypt: attestation passes: every check passes")));
    } else {
        ereport(LOG, (errcode(ERRCODE_DATA_CORRUPTED),
                      errmsg("ephemeral_crypt: attestation fails: %s", failing.data),
                      errdetail("ephemeral_crypt_status() reports ready = false until every "
                                "check passes.")));
    }
    pfree(failing.data);
}

// The worker's own copy of what it published last.
AttestationShared last;
int64 next_due_unix_ms = 0;
bool slot_diverted = false;

}  // namespace

/*---- Shared memory ----*/

size_t ec_attestation_shmem_size() {
    return sizeof(AttestationShared);
}

void ec_attestation_shmem_attach(void* block, bool initialize) {
    shared = static_cast<AttestationShared*>(block);
    if (initialize) {
        memset(shared, 0, sizeof(*shared));
        pg_atomic_init_u64(&shared->sequence, 0);
    }
}

bool ec_attestation_read(ec_attestation_snapshot* out) {
    memset(out, 0, sizeof(*out));
    if (shared == nullptr) {
        return false;
    }
    for (int attempt = 0; attempt < 1000; ++attempt) {
        const uint64 before = pg_atomic_read_u64(&shared->sequence);
        if (before % 2 != 0) {
            pg_spin_delay();
            continue;
        }
        pg_read_barrier();
        out->enabled = shared->enabled;
        out->has_run = shared->has_run;
        out->runs = shared->runs;
        out->last_run_unix_ms = shared->last_run_unix_ms;
        out->next_run_unix_ms = shared->next_run_unix_ms;
        out->duration_us = shared->duration_us;
        out->cpu_us = shared->cpu_us;
        memcpy(&out->report, &shared->report, sizeof(out->report));
        pg_read_barrier();
        if (pg_atomic_read_u64(&shared->sequence) == before) {
            return true;
        }
    }
    return false;
}

bool ec_attestation_failing(char* reason, size_t reason_len) {
    ec_attestation_snapshot snapshot;
    if (!ec_attestation_read(&snapshot) || !snapshot.enabled || !snapshot.has_run) {
        return false;
    }
    for (int i = 0; i < snapshot.report.check_count; ++i) {
        if (!snapshot.report.checks[i].passed) {
            snprintf(reason, reason_len, "attestation check %s fails: %s",
                     snapshot.report.checks[i].name, snapshot.report.checks[i].detail);
            return true;
        }
    }
    return false;
}

/*---- The worker's part ----*/

long ec_attestation_ms_until_due() {
    if (ec_attestation_interval_ms <= 0 || shared == nullptr) {
        return -1;
    }
    const int64 now = ec_unix_ms_now();
    if (next_due_unix_ms == 0) {
        next_due_unix_ms = now;  // the first run right away
    }
    return next_due_unix_ms <= now ? 0 : static_cast<long>(next_due_unix_ms - now);
}

void ec_attestation_settings_changed() {
    if (shared == nullptr) {
        return;
    }
    if (ec_test_faults_allowed() && ec_test_divert_got_slot != slot_diverted) {
        slot_diverted = ec_test_divert_got_slot;
        if (slot_diverted) {
            if (!ec_engine_divert_slot_for_testing()) {
                ereport(WARNING, (errcode(ERRCODE_INTERNAL_ERROR),
                                  errmsg("ephemeral_crypt: test hook could not divert a GOT "
                                         "slot (not a test build?)")));
            }
        } else {
            ec_engine_repatch_slots();
        }
    }
    if (ec_attestation_interval_ms <= 0) {
        next_due_unix_ms = 0;
        if (last.enabled) {
            last.enabled = false;
            last.next_run_unix_ms = 0;
            publish(last);
        }
        return;
    }
    // A new interval takes effect now: the next run comes within it.
    const int64 due = ec_unix_ms_now() + ec_engine_attestation_delay_ms(ec_attestation_interval_ms);
    if (next_due_unix_ms == 0 || due < next_due_unix_ms || !last.enabled) {
        next_due_unix_ms = last.enabled ? due : ec_unix_ms_now();
    }
}

void ec_attestation_run_if_due() {
    if (ec_attestation_ms_until_due() != 0) {
        return;
    }
    const TimestampTz started = GetCurrentTimestamp();
    const int64 cpu_before = thread_cpu_us();
    AttestationShared next;
    memset(&next, 0, sizeof(next));
    ec_error error;
    if (ec_engine_attest(ec_state.policy_from_file ? ec_policy_file : nullptr, ec_policy_public_key,
                         ec_require_signed_policy, ec_unix_ms_now(), ec_attestation_scan_budget_ms,
                         &next.report, &error) != EC_OK) {
        next.report.check_count = 1;
        snprintf(next.report.checks[0].name, sizeof(next.report.checks[0].name), "run");
        next.report.checks[0].passed = false;
        snprintf(next.report.checks[0].detail, sizeof(next.report.checks[0].detail),
                 "the attestation could not run: %s", error.message);
    }
    const int64 cpu_after = thread_cpu_us();
    const int64 now = ec_unix_ms_now();
    next.enabled = true;
    next.has_run = true;
    next.runs = last.runs + 1;
    next.last_run_unix_ms = now;
    next.duration_us = GetCurrentTimestamp() - started;
    next.cpu_us = cpu_after - cpu_before;
    next_due_unix_ms = now + ec_engine_attestation_delay_ms(ec_attestation_interval_ms);
    next.next_run_unix_ms = next_due_unix_ms;
    const bool changed =
        ec_engine_attestation_changed(last.has_run ? &last.report : nullptr, &next.report);
    publish(next);
    last = next;
    if (changed) {
        log_change(next.report);
    }
}
