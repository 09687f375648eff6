// EncryptedFile, a file's cipher: logical reads, writes, truncates and allocations
// of any offset and length over a PositionalIo whose first 4096 bytes hold
// the file header. Where each logical byte lives is the file's DataLayout
// (core/data_layout.hpp): linear after the header in format v1, behind a
// metadata block per group of units in format v2.
//
// Data is in 4096-byte units. A unit's length is min(4096, size - start), so
// the last unit may be short; growing or shrinking a file re-encrypts that
// unit at its new length. What a unit becomes on disk is its cipher's
// UnitCodec (core/unit_codec.hpp): format v1 is AES-256-XTS, format v2
// AES-256-GCM with a metadata entry per unit, through which a unit reaches
// the caller only if it authenticates and the file may not be found
// shorter than this process left it. The engine itself is the same for
// both: it splits calls into units, reads and writes runs of them, and keeps
// the size.
//
// One EncryptedFile is shared by every descriptor a process has on the same
// file, so the cached logical size stays coherent between them. Its key is
// derived into locked memory and its cipher state lives there
// (core/secure_memory.hpp); destroying it wipes both. Methods are noexcept
// and return bytes or -errno; a cryptographic failure is -EIO, data that
// fails authentication kIntegrityFailure. A call given `why` fills it in as
// it fails for a reason the errno does not tell: the unit that failed
// authentication and why, or a write refused at the file key's nonce limit.
// The reason comes back with the call that failed, never from state a later
// call must fetch: the file is shared by every descriptor on it.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/category.hpp"
#include "core/data_layout.hpp"
#include "core/file_cipher.hpp"
#include "core/file_header.hpp"
#include "core/instance_key.hpp"
#include "core/positional_io.hpp"
#include "core/unit_codec.hpp"

namespace ephemeral_crypt {

class EncryptedFile {
  public:
    struct OpenOutcome {
        std::unique_ptr<EncryptedFile> file;  // null unless status is Ok
        // What the header said (open), or Ok once a fresh one is written (create).
        HeaderStatus status = HeaderStatus::NotOurs;
        int error = 0;  // errno when I/O or set-up failed
        // No locked memory was left for the file's key and cipher state
        // (error is then ENOMEM): the file is refused.
        bool locked_memory_exhausted = false;
    };

    // Writes a fresh header (random nonce) to an empty file, in the format
    // of `cipher`. With `plaintext_audit` the file is marked as holding
    // plaintext and its data is stored unencrypted (fail_open_audit, format
    // v1 whatever the cipher). On failure `file` is null, `status` is not Ok
    // and `error` says why.
    static OpenOutcome create(PositionalIo& io, const InstanceKey& key, Category category,
                              FileCipher cipher, bool plaintext_audit) noexcept;

    // Reads and checks the header of an existing file.
    static OpenOutcome open(PositionalIo& io, const InstanceKey& key) noexcept;

    std::int64_t pread(PositionalIo& io, void* buf, std::size_t len, std::uint64_t offset,
                       UnitFailure* why = nullptr) noexcept;
    std::int64_t pwrite(PositionalIo& io, const void* buf, std::size_t len, std::uint64_t offset,
                        UnitFailure* why = nullptr) noexcept;
    int truncate(PositionalIo& io, std::uint64_t length, UnitFailure* why = nullptr) noexcept;
    int allocate(PositionalIo& io, std::uint64_t offset, std::uint64_t len,
                 UnitFailure* why = nullptr) noexcept;

    // Logical size as last seen by this process.
    std::uint64_t size() const noexcept { return size_; }
    // Re-reads the physical size (another process may have written). For a
    // format v2 file, a size smaller than this process left is an integrity
    // failure.
    int refresh_size(PositionalIo& io, UnitFailure* why = nullptr) noexcept;

    const FileHeader& header() const noexcept { return header_; }
    Category category() const noexcept { return header_.category; }
    bool plaintext_audit() const noexcept { return header_.plaintext_audit(); }
    bool authenticated() const noexcept { return codec_ != nullptr && codec_->has_entries(); }
    DataLayout layout() const noexcept { return layout_; }

  private:
    EncryptedFile(const FileHeader& header, std::unique_ptr<UnitCodec> codec,
                  std::uint64_t size) noexcept;
    bool encrypted() const noexcept { return codec_ != nullptr; }
    StoredFile stored(PositionalIo& io) const noexcept { return {io, layout_, id_}; }

    std::size_t unit_length(std::uint64_t unit, std::uint64_t file_size) const noexcept;
    // The end of the run of whole units that starts at `start` (a unit
    // boundary) and stays inside [start, end): where one read can fetch it,
    // which for a format with entries means within one group.
    std::uint64_t whole_run_end(std::uint64_t start, std::uint64_t end) const noexcept;
    // Reads the whole units [start, start + len) into `target` and leaves
    // their plaintext there.
    int load_run(PositionalIo& io, std::uint64_t start, std::size_t len, std::uint8_t* target,
                 UnitFailure* why) noexcept;
    // Keeps the thread's cached metadata block in step with entries this
    // file just wrote.
    void note_entries(std::uint64_t first, const std::uint8_t* entries, std::size_t len) noexcept;
    // Whether a write of zeros over [offset, end), the file then `new_size`
    // long, stores exactly the caller's bytes (format v1's zero units).
    bool stores_zeros_as_they_are(std::uint64_t offset, std::uint64_t end,
                                  std::uint64_t new_size) const noexcept;
    // Writes `len` bytes of sealed whole units starting at unit boundary
    // `start`, and their entries when the codec has them.
    int store_run(PositionalIo& io, std::uint64_t start, const std::uint8_t* data, std::size_t len,
                  const std::uint8_t* entries) noexcept;
    int store_unit(PositionalIo& io, std::uint64_t unit, const std::uint8_t* plain, std::size_t len,
                   UnitFailure* why) noexcept;
    // After a cut: zeroes the entries of units [first, end) that are still
    // on disk.
    int clear_entries(PositionalIo& io, std::uint64_t first, std::uint64_t end) noexcept;
    // Re-encrypts a partial last unit at the length it has in a file of
    // `new_size` bytes (its ciphertext depends on its length).
    int grow_last_unit(PositionalIo& io, std::uint64_t new_size, UnitFailure* why) noexcept;
    // The units a growth to `new_size` adds are holes until written, as
    // this process knows.
    int note_new_units(std::uint64_t new_size) noexcept;
    // Re-encrypts the current last unit (and writes a new short last unit
    // the codec cannot leave as a hole) so the file can grow to `new_size`
    // without changing physical bytes outside those units.
    int prepare_growth(PositionalIo& io, std::uint64_t new_size, UnitFailure* why) noexcept;

    FileHeader header_;
    DataLayout layout_;
    std::unique_ptr<UnitCodec> codec_;  // null for a plaintext-audit file
    std::uint64_t size_;
    // The size this process's own calls left the file at (0 until it
    // changes it); a codec that authenticates the size refuses less.
    std::uint64_t written_size_ = 0;
    std::uint64_t id_;  // unique in the process: names the file in the thread's metadata cache
};

}  // namespace ephemeral_crypt
