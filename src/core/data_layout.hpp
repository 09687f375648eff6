// Where an encrypted file's logical bytes live on disk, for each format.
//
// Format v1 (AES-256-XTS, and plaintext-audit files) is linear: logical
// offset L is at physical L + 4096, after the header. Format v2 (AES-256-GCM)
// stores each data unit's nonce and tag out of line, in groups: after the
// header, each group is one 4096-byte metadata block (128 entries of 32
// bytes) followed by the 128 data units it describes, so data units stay
// 4096-byte aligned and the metadata of a run of units is one contiguous
// read or write. Every conversion between logical and physical offsets and
// sizes is written here and nowhere else; docs/formats.md draws the layout.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>

#include "core/file_header.hpp"

namespace ephemeral_crypt {

inline constexpr std::size_t kEntryBytes = 32;
inline constexpr std::uint64_t kUnitsPerGroup = kHeaderBytes / kEntryBytes;  // 128

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
        const std::int64_t groups_before = logical / kGroupDataBytes;
        return logical + kHeader + (groups_before + 1) * kBlock;
    }

    // The logical offset a physical position stands for, and likewise the
    // logical size of a file of `physical` bytes. A position inside the
    // header, or inside a metadata block, stands for the start of the data
    // that follows it.
    constexpr std::int64_t logical_position(std::int64_t physical) const noexcept {
        if (!grouped_) {
            return logical_from_physical(physical);
        }
        if (physical <= kHeader) {
            return 0;
        }
        const std::int64_t past_header = physical - kHeader;
        const std::int64_t group = past_header / kGroupPhysicalBytes;
        const std::int64_t within = past_header % kGroupPhysicalBytes;
        return group * kGroupDataBytes + (within > kBlock ? within - kBlock : 0);
    }
    constexpr std::int64_t logical_size(std::int64_t physical) const noexcept {
        return logical_position(physical);
    }

    // The smallest physical size whose logical size is `logical`: what a
    // truncate to `logical` leaves on disk.
    constexpr std::int64_t physical_size(std::int64_t logical) const noexcept {
        if (!grouped_) {
            return physical_from_logical(logical);
        }
        return logical == 0 ? kHeader : physical_position(logical - 1) + 1;
    }

    // Grouped only: where data unit `unit`'s 32-byte metadata entry is.
    constexpr std::uint64_t entry_offset(std::uint64_t unit) const noexcept {
        return kHeaderBytes + (unit / kUnitsPerGroup) * kGroupPhysicalBytes +
               (unit % kUnitsPerGroup) * kEntryBytes;
    }
    // Grouped only: the first unit of the group after `unit`'s; a run of
    // units whose metadata is contiguous never crosses it.
    static constexpr std::uint64_t next_group_start(std::uint64_t unit) noexcept {
        return (unit / kUnitsPerGroup + 1) * kUnitsPerGroup;
    }

  private:
    static constexpr std::int64_t kHeader = static_cast<std::int64_t>(kHeaderBytes);
    static constexpr std::int64_t kBlock = static_cast<std::int64_t>(kHeaderBytes);
    static constexpr std::int64_t kGroupDataBytes =
        static_cast<std::int64_t>(kUnitsPerGroup) * kBlock;
    static constexpr std::int64_t kGroupPhysicalBytes = kGroupDataBytes + kBlock;

    explicit constexpr DataLayout(bool grouped) noexcept : grouped_(grouped) {}

    bool grouped_;
};

static_assert(kEntryBytes * kUnitsPerGroup == kHeaderBytes, "one metadata block per group");
static_assert(DataLayout::grouped().physical_position(0) == 8192);
static_assert(DataLayout::grouped().physical_size(0) == 4096);
static_assert(DataLayout::grouped().physical_size(128 * 4096) == 4096 + 129 * 4096);
static_assert(DataLayout::grouped().logical_size(4096 + 129 * 4096) == 128 * 4096);
static_assert(DataLayout::grouped().physical_position(128 * 4096) == 4096 + 130 * 4096);

}  // namespace ephemeral_crypt
