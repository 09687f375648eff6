/*-------------------------------------------------------------------------
 *
 * decision_trail.cpp
 *		Recording the decisions that are not the routine path.
 *
 * Each event goes to the ring in shared memory (core/event_ring.hpp, read
 * by ephemeral_crypt_events()) and to one LOG line with the same fields:
 * which identity (the key id), which policy (version and digest), which
 * side effect (the action, the file, the errno), and when, in which process
 * and backend type. The layer's events arrive here from report_layer_event
 * as the wrapper returns, with no lock held; the policy worker records its
 * loads, refusals and expiries. Only failures and refusals come here, so
 * a successful I/O never pays for the trail; a full ring overwrites its
 * oldest events and counts them as dropped, and a writer never waits.
 *
 * Locking: none. The ring is lock-free; the ring's size
 * (ephemeral_crypt.event_ring_size) is fixed at start-up.
 *
 *-------------------------------------------------------------------------
 */
#include "pg/pg_includes.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

#include "pg/extension.hpp"

namespace {

// What pg_stat_activity would call the process: a background worker by its
// bgw_type ("ephemeral_crypt policy"), the postmaster by name.
const char* backend_type_name() {
    if (MyProcPid == PostmasterPid) {
        return "postmaster";
    }
    if (MyBackendType == B_BG_WORKER && MyBgworkerEntry != nullptr) {
        return MyBgworkerEntry->bgw_type;
    }
    return GetBackendTypeDesc(MyBackendType);
}

}  // namespace

void ec_trail_event(const char* action, int category, const char* file, int error_number,
                    const char* detail) {
    ec_event_record event;
    memset(&event, 0, sizeof(event));
    event.time_unix_ms = ec_unix_ms_now();
    event.pid = MyProcPid;
    event.error_number = error_number;
    event.category = category;
    snprintf(event.backend_type, sizeof(event.backend_type), "%s", backend_type_name());
    snprintf(event.action, sizeof(event.action), "%s", action);
    snprintf(event.file, sizeof(event.file), "%s", file != nullptr ? file : "");
    snprintf(event.detail, sizeof(event.detail), "%s", detail != nullptr ? detail : "");
    if (!ec_engine_record_event(&event)) {
        return;  // before shared memory exists: the caller's own message stands alone
    }
    ereport(LOG,
            (errcode(ERRCODE_SUCCESSFUL_COMPLETION),
             errmsg("ephemeral_crypt: event %llu: action %s, category %s, file \"%s\", errno %d, "
                    "pid %d (%s), policy version \"%s\", digest %s, key %s: %s",
                    static_cast<unsigned long long>(event.id), event.action,
                    category >= 0 ? ec_engine_category_name(category) : "none", event.file,
                    event.error_number, event.pid, event.backend_type, event.policy_version,
                    event.policy_digest, event.key_id, event.detail),
             errhidestmt(true)));
}
