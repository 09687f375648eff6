// The decision trail's entry points of the C interface (engine_api.h): the
// ring's place in shared memory, recording an event stamped with the policy
// in force and the key's id, and reading the ring back through a snapshot
// this process keeps between calls. Recording copies field by field with
// snprintf and allocates nothing.
#include "engine/engine_api.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "core/event_ring.hpp"
#include "core/shared_policy.hpp"
#include "engine/engine_api_internal.hpp"
#include "engine/errors.hpp"

using namespace engine::api;

ec::EventRing* engine::api::g_event_ring = nullptr;

namespace {

// What the last ec_engine_snapshot_events() copied, for ec_engine_event_at().
ec::RingSnapshot g_event_snapshot;

}  // namespace

extern "C" {

size_t ec_engine_event_ring_size(int capacity) {
    return ec::EventRing::bytes_for(capacity > 0 ? static_cast<std::size_t>(capacity) : 0);
}

void ec_engine_attach_event_ring(void* shared, int capacity, bool initialize) {
    g_event_ring = initialize ? ec::EventRing::create(
                                    shared, capacity > 0 ? static_cast<std::size_t>(capacity) : 0)
                              : static_cast<ec::EventRing*>(shared);
}

bool ec_engine_record_event(ec_event_record* event) {
    if (g_event_ring == nullptr) {
        return false;
    }
    // Copied field by field, with snprintf, so nothing here allocates.
    ec::DecisionEvent stored;
    stored.time_ms = event->time_unix_ms != 0 ? event->time_unix_ms : unix_ms_now();
    stored.pid = event->pid;
    stored.error_number = event->error_number;
    stored.category = event->category;
    std::snprintf(stored.backend_type, sizeof(stored.backend_type), "%s", event->backend_type);
    std::snprintf(stored.action, sizeof(stored.action), "%s", event->action);
    std::snprintf(stored.file, sizeof(stored.file), "%s", event->file);
    std::snprintf(stored.detail, sizeof(stored.detail), "%s", event->detail);
    ec::PolicySnapshot policy;
    if (g_shared_policy != nullptr && g_shared_policy->read(&policy)) {
        // Truncated to the event's field (a version may be up to 256 bytes).
        std::memcpy(stored.policy_version, policy.version,
                    std::min(strnlen(policy.version, sizeof(policy.version)),
                             sizeof(stored.policy_version) - 1));
        std::snprintf(stored.policy_digest, sizeof(stored.policy_digest), "%s", policy.digest);
    }
    std::snprintf(stored.key_id, sizeof(stored.key_id), "%s", g_key_id);
    // What was stored, for the caller's log line.
    event->id = g_event_ring->push(stored);
    event->time_unix_ms = stored.time_ms;
    std::snprintf(event->policy_version, sizeof(event->policy_version), "%s",
                  stored.policy_version);
    std::snprintf(event->policy_digest, sizeof(event->policy_digest), "%s", stored.policy_digest);
    std::snprintf(event->key_id, sizeof(event->key_id), "%s", stored.key_id);
    return true;
}

ec_status ec_engine_snapshot_events(int* count, uint64_t* dropped, ec_error* error) {
    *count = 0;
    *dropped = 0;
    return fenced(error, [&] {
        if (g_event_ring == nullptr) {
            throw engine::EngineError("the event ring is not in shared memory");
        }
        g_event_snapshot = g_event_ring->snapshot();
        *count = static_cast<int>(g_event_snapshot.events.size());
        *dropped = g_event_snapshot.dropped;
        return EC_OK;
    });
}

bool ec_engine_event_at(int index, ec_event_record* out) {
    if (index < 0 || static_cast<std::size_t>(index) >= g_event_snapshot.events.size()) {
        return false;
    }
    const ec::DecisionEvent& event = g_event_snapshot.events[static_cast<std::size_t>(index)];
    std::memset(out, 0, sizeof(*out));
    out->id = event.id;
    out->time_unix_ms = event.time_ms;
    out->pid = event.pid;
    out->error_number = event.error_number;
    out->category = event.category;
    std::memcpy(out->backend_type, event.backend_type, sizeof(out->backend_type));
    std::memcpy(out->action, event.action, sizeof(out->action));
    std::memcpy(out->file, event.file, sizeof(out->file));
    std::memcpy(out->detail, event.detail, sizeof(out->detail));
    std::memcpy(out->policy_version, event.policy_version, sizeof(out->policy_version));
    std::memcpy(out->policy_digest, event.policy_digest, sizeof(out->policy_digest));
    std::memcpy(out->key_id, event.key_id, sizeof(out->key_id));
    // Every text NUL-terminated, whatever the shared copy held.
    out->backend_type[sizeof(out->backend_type) - 1] = '\0';
    out->action[sizeof(out->action) - 1] = '\0';
    out->file[sizeof(out->file) - 1] = '\0';
    out->detail[sizeof(out->detail) - 1] = '\0';
    out->policy_version[sizeof(out->policy_version) - 1] = '\0';
    out->policy_digest[sizeof(out->policy_digest) - 1] = '\0';
    out->key_id[sizeof(out->key_id) - 1] = '\0';
    return true;
}

void ec_engine_event_counts(uint64_t* recorded, uint64_t* dropped) {
    *recorded = 0;
    *dropped = 0;
    if (g_event_ring != nullptr) {
        g_event_ring->counts(recorded, dropped);
    }
}

}  // extern "C"
