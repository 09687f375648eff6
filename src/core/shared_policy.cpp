// The seqlock of shared_policy.hpp, and the conversions between a Policy and
// its fixed-size snapshot.
#include "core/shared_policy.hpp"

#include <cstdio>
#include <cstring>
#include <new>

namespace ephemeral_crypt {

void snapshot_policy(const Policy& policy, PolicySnapshot* out) noexcept {
    std::snprintf(out->version, sizeof(out->version), "%s", policy.version.c_str());
    for (std::size_t i = 0; i < kCategoryCount; ++i) {
        out->enabled[i] = policy.category[i].enabled ? 1 : 0;
        out->degradation[i] = static_cast<std::uint8_t>(policy.category[i].degradation);
        out->cipher[i] = static_cast<std::uint8_t>(policy.category[i].cipher);
    }
    out->serial = policy.serial;
    out->has_not_after = policy.not_after.has_value();
    out->not_after = policy.not_after.value_or(0);
    out->has_max_key_age = policy.max_key_age.has_value();
    out->max_key_age = policy.max_key_age.value_or(0);
}

Policy policy_of(const PolicySnapshot& snapshot) {
    Policy policy;
    policy.version.assign(snapshot.version, strnlen(snapshot.version, sizeof(snapshot.version)));
    for (std::size_t i = 0; i < kCategoryCount; ++i) {
        policy.category[i].enabled = snapshot.enabled[i] != 0;
        policy.category[i].degradation = static_cast<Degradation>(snapshot.degradation[i]);
        policy.category[i].cipher = static_cast<FileCipher>(snapshot.cipher[i]);
    }
    policy.serial = snapshot.serial;
    if (snapshot.has_not_after) {
        policy.not_after = snapshot.not_after;
    }
    if (snapshot.has_max_key_age) {
        policy.max_key_age = snapshot.max_key_age;
    }
    return policy;
}

SharedPolicy* SharedPolicy::create(void* memory) noexcept {
    return new (memory) SharedPolicy();
}

void SharedPolicy::publish(const PolicySnapshot& snapshot) noexcept {
    while (writing_.exchange(true, std::memory_order_acquire)) {
        // Another writer is publishing; it takes microseconds.
    }
    std::uint64_t words[kWords] = {};
    std::memcpy(words, &snapshot, sizeof(snapshot));
    const std::uint64_t begin = sequence_.load(std::memory_order_relaxed) | 1;
    sequence_.store(begin, std::memory_order_relaxed);  // odd: a write is under way
    std::atomic_thread_fence(std::memory_order_release);
    for (std::size_t i = 0; i < kWords; ++i) {
        words_[i].store(words[i], std::memory_order_relaxed);
    }
    sequence_.store(begin + 1, std::memory_order_release);
    writing_.store(false, std::memory_order_release);
}

bool SharedPolicy::read(PolicySnapshot* out) const noexcept {
    std::uint64_t words[kWords];
    for (;;) {
        const std::uint64_t before = sequence_.load(std::memory_order_acquire);
        if (before == 0) {
            return false;
        }
        if (before & 1) {
            continue;  // a write is under way
        }
        for (std::size_t i = 0; i < kWords; ++i) {
            words[i] = words_[i].load(std::memory_order_relaxed);
        }
        std::atomic_thread_fence(std::memory_order_acquire);
        if (sequence_.load(std::memory_order_relaxed) == before) {
            break;
        }
    }
    std::memcpy(out, words, sizeof(*out));
    return true;
}

}  // namespace ephemeral_crypt
