// EncryptedFile's reads (see encrypted_file.hpp): whole units straight into
// the caller's buffer and decrypted there, partial units through scratch,
// and the checks format v2 makes before a read returns.
//
// Format v2 reads keep the last metadata block they read in the thread's
// scratch, so reads that move through a group cost one system call each,
// as in format v1. The block is only a hint: this process's own writes keep
// it current, and an entry from it that fails is read again from disk
// before the unit is refused, so another process's writes never make a good
// unit fail.
#include "core/encrypted_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/cipher_timing.hpp"
#include "core/encrypted_file_internal.hpp"

namespace ephemeral_crypt {

using namespace encrypted_file_internal;

namespace {

constexpr char kTruncated[] =
    "The file is shorter than this process wrote it: units were cut off (truncated).";

}  // namespace

int EncryptedFile::refresh_size(PositionalIo& io) noexcept {
    const std::int64_t physical = io.size();
    if (physical < 0) {
        return static_cast<int>(physical);
    }
    const auto logical = static_cast<std::uint64_t>(layout_.logical_size(physical));
    if (units_ && logical < written_size_) {
        return short_file(logical / kUnit);
    }
    size_ = logical;
    return 0;
}

int EncryptedFile::short_file(std::uint64_t unit) noexcept {
    return units_ ? units_->fail(unit, kTruncated) : -EIO;
}

bool EncryptedFile::decrypt_in_place(std::uint64_t unit, std::uint8_t* data,
                                     std::size_t len) noexcept {
    // Holes and fallocated ranges are zero on disk and mean zero. Short
    // units are always written, so they are never taken for holes.
    if (len >= kXtsMinimumBytes && all_zero(data, len)) {
        return true;
    }
    const CipherTimer timer(header_.category, CipherDirection::Decrypt, len);
    return xts_->decrypt_unit(unit, data, data, len);
}

std::uint64_t EncryptedFile::whole_run_end(std::uint64_t start, std::uint64_t end) const noexcept {
    const std::uint64_t limit =
        layout_.is_grouped() ? DataLayout::next_group_start(start / kUnit) * kUnit : end;
    std::uint64_t run_end = start;
    while (run_end < std::min(end, limit)) {
        const std::uint64_t next = run_end / kUnit;
        const std::uint64_t next_end = next * kUnit + unit_length(next, size_);
        if (next_end > end) {
            break;
        }
        run_end = next_end;
    }
    return run_end;
}

int EncryptedFile::load_run(PositionalIo& io, std::uint64_t start, std::size_t len,
                            std::uint8_t* target) noexcept {
    const std::int64_t got = io.read_at(target, len, layout_.physical_position(start));
    if (got < 0) {
        return static_cast<int>(got);
    }
    if (static_cast<std::size_t>(got) != len) {
        return short_file((start + static_cast<std::uint64_t>(got)) / kUnit);
    }
    const std::uint64_t first = start / kUnit;
    if (xts_) {
        for (std::uint64_t at = start; at < start + len; at += kUnit) {
            const std::uint64_t u = at / kUnit;
            if (!decrypt_in_place(u, target + (at - start), unit_length(u, size_))) {
                return -EIO;
            }
        }
        return 0;
    }
    const std::size_t count = static_cast<std::size_t>(units_in(len));
    bool fresh = false;
    const std::uint8_t* entries = nullptr;
    int rc = metadata_of(io, first, false, &entries, &fresh);
    if (rc < 0) {
        return rc;
    }
    // Each unit is opened in place, as XTS decrypts in place. A unit that
    // fails is wiped before the error returns, so the caller is never handed
    // unauthenticated plaintext. Opening into scratch and copying what
    // authenticates cost a temporary table's scan a tenth of its CPU time
    // (docs/formats.md, "Reading").
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint64_t u = first + i;
        const std::size_t ulen = unit_length(u, size_);
        std::uint8_t* data = target + i * kUnit;
        rc = open_unit(io, u, data, data, ulen, &entries, &fresh, first);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

int EncryptedFile::metadata_of(PositionalIo& io, std::uint64_t unit, bool reread,
                               const std::uint8_t** entries, bool* fresh) noexcept {
    Scratch* s = scratch();
    if (s == nullptr) {
        return -ENOMEM;
    }
    const std::uint64_t group = unit / kUnitsPerGroup;
    const std::uint64_t first = group * kUnitsPerGroup;
    if (reread || s->metadata_file != id_ || s->metadata_group != group) {
        s->metadata_file = 0;
        const std::int64_t got =
            io.read_at(s->metadata, sizeof(s->metadata), layout_.entry_offset(first));
        if (got < 0) {
            return static_cast<int>(got);
        }
        // The block precedes its group's data, so a unit that is on disk
        // has its whole block there (a hole reads as zeros).
        if (static_cast<std::size_t>(got) != sizeof(s->metadata)) {
            return short_file(unit);
        }
        s->metadata_file = id_;
        s->metadata_group = group;
        *fresh = true;
    }
    *entries = s->metadata + (unit - first) * kEntryBytes;
    return 0;
}

int EncryptedFile::open_unit(PositionalIo& io, std::uint64_t unit, std::uint8_t* stored,
                             std::uint8_t* plain, std::size_t len, const std::uint8_t** entries,
                             bool* fresh, std::uint64_t first) noexcept {
    const std::uint8_t* entry = *entries + (unit - first) * kEntryBytes;
    int rc;
    {
        const CipherTimer timer(header_.category, CipherDirection::Decrypt, len);
        rc = units_->open(unit, stored, plain, len, entry);
    }
    if (rc != kIntegrityFailure || *fresh) {
        return rc;
    }
    // The entry came from the thread's cached block, which another process
    // may have made stale: only the disk's entry can refuse the unit.
    units_->take_failure();
    if (stored == plain) {
        rc = read_stored(io, unit, len, stored);
        if (rc < 0) {
            return rc;
        }
    }
    const std::uint8_t* reread = nullptr;
    rc = metadata_of(io, unit, true, &reread, fresh);
    if (rc < 0) {
        return rc;
    }
    *entries = reread - (unit - first) * kEntryBytes;
    const CipherTimer timer(header_.category, CipherDirection::Decrypt, len);
    return units_->open(unit, stored, plain, len, reread);
}

int EncryptedFile::read_stored(PositionalIo& io, std::uint64_t unit, std::size_t len,
                               std::uint8_t* out) noexcept {
    const std::int64_t got = io.read_at(out, len, layout_.physical_position(unit * kUnit));
    if (got < 0) {
        return static_cast<int>(got);
    }
    if (static_cast<std::size_t>(got) != len) {
        return short_file(unit);  // the file is shorter than its cached size says
    }
    return 0;
}

int EncryptedFile::load_unit(PositionalIo& io, std::uint64_t unit, std::size_t len,
                             std::uint8_t* out) noexcept {
    if (!units_) {
        const int rc = read_stored(io, unit, len, out);
        if (rc < 0) {
            return rc;
        }
        return decrypt_in_place(unit, out, len) ? 0 : -EIO;
    }
    Scratch* s = scratch();
    if (s == nullptr) {
        return -ENOMEM;
    }
    int rc = read_stored(io, unit, len, s->stored);
    if (rc < 0) {
        return rc;
    }
    bool fresh = false;
    const std::uint8_t* entries = nullptr;
    rc = metadata_of(io, unit, false, &entries, &fresh);
    if (rc < 0) {
        return rc;
    }
    return open_unit(io, unit, s->stored, out, len, &entries, &fresh, unit);
}

std::int64_t EncryptedFile::pread(PositionalIo& io, void* buf, std::size_t len,
                                  std::uint64_t offset) noexcept {
    if (len == 0) {
        return 0;
    }
    if (offset + len > size_) {
        // Another process may have grown the file since we last looked.
        const int rc = refresh_size(io);
        if (rc < 0) {
            return rc;
        }
    }
    if (offset >= size_) {
        return 0;
    }
    len = static_cast<std::size_t>(std::min<std::uint64_t>(len, size_ - offset));
    auto* out = static_cast<std::uint8_t*>(buf);
    if (!encrypted()) {
        return io.read_at(out, len, layout_.physical_position(static_cast<std::int64_t>(offset)));
    }
    Scratch* s = scratch();
    if (s == nullptr) {
        return -ENOMEM;
    }

    const std::uint64_t end = offset + len;
    std::uint64_t pos = offset;
    while (pos < end) {
        const std::uint64_t unit = pos / kUnit;
        const std::uint64_t unit_start = unit * kUnit;
        const std::size_t ulen = unit_length(unit, size_);
        const std::uint64_t unit_end = unit_start + ulen;
        if (pos == unit_start && unit_end <= end) {
            // A run of whole units goes straight into the caller's buffer and
            // is decrypted there: one read (two with metadata), no copy.
            const std::uint64_t run_end = whole_run_end(pos, end);
            const int rc =
                load_run(io, pos, static_cast<std::size_t>(run_end - pos), out + (pos - offset));
            if (rc < 0) {
                return rc;
            }
            pos = run_end;
            continue;
        }
        const int rc = load_unit(io, unit, ulen, s->unit);
        if (rc < 0) {
            return rc;
        }
        const std::uint64_t copy_end = std::min(unit_end, end);
        std::memcpy(out + (pos - offset), s->unit + (pos - unit_start), copy_end - pos);
        pos = copy_end;
    }
    return static_cast<std::int64_t>(len);
}

}  // namespace ephemeral_crypt
