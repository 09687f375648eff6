// Engine implementation. Scratch space for read-modify-write and for the
// ciphertext of a write lives in per-thread buffers allocated on first use,
// so no call allocates and files cost nothing while idle (a backend may hold
// a thousand of them open).
#include "core/encrypted_file.hpp"

#include <sodium.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "core/secure_memory.hpp"

namespace ephemeral_crypt {

namespace {

constexpr std::uint64_t kUnit = kDataUnitBytes;
constexpr std::size_t kWriteChunkBytes = 32 * kDataUnitBytes;

struct Scratch {
    alignas(64) std::uint8_t unit[kDataUnitBytes];
    alignas(64) std::uint8_t chunk[kWriteChunkBytes];
};

Scratch* scratch() noexcept {
    thread_local std::unique_ptr<Scratch> buffers;
    if (!buffers) {
        buffers.reset(new (std::nothrow) Scratch);
    }
    return buffers.get();
}

bool all_zero(const std::uint8_t* data, std::size_t len) noexcept {
    // A buffer is all zeros when its first byte is zero and it equals itself
    // shifted by one byte. libc's vectorised memcmp does the scan and stops at
    // the first non-zero byte, which in ciphertext or a page header comes within
    // a few bytes; only zero pages are scanned whole, at memcmp's speed.
    return len == 0 || (data[0] == 0 && std::memcmp(data, data + 1, len - 1) == 0);
}

}  // namespace

EncryptedFile::EncryptedFile(const FileHeader& header, std::unique_ptr<XtsCipher> cipher,
                             std::uint64_t size) noexcept
    : header_(header), cipher_(std::move(cipher)), size_(size) {}

// The file's key is derived straight into a block of locked memory, read
// from there by the cipher set-up into the handle (locked memory too), and
// wiped as the block goes back.
static std::unique_ptr<XtsCipher> make_cipher(const InstanceKey& key, const FileHeader& header,
                                              EncryptedFile::OpenOutcome* outcome) noexcept {
    SecureBytes file_key(kFileKeyBytes);
    if (!file_key) {
        outcome->error = ENOMEM;
        outcome->locked_memory_exhausted = true;
        return nullptr;
    }
    if (!key.derive_file_key(header.nonce.data(), header.nonce.size(), header.category,
                             file_key.data())) {
        outcome->error = EIO;
        return nullptr;
    }
    std::unique_ptr<XtsCipher> cipher;
    try {
        cipher = std::make_unique<XtsCipher>(file_key.data());
    } catch (const LockedMemoryExhausted&) {
        outcome->error = ENOMEM;
        outcome->locked_memory_exhausted = true;
    } catch (...) {
        outcome->error = EIO;
    }
    return cipher;
}

EncryptedFile::OpenOutcome EncryptedFile::create(PositionalIo& io, const InstanceKey& key,
                                                 Category category, bool plaintext_audit) noexcept {
    OpenOutcome outcome;
    FileHeader header;
    header.category = category;
    header.cipher = plaintext_audit ? kCipherNone : kCipherAes256Xts;
    header.flags = plaintext_audit ? kFlagPlaintextAudit : 0;
    header.key_id = key.id();
    randombytes_buf(header.nonce.data(), header.nonce.size());

    std::unique_ptr<XtsCipher> cipher;
    if (!plaintext_audit) {
        cipher = make_cipher(key, header, &outcome);
        if (!cipher) {
            return outcome;
        }
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
    outcome.file.reset(new (std::nothrow) EncryptedFile(header, std::move(cipher), 0));
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
    std::unique_ptr<XtsCipher> cipher;
    if (!decoded.header.plaintext_audit()) {
        cipher = make_cipher(key, decoded.header, &outcome);
        if (!cipher) {
            return outcome;
        }
    }
    const auto logical = static_cast<std::uint64_t>(logical_from_physical(physical));
    outcome.file.reset(new (std::nothrow)
                           EncryptedFile(decoded.header, std::move(cipher), logical));
    if (!outcome.file) {
        outcome.error = ENOMEM;
    }
    return outcome;
}

int EncryptedFile::refresh_size(PositionalIo& io) noexcept {
    const std::int64_t physical = io.size();
    if (physical < 0) {
        return static_cast<int>(physical);
    }
    size_ = static_cast<std::uint64_t>(logical_from_physical(physical));
    return 0;
}

std::size_t EncryptedFile::unit_length(std::uint64_t unit, std::uint64_t file_size) const noexcept {
    const std::uint64_t start = unit * kUnit;
    if (file_size <= start) {
        return 0;
    }
    return static_cast<std::size_t>(std::min<std::uint64_t>(kUnit, file_size - start));
}

bool EncryptedFile::decrypt_in_place(std::uint64_t unit, std::uint8_t* data,
                                     std::size_t len) noexcept {
    if (!cipher_) {
        return true;
    }
    // Holes and fallocated ranges are zero on disk and mean zero. Short
    // units are always written, so they are never taken for holes.
    if (len >= kXtsMinimumBytes && all_zero(data, len)) {
        return true;
    }
    return cipher_->decrypt_unit(unit, data, data, len);
}

int EncryptedFile::load_unit(PositionalIo& io, std::uint64_t unit, std::size_t len,
                             std::uint8_t* out) noexcept {
    const std::int64_t got = io.read_at(out, len, kHeaderBytes + unit * kUnit);
    if (got < 0) {
        return static_cast<int>(got);
    }
    if (static_cast<std::size_t>(got) != len) {
        return -EIO;  // the file is shorter than its cached size says
    }
    return decrypt_in_place(unit, out, len) ? 0 : -EIO;
}

int EncryptedFile::store_unit(PositionalIo& io, std::uint64_t unit, const std::uint8_t* plain,
                              std::size_t len) noexcept {
    Scratch* s = scratch();
    if (s == nullptr) {
        return -ENOMEM;
    }
    const std::uint8_t* out = plain;
    if (cipher_) {
        if (!cipher_->encrypt_unit(unit, plain, s->chunk, len)) {
            return -EIO;
        }
        out = s->chunk;
    }
    const std::int64_t put = io.write_at(out, len, kHeaderBytes + unit * kUnit);
    if (put < 0) {
        return static_cast<int>(put);
    }
    return static_cast<std::size_t>(put) == len ? 0 : -EIO;
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
    if (!cipher_) {
        return io.read_at(out, len, kHeaderBytes + offset);
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
            // is decrypted there: one read, no copy.
            std::uint64_t run_end = unit_end;
            while (run_end < end) {
                const std::uint64_t next = run_end / kUnit;
                const std::uint64_t next_end = next * kUnit + unit_length(next, size_);
                if (next_end > end) {
                    break;
                }
                run_end = next_end;
            }
            const std::size_t run_len = static_cast<std::size_t>(run_end - pos);
            std::uint8_t* target = out + (pos - offset);
            const std::int64_t got = io.read_at(target, run_len, kHeaderBytes + pos);
            if (got < 0) {
                return got;
            }
            if (static_cast<std::size_t>(got) != run_len) {
                return -EIO;
            }
            for (std::uint64_t at = pos; at < run_end; at += kUnit) {
                const std::uint64_t u = at / kUnit;
                if (!decrypt_in_place(u, target + (at - pos), unit_length(u, size_))) {
                    return -EIO;
                }
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

int EncryptedFile::grow_last_unit(PositionalIo& io, std::uint64_t new_size) noexcept {
    const std::uint64_t last = size_ / kUnit;
    const std::size_t old_len = unit_length(last, size_);
    if (old_len == 0 || old_len == kUnit) {
        return 0;  // no partial last unit: nothing was encrypted at a shorter length
    }
    Scratch* s = scratch();
    if (s == nullptr) {
        return -ENOMEM;
    }
    const int rc = load_unit(io, last, old_len, s->unit);
    if (rc < 0) {
        return rc;
    }
    const std::size_t grown = unit_length(last, new_size);
    std::memset(s->unit + old_len, 0, grown - old_len);
    return store_unit(io, last, s->unit, grown);
}

int EncryptedFile::prepare_growth(PositionalIo& io, std::uint64_t new_size) noexcept {
    if (!cipher_ || new_size <= size_) {
        return 0;
    }
    Scratch* s = scratch();
    if (s == nullptr) {
        return -ENOMEM;
    }
    const int rc = grow_last_unit(io, new_size);
    if (rc < 0) {
        return rc;
    }
    const std::uint64_t new_last = (new_size - 1) / kUnit;
    const std::size_t new_last_len = unit_length(new_last, new_size);
    if (new_last * kUnit >= size_ && new_last_len < kXtsMinimumBytes) {
        std::memset(s->unit, 0, new_last_len);
        return store_unit(io, new_last, s->unit, new_last_len);
    }
    return 0;
}

std::int64_t EncryptedFile::pwrite(PositionalIo& io, const void* buf, std::size_t len,
                                   std::uint64_t offset) noexcept {
    if (len == 0) {
        return 0;
    }
    const auto* in = static_cast<const std::uint8_t*>(buf);
    const std::uint64_t end = offset + len;
    if (!cipher_) {
        const std::int64_t put = io.write_at(in, len, kHeaderBytes + offset);
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
    // stored as zeros, which read back as zeros (docs/formats.md, "Data"), at no
    // cipher cost. Only a write that is zero throughout qualifies, so where
    // zero runs lie inside real data is not revealed; what is revealed is
    // that PostgreSQL zero-filled those units, which its I/O pattern shows.
    // Units under one AES block keep their keystream, as reads expect.
    const bool zero_write = all_zero(in, len);

    // The old last unit grows when the file does; if this write does not
    // touch it, it must be re-encrypted at its new length on its own.
    if (new_size > old_size && old_size / kUnit < offset / kUnit) {
        const int rc = grow_last_unit(io, new_size);
        if (rc < 0) {
            return rc;
        }
    }

    std::uint64_t chunk_start = (offset / kUnit) * kUnit;
    std::size_t chunk_len = 0;
    for (std::uint64_t unit = offset / kUnit; unit * kUnit < end; ++unit) {
        const std::uint64_t unit_start = unit * kUnit;
        const std::size_t new_len = unit_length(unit, new_size);
        const std::uint64_t cover_start = std::max(offset, unit_start);
        const std::uint64_t cover_end = std::min<std::uint64_t>(end, unit_start + new_len);
        std::uint8_t* cipher_out = s->chunk + chunk_len;
        if (cover_start == unit_start && cover_end == unit_start + new_len) {
            if (zero_write && new_len >= kXtsMinimumBytes) {
                std::memset(cipher_out, 0, new_len);
            } else if (!cipher_->encrypt_unit(unit, in + (unit_start - offset), cipher_out,
                                              new_len)) {
                return -EIO;
            }
        } else {
            const std::size_t old_len = unit_length(unit, old_size);
            if (old_len > 0) {
                const int rc = load_unit(io, unit, old_len, s->unit);
                if (rc < 0) {
                    return rc;
                }
            }
            std::memset(s->unit + old_len, 0, new_len - old_len);
            std::memcpy(s->unit + (cover_start - unit_start), in + (cover_start - offset),
                        cover_end - cover_start);
            if (!cipher_->encrypt_unit(unit, s->unit, cipher_out, new_len)) {
                return -EIO;
            }
        }
        chunk_len += new_len;
        const bool last = unit_start + kUnit >= end;
        if (chunk_len + kUnit > kWriteChunkBytes || last) {
            const std::int64_t put = io.write_at(s->chunk, chunk_len, kHeaderBytes + chunk_start);
            if (put < 0) {
                return put;
            }
            if (static_cast<std::size_t>(put) != chunk_len) {
                return -EIO;
            }
            // Track growth as it lands so a failure later in a long write
            // leaves the cached size matching the disk.
            size_ = std::max(size_, chunk_start + chunk_len);
            chunk_start += chunk_len;
            chunk_len = 0;
        }
    }
    size_ = new_size;
    return static_cast<std::int64_t>(len);
}

int EncryptedFile::truncate(PositionalIo& io, std::uint64_t length) noexcept {
    // Growing re-encrypts the old last unit at its new length first.
    // Shrinking into the middle of a unit keeps that unit's first bytes: they
    // are read before the cut and stored again, at the shorter length, after.
    const std::uint64_t new_last = length / kUnit;
    const std::size_t kept = unit_length(new_last, length);
    const bool reencrypt =
        length < size_ && cipher_ && kept > 0 && kept < unit_length(new_last, size_);
    Scratch* s = reencrypt ? scratch() : nullptr;
    if (reencrypt && s == nullptr) {
        return -ENOMEM;
    }
    int rc = length >= size_ ? prepare_growth(io, length) : 0;
    if (rc == 0 && reencrypt) {
        rc = load_unit(io, new_last, unit_length(new_last, size_), s->unit);
    }
    if (rc == 0) {
        rc = io.truncate(kHeaderBytes + length);
    }
    if (rc < 0) {
        return rc;
    }
    size_ = length;
    return reencrypt ? store_unit(io, new_last, s->unit, kept) : 0;
}

int EncryptedFile::allocate(PositionalIo& io, std::uint64_t offset, std::uint64_t len) noexcept {
    const std::uint64_t end = offset + len;
    if (end > size_) {
        const int rc = prepare_growth(io, end);
        if (rc < 0) {
            return rc;
        }
    }
    const int rc = io.allocate(kHeaderBytes + offset, len);
    if (rc < 0) {
        return rc;
    }
    size_ = std::max(size_, end);
    return 0;
}

}  // namespace ephemeral_crypt
