// Restart seed encoding and decoding (format in restart_seed.hpp). The
// fields are written byte by byte in little-endian order, which is also the
// layout of the packed struct earlier versions copied on x86-64, so seeds
// left by them still decode.
#include "core/restart_seed.hpp"

#include <openssl/crypto.h>

#include <cstring>

#include "core/sha256.hpp"

namespace ephemeral_crypt {

namespace {

void put_le(std::uint8_t* out, std::uint64_t value, std::size_t bytes) noexcept {
    for (std::size_t i = 0; i < bytes; ++i) {
        out[i] = static_cast<std::uint8_t>(value >> (8 * i));
    }
}

std::uint64_t get_le(const std::uint8_t* in, std::size_t bytes) noexcept {
    std::uint64_t value = 0;
    for (std::size_t i = bytes; i-- > 0;) {
        value = (value << 8) | in[i];
    }
    return value;
}

}  // namespace

std::vector<std::uint8_t> encode_restart_seed(const RestartSeed& seed) {
    if (seed.prefix.size() > UINT32_MAX) {
        return {};
    }
    std::vector<std::uint8_t> out(kRestartSeedHeaderBytes + seed.prefix.size() +
                                  kRestartSeedDigestBytes);
    std::memcpy(out.data(), kRestartSeedMagic, sizeof(kRestartSeedMagic));
    put_le(out.data() + 8, seed.timeline, 4);
    put_le(out.data() + 12, seed.prefix.size(), 4);
    put_le(out.data() + 16, seed.checkpoint_lsn, 8);
    if (!seed.prefix.empty()) {
        std::memcpy(out.data() + kRestartSeedHeaderBytes, seed.prefix.data(), seed.prefix.size());
    }
    const std::size_t digested = out.size() - kRestartSeedDigestBytes;
    if (!sha256(out.data(), digested, out.data() + digested)) {
        return {};
    }
    return out;
}

std::optional<RestartSeed> decode_restart_seed(const std::uint8_t* data, std::size_t len) {
    if (data == nullptr || len < kRestartSeedHeaderBytes + kRestartSeedDigestBytes ||
        std::memcmp(data, kRestartSeedMagic, sizeof(kRestartSeedMagic)) != 0) {
        return std::nullopt;
    }
    const std::uint64_t prefix_bytes = get_le(data + 12, 4);
    if (len != kRestartSeedHeaderBytes + prefix_bytes + kRestartSeedDigestBytes) {
        return std::nullopt;
    }
    std::uint8_t digest[kSha256Bytes];
    const std::size_t digested = len - kRestartSeedDigestBytes;
    if (!sha256(data, digested, digest) ||
        CRYPTO_memcmp(digest, data + digested, sizeof(digest)) != 0) {
        return std::nullopt;
    }
    RestartSeed seed;
    seed.timeline = static_cast<std::uint32_t>(get_le(data + 8, 4));
    seed.checkpoint_lsn = get_le(data + 16, 8);
    seed.prefix.assign(data + kRestartSeedHeaderBytes, data + digested);
    return seed;
}

}  // namespace ephemeral_crypt
