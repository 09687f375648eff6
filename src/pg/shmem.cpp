/*-------------------------------------------------------------------------
 *
 * shmem.cpp
 *		The counters' shared memory.
 *
 * The per-category counters (files, bytes, failures, fallbacks) live in one
 * block: a slot per process, which only that process writes from its I/O
 * path, and a total of the slots of processes that have exited; readers sum
 * them (core/counters.hpp). No lock guards any of it: slots are claimed and
 * folded with atomics, and reads retry around a fold. The block has a slot
 * for every process the server can run at once (client and background
 * backends, auxiliary processes, the postmaster) plus a margin; should more
 * ever count at once, the extra ones add to the total directly.
 *
 * The postmaster counts into a process-local block until shared memory
 * exists; the startup hook then moves counting into the shared block, adding
 * what was counted so far the first time. AddinShmemInitLock is held only
 * while the block is found or created. A second block holds the policy in
 * force (core/shared_policy.hpp, a seqlock), laid out with the start-up
 * policy and replaced only by the policy worker (policy_lifecycle.cpp). A
 * third holds the decision trail's ring (decision_trail.cpp), lock-free; a
 * fourth the last attestation run (attestation.cpp), a seqlock.
 * After a crash restart the old segment is gone: the counters start again
 * from zero rather than read freed memory. The process that created the
 * blocks (the postmaster, or a single-user backend) goes back to local
 * counting before it unmaps them at exit, so nothing counted by its last
 * file calls lands in unmapped memory.
 *
 *-------------------------------------------------------------------------
 */
#include "pg/pg_includes.hpp"

#include "pg/extension.hpp"

/*---- Saved hook values ----*/

namespace {

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;
bool counters_attached_before = false;

/*---- Function declarations ----*/

size_t counting_processes();
void request_shmem();
void startup_shmem();
void detach_counters(int code, Datum arg);

// Every process that can run at once: MaxBackends counts client backends,
// autovacuum workers, background workers and WAL senders; the auxiliary
// processes and the postmaster come on top; the margin covers processes that
// hold no PGPROC (the logger, short-lived children).
size_t counting_processes() {
    return static_cast<size_t>(MaxBackends) + NUM_AUXILIARY_PROCS + 1 + 16;
}

void request_shmem() {
    if (prev_shmem_request_hook != nullptr) {
        prev_shmem_request_hook();
    }
    RequestAddinShmemSpace(MAXALIGN(ec_engine_counters_size(counting_processes())));
    RequestAddinShmemSpace(MAXALIGN(ec_engine_policy_state_size()));
    RequestAddinShmemSpace(MAXALIGN(ec_engine_event_ring_size(ec_event_ring_size)));
    RequestAddinShmemSpace(MAXALIGN(ec_attestation_shmem_size()));
}

void startup_shmem() {
    if (prev_shmem_startup_hook != nullptr) {
        prev_shmem_startup_hook();
    }
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    void* counters = ShmemInitStruct("ephemeral_crypt counters",
                                     ec_engine_counters_size(counting_processes()), &found);
    // The first time, keep what the postmaster counted; after a crash
    // restart, start from zero.
    ec_engine_attach_counters(counters, counting_processes(), !found,
                              !found && !counters_attached_before);
    counters_attached_before = true;
    // After a crash restart the block starts again from the start-up policy;
    // the policy worker, restarted too, reads the policy file again.
    void* policy = ShmemInitStruct("ephemeral_crypt policy", ec_engine_policy_state_size(), &found);
    ec_engine_attach_policy_state(policy, !found);
    void* ring = ShmemInitStruct("ephemeral_crypt events",
                                 ec_engine_event_ring_size(ec_event_ring_size), &found);
    ec_engine_attach_event_ring(ring, ec_event_ring_size, !found);
    void* attestation =
        ShmemInitStruct("ephemeral_crypt attestation", ec_attestation_shmem_size(), &found);
    ec_attestation_shmem_attach(attestation, !found);
    LWLockRelease(AddinShmemInitLock);
    // Registered after the callback that unmaps the segment, so it runs
    // before it (the list runs in reverse).
    if (!IsUnderPostmaster) {
        on_shmem_exit(detach_counters, 0);
    }
}

void detach_counters(int, Datum) {
    ec_engine_detach_counters();
}

}  // namespace

void ec_install_shmem_hooks() {
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = request_shmem;
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;
}
