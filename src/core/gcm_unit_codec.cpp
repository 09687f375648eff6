// Format v2's units (see unit_codec.hpp): AES-256-GCM, each unit sealed
// under a fresh nonce with a 32-byte entry in its group's metadata block
// (core/authenticated_units.hpp), and opened only if it authenticates.
//
// Reads keep the last metadata block they read in the thread's scratch, so
// reads that move through a group cost one system call each, as in format
// v1. The block is only a hint: this process's own writes keep it current
// (EncryptedFile's note of the entries it wrote), and an entry from it that
// fails is read again from disk before the unit is refused, so another
// process's writes never make a good unit fail.
#include "core/unit_codec.hpp"

#include <cerrno>
#include <memory>

#include "core/cipher_timing.hpp"
#include "core/encrypted_file_internal.hpp"

namespace ephemeral_crypt {

using namespace encrypted_file_internal;

namespace {

constexpr char kTruncated[] =
    "The file is shorter than this process wrote it: units were cut off (truncated).";

// A group's metadata block as a read works from it, and whether it came
// from disk during this read (then a unit it refuses is refused for good).
struct GroupEntries {
    const std::uint8_t* block = nullptr;
    bool fresh = false;

    const std::uint8_t* entry_of(std::uint64_t unit) const noexcept {
        return block + (unit % kUnitsPerGroup) * kEntryBytes;
    }
};

class GcmUnitCodec final : public UnitCodecOver<AuthenticatedUnits> {
  public:
    using UnitCodecOver::UnitCodecOver;

    bool has_entries() const noexcept override { return true; }
    // Every unit's entry says whether it was written, so a hole of any
    // length reads as zeros.
    std::size_t shortest_hole() const noexcept override { return 0; }
    bool authenticates_size() const noexcept override { return true; }

    int seal(std::uint64_t unit, const std::uint8_t* plain, std::uint8_t* out, std::size_t len,
             bool zeros, std::uint8_t* entry, UnitFailure* why) noexcept override {
        const CipherTimer timer(category_, CipherDirection::Encrypt, zeros ? 0 : len);
        return state_->seal(unit, plain, out, len, zeros, entry, why);
    }

    // Each unit is opened in place, as XTS decrypts in place. A unit that
    // fails is wiped before the error returns, so the caller is never handed
    // unauthenticated plaintext. Opening into scratch and copying what
    // authenticates cost a temporary table's scan a tenth of its CPU time
    // (docs/formats.md, "Reading").
    int open_run(const StoredFile& file, std::uint64_t first, std::size_t count,
                 std::size_t last_len, std::uint8_t* data, UnitFailure* why) noexcept override {
        GroupEntries entries;
        int rc = read_entries(file, first, false, &entries, why);
        for (std::size_t i = 0; rc == 0 && i < count; ++i) {
            std::uint8_t* unit_data = data + i * kUnit;
            rc = open_checked(file, first + i, unit_data, unit_data,
                              i + 1 == count ? last_len : kUnit, &entries, why);
        }
        return rc;
    }

    int load_unit(const StoredFile& file, std::uint64_t unit, std::size_t len, std::uint8_t* out,
                  UnitFailure* why) noexcept override {
        Scratch* s = scratch();
        if (s == nullptr) {
            return -ENOMEM;
        }
        GroupEntries entries;
        int rc = read_stored_unit(*this, file, unit, len, s->stored, why);
        if (rc == 0) {
            rc = read_entries(file, unit, false, &entries, why);
        }
        return rc == 0 ? open_checked(file, unit, s->stored, out, len, &entries, why) : rc;
    }

    int truncated_at(std::uint64_t unit, UnitFailure* why) noexcept override {
        return AuthenticatedUnits::fail(unit, kTruncated, why);
    }
    int note_holes(std::uint64_t first, std::uint64_t end) noexcept override {
        return state_->note_holes(first, end);
    }
    void forget_from(std::uint64_t first) noexcept override { state_->forget_from(first); }

  private:
    // Points `entries` at the metadata block of `unit`'s group: the thread's
    // cached block, unless `reread` or it holds another block.
    int read_entries(const StoredFile& file, std::uint64_t unit, bool reread, GroupEntries* entries,
                     UnitFailure* why) noexcept {
        Scratch* s = scratch();
        if (s == nullptr) {
            return -ENOMEM;
        }
        const std::uint64_t group = unit / kUnitsPerGroup;
        if (reread || s->metadata_file != file.file_id || s->metadata_group != group) {
            s->metadata_file = 0;
            const std::int64_t got = file.io.read_at(
                s->metadata, sizeof(s->metadata), file.layout.entry_offset(group * kUnitsPerGroup));
            if (got < 0) {
                return static_cast<int>(got);
            }
            // The block precedes its group's data, so a unit that is on disk
            // has its whole block there (a hole reads as zeros).
            if (static_cast<std::size_t>(got) != sizeof(s->metadata)) {
                return truncated_at(unit, why);
            }
            s->metadata_file = file.file_id;
            s->metadata_group = group;
            entries->fresh = true;
        }
        entries->block = s->metadata;
        return 0;
    }

    // Opens `unit` (`stored` into `plain`, which may be the same buffer)
    // with its entry, reading the entry again from disk before refusing a
    // unit whose cached entry fails (and the unit's data too when it was
    // opened in place: the failed attempt wiped it).
    int open_checked(const StoredFile& file, std::uint64_t unit, std::uint8_t* stored,
                     std::uint8_t* plain, std::size_t len, GroupEntries* entries,
                     UnitFailure* why) noexcept {
        if (entries->fresh) {
            return open_with(unit, stored, plain, len, entries->entry_of(unit), why);
        }
        // The entry came from the thread's cached block, which another
        // process may have made stale: only the disk's entry can refuse it,
        // so the cached entry's failure is not handed back.
        int rc = open_with(unit, stored, plain, len, entries->entry_of(unit), nullptr);
        if (rc != kIntegrityFailure) {
            return rc;
        }
        if (stored == plain) {
            rc = read_stored_unit(*this, file, unit, len, stored, why);
            if (rc < 0) {
                return rc;
            }
        }
        rc = read_entries(file, unit, true, entries, why);
        if (rc < 0) {
            return rc;
        }
        return open_with(unit, stored, plain, len, entries->entry_of(unit), why);
    }

    int open_with(std::uint64_t unit, const std::uint8_t* stored, std::uint8_t* plain,
                  std::size_t len, const std::uint8_t* entry, UnitFailure* why) noexcept {
        const CipherTimer timer(category_, CipherDirection::Decrypt, len);
        return state_->open(unit, stored, plain, len, entry, why);
    }
};

}  // namespace

std::unique_ptr<UnitCodec> make_gcm_unit_codec(std::unique_ptr<AuthenticatedUnits> units,
                                               Category category) noexcept {
    return new_unit_codec<GcmUnitCodec>(std::move(units), category);
}

}  // namespace ephemeral_crypt
