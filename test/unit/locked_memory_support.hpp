// What the locked-memory tests share: the flags /proc/self/smaps gives the
// mapping under an address (lo: locked, dd: excluded from core dumps), a
// child process that reports a verdict back, and a child's way to make
// RLIMIT_MEMLOCK bind even when the tests run as root (root's CAP_IPC_LOCK
// lets mlock ignore the limit, so the child drops it).
#pragma once

#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>

#include "test_support.hpp"

namespace ephemeral_crypt::testing {

struct Mapping {
    bool found = false;
    std::string permissions;      // "rw-p", "---p"...
    std::set<std::string> flags;  // VmFlags: "lo", "dd", ...
    bool has(const char* flag) const { return flags.count(flag) != 0; }
};

// The mapping of this process that contains `address`.
inline Mapping mapping_of(const void* address) {
    const auto target = reinterpret_cast<std::uintptr_t>(address);
    std::ifstream smaps("/proc/self/smaps");
    std::string line;
    Mapping mapping;
    bool inside = false;
    while (std::getline(smaps, line)) {
        unsigned long long start = 0, end = 0;
        char permissions[8] = {};
        if (std::sscanf(line.c_str(), "%llx-%llx %7s", &start, &end, permissions) == 3) {
            inside = target >= start && target < end;
            if (inside) {
                mapping.found = true;
                mapping.permissions = permissions;
            }
        } else if (inside && line.rfind("VmFlags:", 0) == 0) {
            std::istringstream words(line.substr(8));
            std::string flag;
            while (words >> flag) {
                mapping.flags.insert(flag);
            }
            return mapping;
        }
    }
    return mapping;
}

// "" when the mapping under `address` is locked (lo) and excluded from core
// dumps (dd), else what is wrong with `what`.
inline std::string locked_and_non_dumpable(const void* address, const std::string& what) {
    const Mapping mapping = mapping_of(address);
    if (!mapping.has("lo")) {
        return what + " is not locked";
    }
    if (!mapping.has("dd")) {
        return what + " may be dumped";
    }
    return "";
}

// Runs `body` in a forked child; returns what it returned ("" for success),
// or a description of how the child died.
inline std::string in_child(const std::function<std::string()>& body) {
    int channel[2];
    if (pipe(channel) != 0) {
        return "pipe failed";
    }
    const pid_t pid = fork();
    if (pid == 0) {
        close(channel[0]);
        const std::string verdict = body();
        const ssize_t written = write(channel[1], verdict.data(), verdict.size());
        (void)written;
        _exit(verdict.empty() ? 0 : 1);
    }
    close(channel[1]);
    const std::string verdict = drain_and_close(channel[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status)) {
        return "the child died of signal " + std::to_string(WTERMSIG(status));
    }
    if (WEXITSTATUS(status) != 0 && verdict.empty()) {
        return "the child exited with " + std::to_string(WEXITSTATUS(status));
    }
    return verdict;
}

// In a child: drops CAP_IPC_LOCK (which lets root lock beyond the limit) and
// sets RLIMIT_MEMLOCK to `bytes`. False on failure.
inline bool limit_locked_memory(std::size_t bytes) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    if (syscall(SYS_capget, &header, data) != 0) {
        return false;
    }
    const unsigned word = CAP_IPC_LOCK / 32;
    const unsigned bit = 1u << (CAP_IPC_LOCK % 32);
    data[word].effective &= ~bit;
    data[word].permitted &= ~bit;
    data[word].inheritable &= ~bit;
    if (syscall(SYS_capset, &header, data) != 0) {
        return false;
    }
    const struct rlimit limit { bytes, bytes };
    return setrlimit(RLIMIT_MEMLOCK, &limit) == 0;
}

}  // namespace ephemeral_crypt::testing
