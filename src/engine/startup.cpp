// Instance key creation and layer set-up (see startup.hpp), and the end of
// both at exit.
#include "engine/startup.hpp"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <memory>

#include "core/cipher_timing.hpp"
#include "core/secure_memory.hpp"
#include "engine/errors.hpp"

namespace ephemeral_crypt::engine {

namespace {

std::unique_ptr<InstanceKey> g_key;

// A path's real path, or the path itself if it cannot be resolved.
std::string real_path_or(const std::string& path) {
    char resolved[PATH_MAX];
    return realpath(path.c_str(), resolved) != nullptr ? std::string(resolved) : path;
}

// Registered with atexit in the postmaster and inherited by every child
// through fork, so it runs in every process as it exits: from exit(), from
// PostgreSQL's proc_exit (which ends in exit()), after the server's own exit
// callbacks, which may still close files. (PostgreSQL's on_proc_exit list
// would not do: each child empties the one it inherits.) Only an exit that
// bypasses libc, _exit after SIGQUIT or a fatal signal, skips it: those
// leave a core excluded from the secrets, or none.
void end_instance_at_exit() {
    if (kCipherTimingBuild) {
        report_cipher_time(STDERR_FILENO);  // the server log keeps it (bench/run.sh)
    }
    interpose::retire();  // every file's cipher state wiped; later calls fail closed
    g_key.reset();        // the instance key wiped and unmapped
    SecureArena::process().wipe_all();
}

}  // namespace

void start_instance(const StartSettings& settings) {
    static const bool exit_registered = std::atexit(end_instance_at_exit) == 0;
    if (!exit_registered) {
        throw EngineError("could not register the exit handler that wipes the keys");
    }
    g_key = InstanceKey::generate();
    interpose::LayerConfig config;
    config.key = g_key.get();
    for (std::size_t i = 0; i < kCategoryCount; ++i) {
        config.policy[i] = settings.policy[i];
    }
    config.roots.data_dir = real_path_or(settings.data_dir);
    const std::string wal_link = config.roots.data_dir + "/pg_wal";
    const std::string wal_dir = real_path_or(wal_link);
    if (wal_dir != wal_link) {
        config.roots.wal_dir = wal_dir;  // pg_wal is a symbolic link elsewhere
    }
    config.on_event = settings.on_event;
    config.wal_staging_dir = settings.wal_staging_dir;
    interpose::configure(config);
}

interpose::InstallReport install_layer(bool inject_failure) {
    if (inject_failure) {
        throw EngineError("fault injected by ephemeral_crypt.test_fault = install_layer");
    }
    interpose::InstallReport report = interpose::install();
    if (!report.ok) {
        throw EngineError(report.error);
    }
    return report;
}

const InstanceKey* instance_key() noexcept {
    return g_key.get();
}

}  // namespace ephemeral_crypt::engine
