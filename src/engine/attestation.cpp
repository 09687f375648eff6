// The attestation's checks (see attestation.hpp). Each catches what it
// calls: a failure to check is a failed check whose detail says why, so a
// run always reports all of them.
#include "engine/attestation.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>

#include "core/attestation_schedule.hpp"
#include "core/secure_memory.hpp"
#include "engine/errors.hpp"
#include "engine/inspection.hpp"
#include "engine/self_test.hpp"
#include "engine/startup.hpp"
#include "interpose/layer.hpp"

namespace ephemeral_crypt::engine {

namespace {

namespace ip = ephemeral_crypt::interpose;

using Range = std::pair<std::uintptr_t, std::size_t>;

AttestationCheck passed(const char* name, std::string detail) {
    return AttestationCheck{name, true, std::move(detail)};
}

AttestationCheck failed(const char* name, std::string detail) {
    return AttestationCheck{name, false, std::move(detail)};
}

struct Vma {
    std::uintptr_t start = 0;
    std::uintptr_t end = 0;
    std::string flags;  // the VmFlags line, with a space at each end
};

std::vector<Vma> parse_smaps(const std::string& smaps) {
    std::vector<Vma> vmas;
    std::size_t at = 0;
    while (at < smaps.size()) {
        std::size_t eol = smaps.find('\n', at);
        if (eol == std::string::npos) {
            eol = smaps.size();
        }
        const std::string line = smaps.substr(at, eol - at);
        at = eol + 1;
        unsigned long long start = 0;
        unsigned long long end = 0;
        if (line.rfind("VmFlags:", 0) == 0) {
            if (!vmas.empty()) {
                vmas.back().flags = " " + line.substr(8) + " ";
            }
        } else if (std::sscanf(line.c_str(), "%llx-%llx ", &start, &end) == 2 &&
                   line.find('-') < line.find(' ')) {
            vmas.push_back(
                Vma{static_cast<std::uintptr_t>(start), static_cast<std::uintptr_t>(end), ""});
        }
    }
    return vmas;
}

bool has_flag(const Vma& vma, const char* flag) {
    return vma.flags.find(std::string(" ") + flag + " ") != std::string::npos;
}

std::string address_text(std::uintptr_t address) {
    char text[32];
    std::snprintf(text, sizeof(text), "0x%llx", static_cast<unsigned long long>(address));
    return text;
}

// The first mapping over `range` that lacks `flag`, as a detail; "" if none.
std::string missing_flag(const std::vector<Vma>& vmas, const Range& range, const char* flag,
                         const char* what) {
    const std::uintptr_t first = range.first;
    const std::uintptr_t last = range.first + range.second;
    bool covered = false;
    for (const Vma& vma : vmas) {
        if (vma.end <= first || vma.start >= last) {
            continue;
        }
        covered = true;
        if (!has_flag(vma, flag)) {
            return std::string(what) + " at " + address_text(vma.start) + " is " +
                   (std::string(flag) == "lo" ? "no longer locked"
                                              : "no longer excluded from "
                                                "core dumps");
        }
    }
    return covered ? "" : std::string(what) + " at " + address_text(first) + " is not mapped";
}

}  // namespace

AttestationCheck check_ciphers() {
    if (!cipher_known_answers_pass()) {
        return failed("ciphers", "a cipher no longer reproduces its known answer");
    }
    try {
        run_self_test(server_file_calls(), "");
    } catch (const std::exception& e) {
        return failed("ciphers", std::string("the round trip through the server's file calls "
                                             "failed: ") +
                                     e.what());
    }
    return passed("ciphers",
                  "known answers reproduced; a round trip through the patched slots "
                  "wrote ciphertext and read the canary back");
}

AttestationCheck check_got_slots() {
    if (!ip::installed()) {
        return failed("got_slots", "the layer is not installed in this process");
    }
    const ip::SlotAudit audit = ip::audit_patched_slots();
    if (audit.slots_not_in_place > 0) {
        return failed("got_slots", std::to_string(audit.slots_not_in_place) +
                                       " slot(s) no longer point at the layer; first: " +
                                       audit.first_not_in_place);
    }
    if (audit.unreadable > 0) {
        return failed("got_slots", std::string("could not read a slot: ") + audit.first_unreadable);
    }
    return passed("got_slots", std::to_string(audit.slots_in_place) + " slot(s) in " +
                                   std::to_string(audit.objects_scanned) +
                                   " object(s) point at the layer");
}

// Through libc directly: this library's own calls are never patched.
std::string read_own_smaps() {
    std::string text;
    const int fd = ::open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return text;
    }
    char buffer[16384];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof(buffer));
        if (n <= 0) {
            break;
        }
        text.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return text;
}

