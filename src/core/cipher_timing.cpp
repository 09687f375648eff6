// The benchmark build's cipher time account (see cipher_timing.hpp). The
// account is process-local and lock-free; a forked child starts from zero,
// so each process reports only its own work.
#include "core/cipher_timing.hpp"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string_view>

namespace ephemeral_crypt {

namespace {

struct DirectionAccount {
    std::atomic<std::uint64_t> nanoseconds{0};
    std::atomic<std::uint64_t> bytes{0};
};

struct Account {
    DirectionAccount direction[2];
};

Account g_accounts[kCategoryCount];

void forget_parent_account() {
    for (Account& account : g_accounts) {
        for (DirectionAccount& d : account.direction) {
            d.nanoseconds.store(0, std::memory_order_relaxed);
            d.bytes.store(0, std::memory_order_relaxed);
        }
    }
}

// Registered on first use; a process that never times a call has nothing
// to forget in its children.
void register_fork_reset() noexcept {
    static const bool registered = pthread_atfork(nullptr, nullptr, forget_parent_account) == 0;
    (void)registered;
}

}  // namespace

std::uint64_t cipher_clock_ns() noexcept {
    // CLOCK_MONOTONIC is read in the vDSO, without a system call: a few tens
    // of nanoseconds against the few hundred a 4 KiB unit takes.
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1000000000u +
           static_cast<std::uint64_t>(now.tv_nsec);
}

void add_cipher_time(Category category, CipherDirection direction, std::uint64_t nanoseconds,
                     std::size_t bytes) noexcept {
    register_fork_reset();
    DirectionAccount& d =
        g_accounts[category_index(category)].direction[static_cast<std::size_t>(direction)];
    d.nanoseconds.fetch_add(nanoseconds, std::memory_order_relaxed);
    d.bytes.fetch_add(bytes, std::memory_order_relaxed);
}

void report_cipher_time(int fd) noexcept {
    for (Category category : kAllCategories) {
        const Account& account = g_accounts[category_index(category)];
        const DirectionAccount& enc = account.direction[0];
        const DirectionAccount& dec = account.direction[1];
        if (enc.bytes.load() == 0 && dec.bytes.load() == 0) {
            continue;
        }
        const std::string_view name = category_name(category);
        char line[256];
        const int len = std::snprintf(
            line, sizeof(line),
            "ephemeral_crypt cipher timing: pid %d category %.*s encrypt_ns %llu encrypt_bytes "
            "%llu decrypt_ns %llu decrypt_bytes %llu\n",
            static_cast<int>(getpid()), static_cast<int>(name.size()), name.data(),
            static_cast<unsigned long long>(enc.nanoseconds.load()),
            static_cast<unsigned long long>(enc.bytes.load()),
            static_cast<unsigned long long>(dec.nanoseconds.load()),
            static_cast<unsigned long long>(dec.bytes.load()));
        if (len > 0) {
            ssize_t ignored = write(fd, line, static_cast<std::size_t>(len));
            (void)ignored;
        }
    }
}

}  // namespace ephemeral_crypt
