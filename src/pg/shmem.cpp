/*-------------------------------------------------------------------------
 *
 * shmem.cpp
 *		The counters' shared memory.
 *
 * The per-category counters (files, bytes, failures, fallbacks) are one
 * block of lock-free atomics that every process updates from the I/O path
 * without a lock (core/counters.hpp). The postmaster counts into a
 * process-local block until shared memory exists; the startup hook then
 * moves counting into the shared block, adding what was counted so far the
 * first time. AddinShmemInitLock is held only while the block is found or
 * created. After a crash restart the old segment is gone: the counters start
 * again from zero rather than read freed memory.
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

void request_shmem();
void startup_shmem();

void request_shmem() {
    if (prev_shmem_request_hook != nullptr) {
        prev_shmem_request_hook();
    }
    RequestAddinShmemSpace(MAXALIGN(ec_engine_counters_size()));
}

void startup_shmem() {
    if (prev_shmem_startup_hook != nullptr) {
        prev_shmem_startup_hook();
    }
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    void* counters = ShmemInitStruct("ephemeral_crypt counters", ec_engine_counters_size(), &found);
    // The first time, keep what the postmaster counted; after a crash
    // restart, start from zero.
    ec_engine_attach_counters(counters, !found, !found && !counters_attached_before);
    counters_attached_before = true;
    LWLockRelease(AddinShmemInitLock);
}

}  // namespace

void ec_install_shmem_hooks() {
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = request_shmem;
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;
}
