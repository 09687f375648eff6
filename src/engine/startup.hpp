// Starting encryption in the postmaster, before any child exists: the
// instance key is created, the libc layer is configured with it and the
// category policy, and then installed into every loaded object's GOT. The
// key lives here, in the engine, for the life of the process; children
// inherit it by fork. At exit, in every process, the files' cipher state,
// the key and the locked arena are wiped. Nothing here is on an I/O path.
#pragma once

#include "core/no_postgres.hpp"

#include <chrono>
#include <string>

#include "core/category.hpp"
#include "core/instance_key.hpp"
#include "core/policy.hpp"
#include "interpose/layer.hpp"

namespace ephemeral_crypt::engine {

struct StartSettings {
    CategoryPolicy policy[kCategoryCount];  // indexed by category_index()
    std::string data_dir;                   // the server's data directory
    std::string wal_staging_dir;            // ephemeral_crypt.wal_staging_directory
    interpose::EventCallback on_event = nullptr;
};

// Creates a fresh instance key and configures the layer: the policy, the
// real paths of the data directory and of a relocated pg_wal, the event
// callback. Throws (EngineError, CryptoError) if the key cannot be made.
void start_instance(const StartSettings& settings);

// Patches every loaded object so the server's file calls reach the layer.
// With `inject_failure` (the test-only fault switch) it fails as an
// incomplete installation would. Throws EngineError naming what failed.
interpose::InstallReport install_layer(bool inject_failure);

// The instance key, or null before start_instance().
const InstanceKey* instance_key() noexcept;

}  // namespace ephemeral_crypt::engine
