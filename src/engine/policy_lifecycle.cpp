// The accepted serial's file and the reload decision (policy_lifecycle.hpp).
#include "engine/policy_lifecycle.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/file_io.hpp"
#include "core/policy_lifecycle.hpp"
#include "engine/errors.hpp"

namespace ephemeral_crypt::engine {

namespace {

std::string serial_text(std::int64_t serial) {
    return std::to_string(serial);
}

// "line N: " for a file that parsed, so a bad signature names its line.
std::string signature_line_prefix(const PolicyFileResult& loaded) {
    return loaded.signature_line != 0 ? "line " + std::to_string(loaded.signature_line) + ": "
                                      : std::string();
}

}  // namespace

std::optional<std::int64_t> read_accepted_serial(const std::string& path) {
    std::string text;
    const ReadOutcome read = read_small_file(path, 64, true, &text);
    if (!read.ok()) {
        if (read.failed_at == ReadStep::Open && read.error == ENOENT) {
            return std::nullopt;
        }
        throw EngineError("could not read the accepted policy serial \"" + path + "\"", read.error);
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
        text.pop_back();
    }
    const std::optional<std::int64_t> serial = parse_serial(text);
    if (!serial) {
        throw EngineError("the accepted policy serial \"" + path + "\" is damaged: it holds '" +
                          text.substr(0, 32) + "'");
    }
    return serial;
}

void record_accepted_serial(const std::string& path, std::int64_t serial) {
    const std::string line = serial_text(serial) + "\n";
    const std::string temp = path + ".tmp";
    // Straight to libc: the record is plaintext by nature (a number the
    // policy file states openly), and this library's own calls are never
    // routed through the layer.
    if (replace_file_durably(
            libc_file_calls(), AT_FDCWD, temp.c_str(), path.c_str(), 0600, [&](int fd) {
                return write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
            }) != 0) {
        throw_system_error("could not write", path);
    }
}

bool raises_accepted_serial(std::int64_t candidate, std::optional<std::int64_t> floor) noexcept {
    return floor ? candidate > *floor : candidate != 0;
}

ReloadDecision decide_reload(const PolicyFileResult& loaded, bool require_signed,
                             const Policy& in_force, const Policy& started,
                             std::optional<std::int64_t> floor) {
    ReloadDecision decision;
    decision.file_status = loaded.status;
    decision.error_number = loaded.error_number;
    const bool usable = loaded.status == PolicyFileStatus::Ok ||
                        (loaded.status == PolicyFileStatus::Unsigned && !require_signed);
    if (!usable) {
        decision.verdict = ReloadVerdict::Rejected;
        decision.detail = loaded.status == PolicyFileStatus::BadSignature
                              ? signature_line_prefix(loaded) + loaded.error
                              : loaded.error;
        return decision;
    }
    decision.policy = loaded.policy;
    decision.digest = policy_digest_hex(loaded.policy);
    if (decision.digest.empty()) {
        throw EngineError("could not compute the policy digest");
    }
    // Older than the policy in force, or than any this data directory
    // accepted: an old file, however well signed, never wins.
    const std::int64_t newest = floor ? std::max(*floor, in_force.serial) : in_force.serial;
    if (compare_serial(loaded.policy.serial, newest) == SerialOrder::Older) {
        decision.verdict = ReloadVerdict::RolledBack;
        decision.detail = "serial " + serial_text(loaded.policy.serial) + " is older than serial " +
                          serial_text(newest) + ", the newest policy this instance has accepted";
        return decision;
    }
    if (decision.digest == policy_digest_hex(in_force)) {
        decision.verdict = ReloadVerdict::Unchanged;
        return decision;
    }
    std::string restart_needed;
    for (const Category category : kAllCategories) {
        const bool was = started.of(category).enabled;
        if (loaded.policy.of(category).enabled != was) {
            restart_needed.append(restart_needed.empty() ? "" : ", ")
                .append(category_name(category))
                .append(was ? " encryption turned off" : " encryption turned on");
        }
    }
    if (!restart_needed.empty()) {
        decision.verdict = ReloadVerdict::PendingRestart;
        decision.detail = restart_needed;
        return decision;
    }
    decision.verdict = ReloadVerdict::Applied;
    return decision;
}

}  // namespace ephemeral_crypt::engine
