// What EncryptedFile's source files (encrypted_file*.cpp, the unit codecs,
// authenticated_units.cpp) share and nothing else includes: the unit
// constants, the per-thread scratch buffers, and two small byte helpers.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#include "core/data_layout.hpp"
#include "core/xts_cipher.hpp"

namespace ephemeral_crypt::encrypted_file_internal {

inline constexpr std::uint64_t kUnit = kDataUnitBytes;
inline constexpr std::size_t kWriteChunkUnits = 32;
inline constexpr std::size_t kWriteChunkBytes = kWriteChunkUnits * kDataUnitBytes;

struct Scratch {
    alignas(64) std::uint8_t unit[kDataUnitBytes];
    // Format v2: a partial unit's data as read, opened from here into `unit`.
    alignas(64) std::uint8_t stored[kDataUnitBytes];
    alignas(64) std::uint8_t chunk[kWriteChunkBytes];
    std::uint8_t chunk_entries[kWriteChunkUnits * kEntryBytes];
    // The last metadata block read: of which file (EncryptedFile::id_, 0:
    // none) and which group.
    std::uint64_t metadata_file = 0;
    std::uint64_t metadata_group = 0;
    std::uint8_t metadata[kUnitsPerGroup * kEntryBytes];
};

// This thread's buffers, allocated on first use; null if memory runs out.
inline Scratch* scratch() noexcept {
    thread_local std::unique_ptr<Scratch> buffers;
    if (!buffers) {
        buffers.reset(new (std::nothrow) Scratch);
    }
    return buffers.get();
}

// A buffer is all zeros when its first byte is zero and it equals itself
// shifted by one byte. libc's vectorised memcmp does the scan and stops at
// the first non-zero byte, which in ciphertext or a page header comes within
// a few bytes; only zero pages are scanned whole, at memcmp's speed.
inline bool all_zero(const std::uint8_t* data, std::size_t len) noexcept {
    return len == 0 || (data[0] == 0 && std::memcmp(data, data + 1, len - 1) == 0);
}

// How many units `size` bytes take, the last one possibly short.
inline std::uint64_t units_in(std::uint64_t size) noexcept {
    return (size + kUnit - 1) / kUnit;
}

}  // namespace ephemeral_crypt::encrypted_file_internal
