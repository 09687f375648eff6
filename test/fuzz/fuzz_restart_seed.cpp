// libFuzzer target for the restart seed decoder: any input, any length, must
// either decode or be refused without reading out of bounds (ASan checks
// that). Raw inputs rarely carry a valid digest, so each input is also used
// as the fields of a seed: that seed must round-trip exactly, and the same
// bytes with one byte changed (where the input says) must be refused.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/restart_seed.hpp"

namespace ec = ephemeral_crypt;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    (void)ec::decode_restart_seed(data, size);
    if (size < 14) {
        return 0;
    }
    // Bytes 0-3 timeline, 4-11 LSN, 12-13 where to damage; the rest is the prefix.
    ec::RestartSeed seed;
    std::memcpy(&seed.timeline, data, 4);
    std::memcpy(&seed.checkpoint_lsn, data + 4, 8);
    const std::size_t damage_at = static_cast<std::size_t>(data[12]) << 8 | data[13];
    seed.prefix.assign(data + 14, data + size);
    const std::vector<std::uint8_t> encoded = ec::encode_restart_seed(seed);
    const auto decoded = ec::decode_restart_seed(encoded.data(), encoded.size());
    if (!decoded || decoded->timeline != seed.timeline ||
        decoded->checkpoint_lsn != seed.checkpoint_lsn || decoded->prefix != seed.prefix) {
        __builtin_trap();  // an encoded seed must decode to itself
    }
    std::vector<std::uint8_t> damaged = encoded;
    damaged[damage_at % damaged.size()] ^= 0x01;
    if (ec::decode_restart_seed(damaged.data(), damaged.size())) {
        __builtin_trap();  // the digest covers every byte
    }
    (void)ec::decode_restart_seed(encoded.data(), damage_at % encoded.size());
    return 0;
}
