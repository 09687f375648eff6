// Engine implementation: creating and opening files, and writes, truncates
// and allocations (reads are in encrypted_file_read.cpp). Scratch space for
// read-modify-write, for the ciphertext of a write and for metadata entries
// lives in per-thread buffers allocated on first use (encrypted_file_internal.hpp),
// so no call allocates and files cost nothing while idle (a backend may
// hold a thousand of them open). The only other allocation is format v2's
// record of what this process wrote, one 1 KiB block the first time it
// writes into each group of 128 units.
#include "core/encrypted_file.hpp"

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>

#include "core/encrypted_file_internal.hpp"

namespace ephemeral_crypt {

using namespace encrypted_file_internal;

namespace {

// Names each EncryptedFile in the thread's metadata cache.
std::atomic<std::uint64_t> g_next_file_id{1};

}  // namespace

EncryptedFile::EncryptedFile(const FileHeader& header, std::unique_ptr<UnitCodec> codec,
                             std::uint64_t size) noexcept
    : header_(header),
      layout_(DataLayout::for_version(header.version)),
      codec_(std::move(codec)),
      size_(size),
      id_(g_next_file_id.fetch_add(1, std::memory_order_relaxed)) {}

namespace {

// The codec the header calls for (none for a plaintext-audit file); false,
// with the outcome's error set, if it cannot be made: ENOMEM (and
// locked_memory_exhausted) when the arena had no room, so that the layer's
// WARNING can name the limit, else EIO.
bool make_codec(const InstanceKey& key, const FileHeader& header, std::unique_ptr<UnitCodec>* codec,
                EncryptedFile::OpenOutcome* outcome) noexcept {
    if (header.plaintext_audit()) {
        return true;
    }
    CipherSetupFailure failure = CipherSetupFailure::None;
    *codec = make_unit_codec(key, header, &failure);
    if (!*codec) {
        outcome->locked_memory_exhausted = failure == CipherSetupFailure::NoLockedMemory;
        outcome->error = outcome->locked_memory_exhausted ? ENOMEM : EIO;
        return false;
    }
    return true;
}

}  // namespace

EncryptedFile::OpenOutcome EncryptedFile::create(PositionalIo& io, const InstanceKey& key,
                                                 Category category, FileCipher cipher,
                                                 bool plaintext_audit) noexcept {
    OpenOutcome outcome;
    FileHeader header;
    header.category = category;
    header.version = plaintext_audit ? kFormatVersionLinear : format_version_for(cipher);
    header.cipher = plaintext_audit ? kCipherNone : static_cast<std::uint8_t>(cipher);
    header.flags = plaintext_audit ? kFlagPlaintextAudit : 0;
    header.key_id = key.id();
    randombytes_buf(header.nonce.data(), header.nonce.size());

    std::unique_ptr<UnitCodec> codec;
    if (!make_codec(key, header, &codec, &outcome)) {
        return outcome;
    }
    alignas(64) std::uint8_t encoded[kHeaderBytes];
    if (!encode_header(header, key, encoded)) {
        outcome.error = EIO;
        return outcome;
    }
    const std::int64_t written = io.write_at(encoded, sizeof(encoded), 0);
    if (written != static_cast<std::int64_t>(sizeof(encoded))) {
        outcome.error = written < 0 ? static_cast<int>(-written) : EIO;
        return outcome;
    }
    outcome.file.reset(new (std::nothrow) EncryptedFile(header, std::move(codec), 0));
    if (!outcome.file) {
        outcome.error = ENOMEM;
        return outcome;
    }
    outcome.status = HeaderStatus::Ok;
    return outcome;
}

EncryptedFile::OpenOutcome EncryptedFile::open(PositionalIo& io, const InstanceKey& key) noexcept {
    OpenOutcome outcome;
    alignas(64) std::uint8_t encoded[kHeaderBytes];
    const std::int64_t got = io.read_at(encoded, sizeof(encoded), 0);
    if (got < 0) {
        outcome.error = static_cast<int>(-got);
        return outcome;
    }
    const DecodedHeader decoded = decode_header(encoded, static_cast<std::size_t>(got), &key);
    outcome.status = decoded.status;
    if (decoded.status != HeaderStatus::Ok) {
        return outcome;
    }
    const std::int64_t physical = io.size();
    if (physical < 0) {
        outcome.error = static_cast<int>(-physical);
        return outcome;
    }
    std::unique_ptr<UnitCodec> codec;
    if (!make_codec(key, decoded.header, &codec, &outcome)) {
        return outcome;
    }
    const auto logical = static_cast<std::uint64_t>(
        DataLayout::for_version(decoded.header.version).logical_size(physical));
    outcome.file.reset(new (std::nothrow) EncryptedFile(decoded.header, std::move(codec), logical));
    if (!outcome.file) {
        outcome.error = ENOMEM;
    }
    return outcome;
}

std::size_t EncryptedFile::unit_length(std::uint64_t unit, std::uint64_t file_size) const noexcept {
    const std::uint64_t start = unit * kUnit;
    if (file_size <= start) {
        return 0;
    }
    return static_cast<std::size_t>(std::min<std::uint64_t>(kUnit, file_size - start));
}

bool EncryptedFile::stores_zeros_as_they_are(std::uint64_t offset, std::uint64_t end,
                                             std::uint64_t new_size) const noexcept {
    // Only where units have no entries (format v1). The write must cover
    // whole units, the last one at its new length, and that length must be
    // one a hole can stand for (in format v1 a unit under one AES block is
    // a keystream XOR, never stored as zeros).
    if (codec_->has_entries() || offset % kUnit != 0) {
        return false;
    }
    const std::uint64_t last_start = ((end - 1) / kUnit) * kUnit;
    const std::size_t last_len = unit_length(last_start / kUnit, new_size);
    return end == last_start + last_len && last_len >= codec_->shortest_hole();
}

int EncryptedFile::store_run(PositionalIo& io, std::uint64_t start, const std::uint8_t* data,
                             std::size_t len, const std::uint8_t* entries) noexcept {
    const std::int64_t put = io.write_at(data, len, layout_.physical_position(start));
    if (put < 0) {
        return static_cast<int>(put);
    }
    if (static_cast<std::size_t>(put) != len) {
        return -EIO;
    }
    if (!codec_ || !codec_->has_entries()) {
        return 0;
    }
    // The data first, then the entries that authenticate it.
    const std::size_t entries_len = static_cast<std::size_t>(units_in(len)) * kEntryBytes;
    const std::int64_t put_entries =
        io.write_at(entries, entries_len, layout_.entry_offset(start / kUnit));
    if (put_entries < 0) {
        return static_cast<int>(put_entries);
    }
    note_entries(start / kUnit, entries, entries_len);
    return static_cast<std::size_t>(put_entries) == entries_len ? 0 : -EIO;
}

void EncryptedFile::note_entries(std::uint64_t first, const std::uint8_t* entries,
                                 std::size_t len) noexcept {
    Scratch* s = scratch();
    if (s != nullptr && s->metadata_file == id_ && s->metadata_group == first / kUnitsPerGroup) {
        std::memcpy(s->metadata + (first % kUnitsPerGroup) * kEntryBytes, entries, len);
    }
}

int EncryptedFile::store_unit(PositionalIo& io, std::uint64_t unit, const std::uint8_t* plain,
                              std::size_t len, UnitFailure* why) noexcept {
    Scratch* s = scratch();
    if (s == nullptr) {
        return -ENOMEM;
    }
    const std::uint8_t* out = plain;
    if (encrypted()) {
        const int rc = codec_->seal(unit, plain, s->chunk, len, false, s->chunk_entries, why);
        if (rc < 0) {
            return rc;
        }
        out = s->chunk;
    }
    return store_run(io, unit * kUnit, out, len, s->chunk_entries);
}

int EncryptedFile::grow_last_unit(PositionalIo& io, std::uint64_t new_size,
                                  UnitFailure* why) noexcept {
    const std::uint64_t last = size_ / kUnit;
    const std::size_t old_len = unit_length(last, size_);
    if (old_len == 0 || old_len == kUnit) {
        return 0;  // no partial last unit: nothing was encrypted at a shorter length
    }
    Scratch* s = scratch();
    if (s == nullptr) {
        return -ENOMEM;
    }
    const int rc = codec_->load_unit(stored(io), last, old_len, s->unit, why);
    if (rc < 0) {
        return rc;
    }
    const std::size_t grown = unit_length(last, new_size);
    std::memset(s->unit + old_len, 0, grown - old_len);
    return store_unit(io, last, s->unit, grown, why);
}

int EncryptedFile::note_new_units(std::uint64_t new_size) noexcept {
    if (!codec_ || new_size <= size_) {
        return 0;
    }
    return codec_->note_holes(units_in(size_), units_in(new_size));
}

int EncryptedFile::prepare_growth(PositionalIo& io, std::uint64_t new_size,
                                  UnitFailure* why) noexcept {
    if (!encrypted() || new_size <= size_) {
        return 0;
    }
    Scratch* s = scratch();
    if (s == nullptr) {
        return -ENOMEM;
    }
    int rc = grow_last_unit(io, new_size, why);
    if (rc == 0) {
        rc = note_new_units(new_size);
    }
    if (rc < 0) {
        return rc;
    }
    const std::uint64_t new_last = (new_size - 1) / kUnit;
    const std::size_t new_last_len = unit_length(new_last, new_size);
    if (new_last * kUnit >= size_ && new_last_len < codec_->shortest_hole()) {
        std::memset(s->unit, 0, new_last_len);
        return store_unit(io, new_last, s->unit, new_last_len, why);
    }
    return 0;
}

std::int64_t EncryptedFile::pwrite(PositionalIo& io, const void* buf, std::size_t len,
                                   std::uint64_t offset, UnitFailure* why) noexcept {
    if (len == 0) {
        return 0;
    }
    const auto* in = static_cast<const std::uint8_t*>(buf);
    const std::uint64_t end = offset + len;
    if (!encrypted()) {
        const std::int64_t put =
            io.write_at(in, len, layout_.physical_position(static_cast<std::int64_t>(offset)));
        if (put > 0) {
            size_ = std::max<std::uint64_t>(size_, offset + static_cast<std::uint64_t>(put));
        }
        return put;
    }
    Scratch* s = scratch();
    if (s == nullptr) {
        return -ENOMEM;
    }
    const std::uint64_t old_size = size_;
    const std::uint64_t new_size = std::max(old_size, end);
    // PostgreSQL writes whole buffers of zeros when md.c extends a relation
    // and when a WAL segment is pre-filled. Units such a write covers are
    // stored as zeros (docs/formats.md, "Data"), at no cipher cost; in format
    // v2 their entries still authenticate them. Only a write that is zero
    // throughout qualifies, so where zero runs lie inside real data is not
    // revealed; what is revealed is that PostgreSQL zero-filled those units,
    // which its I/O pattern shows.
    const bool zero_write = all_zero(in, len);

    // The old last unit grows when the file does; if this write does not
    // touch it, it must be re-encrypted at its new length on its own.
    if (new_size > old_size && old_size / kUnit < offset / kUnit) {
        const int rc = grow_last_unit(io, new_size, why);
        if (rc < 0) {
            return rc;
        }
    }
    // Units beyond the old end that this write skips are holes.
    if (const int rc = note_new_units(new_size); rc < 0) {
        return rc;
    }

    if (zero_write && stores_zeros_as_they_are(offset, end, new_size)) {
        // Every unit this write covers is stored as zeros, which the
        // caller's buffer already holds: it goes to the file without a copy
        // into the bounce buffer.
        const int rc = store_run(io, offset, in, len, nullptr);
        if (rc < 0) {
            return rc;
        }
        size_ = new_size;
        written_size_ = new_size;
        return static_cast<std::int64_t>(len);
    }

    std::uint64_t chunk_start = (offset / kUnit) * kUnit;
    std::size_t chunk_len = 0;
    std::size_t chunk_units = 0;
    for (std::uint64_t unit = offset / kUnit; unit * kUnit < end; ++unit) {
        const std::uint64_t unit_start = unit * kUnit;
        const std::size_t new_len = unit_length(unit, new_size);
        const std::uint64_t cover_start = std::max(offset, unit_start);
        const std::uint64_t cover_end = std::min<std::uint64_t>(end, unit_start + new_len);
        std::uint8_t* cipher_out = s->chunk + chunk_len;
        std::uint8_t* entry = s->chunk_entries + chunk_units * kEntryBytes;
        int rc;
        if (cover_start == unit_start && cover_end == unit_start + new_len) {
            rc = codec_->seal(unit, in + (unit_start - offset), cipher_out, new_len, zero_write,
                              entry, why);
        } else {
            const std::size_t old_len = unit_length(unit, old_size);
            rc = old_len > 0 ? codec_->load_unit(stored(io), unit, old_len, s->unit, why) : 0;
            if (rc == 0) {
                std::memset(s->unit + old_len, 0, new_len - old_len);
                std::memcpy(s->unit + (cover_start - unit_start), in + (cover_start - offset),
                            cover_end - cover_start);
                rc = codec_->seal(unit, s->unit, cipher_out, new_len, false, entry, why);
            }
        }
        if (rc < 0) {
            return rc;
        }
        chunk_len += new_len;
        ++chunk_units;
        const bool last = unit_start + kUnit >= end;
        const bool group_ends =
            layout_.is_grouped() && DataLayout::next_group_start(unit) == unit + 1;
        if (chunk_units == kWriteChunkUnits || last || group_ends) {
            rc = store_run(io, chunk_start, s->chunk, chunk_len, s->chunk_entries);
            if (rc < 0) {
                return rc;
            }
            // Track growth as it lands so a failure later in a long write
            // leaves the cached size matching the disk.
            size_ = std::max(size_, chunk_start + chunk_len);
            chunk_start += chunk_len;
            chunk_len = 0;
            chunk_units = 0;
        }
    }
    size_ = new_size;
    written_size_ = new_size;
    return static_cast<std::int64_t>(len);
}

int EncryptedFile::truncate(PositionalIo& io, std::uint64_t length, UnitFailure* why) noexcept {
    // Growing re-encrypts the old last unit at its new length first.
    // Shrinking into the middle of a unit keeps that unit's first bytes: they
    // are read before the cut and stored again, at the shorter length, after.
    const std::uint64_t new_last = length / kUnit;
    const std::size_t kept = unit_length(new_last, length);
    const bool reencrypt =
        length < size_ && encrypted() && kept > 0 && kept < unit_length(new_last, size_);
    Scratch* s = reencrypt ? scratch() : nullptr;
    if (reencrypt && s == nullptr) {
        return -ENOMEM;
    }
    int rc = length >= size_ ? prepare_growth(io, length, why) : 0;
    if (rc == 0 && reencrypt) {
        rc = codec_->load_unit(stored(io), new_last, unit_length(new_last, size_), s->unit, why);
    }
    if (rc == 0) {
        rc = io.truncate(
            static_cast<std::uint64_t>(layout_.physical_size(static_cast<std::int64_t>(length))));
    }
    if (rc == 0 && length < size_) {
        rc = clear_entries(io, units_in(length), units_in(size_));
    }
    if (rc < 0) {
        return rc;
    }
    size_ = length;
    written_size_ = length;
    if (codec_) {
        codec_->forget_from(units_in(length));
    }
    return reencrypt ? store_unit(io, new_last, s->unit, kept, why) : 0;
}

int EncryptedFile::clear_entries(PositionalIo& io, std::uint64_t first,
                                 std::uint64_t end) noexcept {
    // The extent the cut falls inside keeps its metadata blocks; the entries
    // of the units cut off there must go too, or a later growth would find
    // them describing data that is no longer there. Later extents' metadata
    // went with the truncate.
    if (!codec_ || !codec_->has_entries() || first % kUnitsPerExtent == 0 || first >= end) {
        return 0;
    }
    static const std::uint8_t kZeros[kHeaderBytes] = {};
    const std::uint64_t stop = std::min(end, DataLayout::next_extent_start(first));
    // A group at a time: each is one metadata block, and the thread's cached
    // block must follow.
    for (std::uint64_t unit = first; unit < stop;) {
        const std::uint64_t group_stop = std::min(stop, DataLayout::next_group_start(unit));
        const std::size_t len = static_cast<std::size_t>(group_stop - unit) * kEntryBytes;
        const std::int64_t put = io.write_at(kZeros, len, layout_.entry_offset(unit));
        if (put < 0) {
            return static_cast<int>(put);
        }
        if (static_cast<std::size_t>(put) != len) {
            return -EIO;
        }
        note_entries(unit, kZeros, len);
        unit = group_stop;
    }
    return 0;
}

int EncryptedFile::allocate(PositionalIo& io, std::uint64_t offset, std::uint64_t len,
                            UnitFailure* why) noexcept {
    const std::uint64_t end = offset + len;
    if (end > size_) {
        const int rc = prepare_growth(io, end, why);
        if (rc < 0) {
            return rc;
        }
    }
    const auto first =
        static_cast<std::uint64_t>(layout_.physical_position(static_cast<std::int64_t>(offset)));
    const auto last =
        static_cast<std::uint64_t>(layout_.physical_size(static_cast<std::int64_t>(end)));
    const int rc = io.allocate(first, last - first);
    if (rc < 0) {
        return rc;
    }
    size_ = std::max(size_, end);
    written_size_ = size_;
    return 0;
}

}  // namespace ephemeral_crypt
