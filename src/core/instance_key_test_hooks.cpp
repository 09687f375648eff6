// The instance key's test-only accessors. This file compiles to nothing
// unless EPHEMERAL_CRYPT_TEST_HOOKS is defined: the PGXS build defines it only
// with EC_TEST_HOOKS=1 (the build the test suite installs), and CMake compiles
// it a second time, with the definition, into the unit tests alone, so the
// libraries, the policy tool and the benchmarks never carry it.
#include "core/instance_key.hpp"

#include <cstring>

#ifdef EPHEMERAL_CRYPT_TEST_HOOKS

namespace ephemeral_crypt {

void InstanceKey::copy_key_bytes_for_testing(std::uint8_t out[kInstanceKeyBytes]) const noexcept {
    std::memcpy(out, secrets_->master, kInstanceKeyBytes);
}

const void* InstanceKey::secrets_address_for_testing() const noexcept {
    return secrets_;
}

}  // namespace ephemeral_crypt

#endif