AttestationCheck check_key_memory(const std::string& smaps) {
    if (locks_lost_after_fork()) {
        return failed("key_memory", "this process could not lock the key memory again after fork");
    }
    if (smaps.empty()) {
        return failed("key_memory", "/proc/self/smaps could not be read");
    }
    const std::vector<Vma> vmas = parse_smaps(smaps);
    std::vector<Range> locked;
    kept_locked_ranges(locked);
    const std::size_t kept = locked.size();
    SecureArena::process().committed_ranges(locked);
    const void* base = nullptr;
    std::size_t bytes = 0;
    SecureArena::process().reservation(&base, &bytes);
    std::string problem;
    if (base != nullptr) {
        problem = missing_flag(vmas, Range{reinterpret_cast<std::uintptr_t>(base), bytes}, "dd",
                               "the key arena's reservation");
    }
    for (std::size_t i = 0; i < locked.size() && problem.empty(); ++i) {
        const char* what = i < kept ? "the instance key's block" : "a key arena chunk";
        problem = missing_flag(vmas, locked[i], "lo", what);
        if (problem.empty()) {
            problem = missing_flag(vmas, locked[i], "dd", what);
        }
    }
    if (!problem.empty()) {
        return failed("key_memory", problem);
    }
    return passed("key_memory", std::to_string(locked.size()) +
                                    " region(s) of key material locked and excluded from core "
                                    "dumps");
}

AttestationCheck check_policy_file(const std::string& path, const PolicyFileResult& loaded,
                                   bool require_signed, const std::string& in_force_digest,
                                   const std::string& stale_reason) {
    if (path.empty()) {
        return passed("policy_file", "no policy file is named; the settings' policy is in force");
    }
    const bool usable = loaded.status == PolicyFileStatus::Ok ||
                        (loaded.status == PolicyFileStatus::Unsigned && !require_signed);
    if (!usable) {
        return failed("policy_file", "\"" + path + "\" no longer verifies: " + loaded.error);
    }
    const std::string digest = policy_digest_hex(loaded.policy);
    if (digest != in_force_digest) {
        return failed("policy_file", "\"" + path + "\" holds digest " + digest +
                                         ", not the digest in force " + in_force_digest);
    }
    if (!stale_reason.empty()) {
        return failed("policy_file", "the policy in force is stale: " + stale_reason);
    }
    return passed("policy_file",
                  "\"" + path + "\" verifies and holds the digest in force " + digest);
}

ScanOutcome check_data_directory(const ClassifierRoots& roots, const bool encrypted[kCategoryCount],
                                 std::int64_t budget_ms) {
    using Clock = std::chrono::steady_clock;
    const auto ms_now = [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   Clock::now().time_since_epoch())
            .count();
    };
    ScanBudget budget(budget_ms, ms_now());
    ScanOutcome outcome;
    std::vector<FileReport> files;
    try {
        files = scan_data_directory(roots, instance_key(), [&] { return budget.allows(ms_now()); });
    } catch (const std::exception& e) {
        outcome.check = failed("data_directory", std::string("the scan failed: ") + e.what());
        return outcome;
    }
    outcome.files_scanned = static_cast<int>(files.size());
    outcome.cut_short = budget.cut_short();
    std::vector<std::string> plaintext;
    for (const FileReport& file : files) {
        if (!file.category || !encrypted[category_index(*file.category)] || file.has_header ||
            file.physical_size == 0) {
            continue;
        }
        plaintext.push_back(file.path);
    }
    std::string scope = std::to_string(outcome.files_scanned) + " file(s) scanned";
    if (outcome.cut_short) {
        scope += "; cut short by the time budget of " + std::to_string(budget_ms) + " ms";
    }
    if (!plaintext.empty()) {
        std::string detail = std::to_string(plaintext.size()) + " plaintext file(s) in encrypted " +
                             "categories: " + plaintext.front();
        for (std::size_t i = 1; i < plaintext.size() && i < 4; ++i) {
            detail += ", " + plaintext[i];
        }
        if (plaintext.size() > 4) {
            detail += ", ...";
        }
        outcome.check = failed("data_directory", detail + " (" + scope + ")");
        return outcome;
    }
    outcome.check = passed("data_directory",
                           "every file of an encrypted category carries the "
                           "header (" +
                               scope + ")");
    return outcome;
}

}  // namespace ephemeral_crypt::engine
