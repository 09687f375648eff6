// The counters' entry points of the C interface (engine_api.h): their block
// in shared memory, attaching and detaching it (detaching takes the policy
// block and the event ring with it, since all three go with shared memory),
// and reading one category's sums in EC_CATEGORY_COUNTERS order.
#include "engine/engine_api.h"

#include "core/counters.hpp"
#include "engine/counters.hpp"
#include "engine/engine_api_internal.hpp"
#include "interpose/layer.hpp"

using namespace engine::api;

extern "C" {

size_t ec_engine_counters_size(size_t processes) {
    return ec::SharedCounters::bytes_for(processes);
}

void ec_engine_attach_counters(void* shared, size_t processes, bool initialize, bool merge_local) {
    auto* counters = initialize ? ec::SharedCounters::create(shared, processes)
                                : static_cast<ec::SharedCounters*>(shared);
    ip::attach_counters(counters, merge_local);
}

void ec_engine_detach_counters(void) {
    ip::detach_counters();
    // The policy block goes with the rest of shared memory: the layer falls
    // back to the start-up policy (whose WAL cipher is the only one a
    // postmaster's exit uses) instead of reading unmapped memory.
    ip::attach_shared_policy(nullptr);
    g_shared_policy = nullptr;
    g_event_ring = nullptr;
}

bool ec_engine_read_counters(int category, ec_counter_values* out) {
    if (!valid_category(category) || out == nullptr) {
        return false;
    }
    const engine::CounterSnapshot snapshot = engine::read_counters(category_at(category));
#define EC_COPY_COUNTER(name, snapshot_type, meaning) out->name = snapshot.name;
    EC_CATEGORY_COUNTERS(EC_COPY_COUNTER)
#undef EC_COPY_COUNTER
    return true;
}

}  // extern "C"
