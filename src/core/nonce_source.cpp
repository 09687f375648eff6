// The per-thread nonce pool (see nonce_source.hpp). The pool holds no secret:
// nonces are stored in plaintext beside the data they seal.
#include "core/nonce_source.hpp"

#include <pthread.h>
#include <sodium.h>

#include <atomic>
#include <cstring>

namespace ephemeral_crypt {

namespace {

constexpr std::size_t kPoolBytes = 4096;

std::atomic<std::uint64_t> g_fork_generation{1};

void after_fork_in_child() {
    g_fork_generation.fetch_add(1, std::memory_order_relaxed);
}

bool ready() noexcept {
    static const bool initialised = [] {
        if (sodium_init() < 0) {
            return false;
        }
        return pthread_atfork(nullptr, nullptr, after_fork_in_child) == 0;
    }();
    return initialised;
}

struct Pool {
    std::uint64_t generation = 0;  // fork generation it was filled in; 0: never
    std::size_t used = kPoolBytes;
    std::uint8_t bytes[kPoolBytes];
};

thread_local Pool t_pool;

}  // namespace

bool draw_nonce(std::uint8_t out[kGcmNonceBytes]) noexcept {
    if (!ready()) {
        return false;
    }
    Pool& pool = t_pool;
    const std::uint64_t generation = g_fork_generation.load(std::memory_order_relaxed);
    if (pool.generation != generation || pool.used + kGcmNonceBytes > kPoolBytes) {
        randombytes_buf(pool.bytes, sizeof(pool.bytes));
        pool.generation = generation;
        pool.used = 0;
    }
    std::memcpy(out, pool.bytes + pool.used, kGcmNonceBytes);
    pool.used += kGcmNonceBytes;
    return true;
}

}  // namespace ephemeral_crypt
