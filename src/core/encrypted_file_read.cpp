// EncryptedFile's reads (see encrypted_file.hpp): runs of whole units straight
// into the caller's buffer and opened there by the file's codec, partial
// units through scratch, and the size checks made before a read returns.
#include "core/encrypted_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/encrypted_file_internal.hpp"

namespace ephemeral_crypt {

using namespace encrypted_file_internal;

int EncryptedFile::refresh_size(PositionalIo& io, UnitFailure* why) noexcept {
    const std::int64_t physical = io.size();
    if (physical < 0) {
        return static_cast<int>(physical);
    }
    const auto logical = static_cast<std::uint64_t>(layout_.logical_size(physical));
    if (codec_ && codec_->authenticates_size() && logical < written_size_) {
        return codec_->truncated_at(logical / kUnit, why);
    }
    size_ = logical;
    return 0;
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
                            std::uint8_t* target, UnitFailure* why) noexcept {
    const std::int64_t got = io.read_at(target, len, layout_.physical_position(start));
    if (got < 0) {
        return static_cast<int>(got);
    }
    if (static_cast<std::size_t>(got) != len) {
        return codec_->truncated_at((start + static_cast<std::uint64_t>(got)) / kUnit, why);
    }
    const std::uint64_t first = start / kUnit;
    const std::size_t count = static_cast<std::size_t>(units_in(len));
    return codec_->open_run(stored(io), first, count, unit_length(first + count - 1, size_), target,
                            why);
}

std::int64_t EncryptedFile::pread(PositionalIo& io, void* buf, std::size_t len,
                                  std::uint64_t offset, UnitFailure* why) noexcept {
    if (len == 0) {
        return 0;
    }
    if (offset + len > size_) {
        // Another process may have grown the file since we last looked.
        const int rc = refresh_size(io, why);
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
            const int rc = load_run(io, pos, static_cast<std::size_t>(run_end - pos),
                                    out + (pos - offset), why);
            if (rc < 0) {
                return rc;
            }
            pos = run_end;
            continue;
        }
        const int rc = codec_->load_unit(stored(io), unit, ulen, s->unit, why);
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
