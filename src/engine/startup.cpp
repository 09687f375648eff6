// Instance key creation and layer set-up (see startup.hpp).
#include "engine/startup.hpp"

#include <limits.h>
#include <stdlib.h>

#include <memory>

#include "engine/errors.hpp"

namespace ephemeral_crypt::engine {

namespace {

std::unique_ptr<InstanceKey> g_key;

// A path's real path, or the path itself if it cannot be resolved.
std::string real_path_or(const std::string& path) {
    char resolved[PATH_MAX];
    return realpath(path.c_str(), resolved) != nullptr ? std::string(resolved) : path;
}

}  // namespace

void start_instance(const StartSettings& settings) {
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
