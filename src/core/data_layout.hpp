// Where an encrypted file's logical bytes live on disk, for each format.
//
// Format v1 (AES-256-XTS, and plaintext-audit files) is linear: logical
// offset L is at physical L + 64 KiB, after the header and its hole
// (kDataOffsetBytes says why 64 KiB). Format v2 (AES-256-GCM) stores each
// data unit's nonce and tag out of line. A group is 128 units, whose 32-byte
// entries fill one 4096-byte metadata block; 16 groups make an extent,
// stored as its 16 metadata blocks (64 KiB) followed by its 2048 data units
// (8 MiB). Extents follow one another from 64 KiB on, so every data unit
// keeps the 64 KiB alignment its logical offset has, and the metadata of a
// run of units is one contiguous read or write. Every conversion between
// logical and physical offsets and sizes is written here and nowhere else;
// docs/formats.md draws the layout.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>

#include "core/file_header.hpp"

namespace ephemeral_crypt {

inline constexpr std::size_t kEntryBytes = 32;
inline constexpr std::uint64_t kUnitsPerGroup = kHeaderBytes / kEntryBytes;  // 128
// An extent's metadata fills the data offset's 64 KiB, so its data units
// start 64 KiB-aligned.
inline constexpr std::uint64_t kGroupsPerExtent = kDataOffsetBytes / kHeaderBytes;   // 16
inline constexpr std::uint64_t kUnitsPerExtent = kGroupsPerExtent * kUnitsPerGroup;  // 2048

class DataLayout {
  public:
    static constexpr DataLayout linear() noexcept { return DataLayout(false); }
    static constexpr DataLayout grouped() noexcept { return DataLayout(true); }
    // The layout a header's format version implies (v2: grouped).
    static constexpr DataLayout for_version(std::uint16_t version) noexcept {
        return DataLayout(version == kFormatVersionAuthenticated);
    }

    constexpr bool is_grouped() const noexcept { return grouped_; }

    // Where logical offset `logical` is stored: the kernel file position a
    // descriptor at that logical position has.
    constexpr std::int64_t physical_position(std::int64_t logical) const noexcept {
        if (!grouped_) {
            return physical_from_logical(logical);
        }
        return kDataStart + logical / kExtentDataBytes * kExtentPhysicalBytes +
               kExtentMetadataBytes + logical % kExtentDataBytes;
    }

    // The logical offset a physical position stands for, and likewise the
    // logical size of a file of `physical` bytes. A position inside the
    // header's region, or inside an extent's metadata, stands for the start
    // of the data that follows it.
    constexpr std::int64_t logical_position(std::int64_t physical) const noexcept {
        if (!grouped_) {
            return logical_from_physical(physical);
        }
        if (physical <= kDataStart) {
            return 0;
        }
        const std::int64_t past = physical - kDataStart;
        const std::int64_t extent = past / kExtentPhysicalBytes;
        const std::int64_t within = past % kExtentPhysicalBytes;
        return extent * kExtentDataBytes +
               (within > kExtentMetadataBytes ? within - kExtentMetadataBytes : 0);
    }
    constexpr std::int64_t logical_size(std::int64_t physical) const noexcept {
        return logical_position(physical);
    }

    // The smallest physical size whose logical size is `logical`: what a
    // truncate to `logical` leaves on disk. An empty file is its header.
    constexpr std::int64_t physical_size(std::int64_t logical) const noexcept {
        if (logical == 0) {
            return static_cast<std::int64_t>(kHeaderBytes);
        }
        return grouped_ ? physical_position(logical - 1) + 1 : physical_from_logical(logical);
    }

    // Grouped only: where data unit `unit`'s 32-byte metadata entry is. The
    // entries of one extent are contiguous, in unit order.
    static constexpr std::uint64_t entry_offset(std::uint64_t unit) noexcept {
        return kDataOffsetBytes +
               unit / kUnitsPerExtent * static_cast<std::uint64_t>(kExtentPhysicalBytes) +
               unit % kUnitsPerExtent * kEntryBytes;
    }
    // Grouped only: the first unit of the group after `unit`'s; a run of
    // units that stops there has its entries in one metadata block.
    static constexpr std::uint64_t next_group_start(std::uint64_t unit) noexcept {
        return (unit / kUnitsPerGroup + 1) * kUnitsPerGroup;
    }
    // Grouped only: the first unit of the extent after `unit`'s. A truncate
    // leaves the metadata blocks of the extent it cuts into on disk.
    static constexpr std::uint64_t next_extent_start(std::uint64_t unit) noexcept {
        return (unit / kUnitsPerExtent + 1) * kUnitsPerExtent;
    }

  private:
    static constexpr std::int64_t kDataStart = static_cast<std::int64_t>(kDataOffsetBytes);
    static constexpr std::int64_t kBlock = static_cast<std::int64_t>(kHeaderBytes);
    static constexpr std::int64_t kExtentMetadataBytes =
        static_cast<std::int64_t>(kGroupsPerExtent) * kBlock;
    static constexpr std::int64_t kExtentDataBytes =
        static_cast<std::int64_t>(kUnitsPerExtent) * kBlock;
    static constexpr std::int64_t kExtentPhysicalBytes = kExtentMetadataBytes + kExtentDataBytes;

    explicit constexpr DataLayout(bool grouped) noexcept : grouped_(grouped) {}

    bool grouped_;
};

static_assert(kEntryBytes * kUnitsPerGroup == kHeaderBytes, "one metadata block per group");
static_assert(DataLayout::linear().physical_position(0) == 65536);
static_assert(DataLayout::linear().physical_size(0) == 4096);
static_assert(DataLayout::grouped().physical_position(0) == 2 * 65536);
static_assert(DataLayout::grouped().physical_size(0) == 4096);
static_assert(DataLayout::grouped().physical_size(128 * 4096) == 2 * 65536 + 128 * 4096);
static_assert(DataLayout::grouped().logical_size(2 * 65536 + 2048 * 4096) == 2048 * 4096);
static_assert(DataLayout::grouped().physical_position(2048 * 4096) == 3 * 65536 + 2048 * 4096);
static_assert(DataLayout::grouped().logical_position(3 * 65536 + 2048 * 4096) == 2048 * 4096);
static_assert(DataLayout::entry_offset(128) == 65536 + 4096);
static_assert(DataLayout::entry_offset(2048) == 2 * 65536 + 2048 * 4096);
static_assert(DataLayout::grouped().physical_position(12345 * 4096) % 65536 ==
                  (12345 * 4096) % 65536,
              "data units keep their logical offset's 64 KiB alignment");

}  // namespace ephemeral_crypt
