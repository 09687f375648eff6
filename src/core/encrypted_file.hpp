// EncryptedFile, a file's cipher: logical reads, writes, truncates and allocations
// of any offset and length over a PositionalIo whose first 4096 bytes hold
// the file header. Where each logical byte lives is the file's DataLayout
// (core/data_layout.hpp): linear after the header in format v1, behind a
// metadata block per group of units in format v2.
//
// Data is in 4096-byte units. A unit's length is min(4096, size - start), so
// the last unit may be short; growing or shrinking a file re-encrypts that
// unit at its new length. Format v1 is AES-256-XTS with the unit index as
// tweak: units whose ciphertext is all zeros read as zeros (holes,
// fallocate), and a last unit shorter than one AES block is never left as a
// hole. Format v2 is AES-256-GCM, every write of a unit sealed under a fresh
// nonce with its entry in the group's metadata block
// (core/authenticated_units.hpp): a unit reaches the caller only if it
// authenticates, and the file may not be found shorter than this process
// left it.
//
// One EncryptedFile is shared by every descriptor a process has on the same
// file, so the cached logical size stays coherent between them. Its key is
// derived into locked memory and its cipher state lives there
// (core/secure_memory.hpp); destroying it wipes both. Methods are noexcept
// and return bytes or -errno; a cryptographic failure is -EIO, data that
// fails authentication kIntegrityFailure (take_failure() says which unit and
// why).
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/authenticated_units.hpp"
#include "core/category.hpp"
#include "core/data_layout.hpp"
#include "core/file_cipher.hpp"
#include "core/file_header.hpp"
#include "core/instance_key.hpp"
#include "core/positional_io.hpp"
#include "core/xts_cipher.hpp"

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

    std::int64_t pread(PositionalIo& io, void* buf, std::size_t len, std::uint64_t offset) noexcept;
    std::int64_t pwrite(PositionalIo& io, const void* buf, std::size_t len,
                        std::uint64_t offset) noexcept;
    int truncate(PositionalIo& io, std::uint64_t length) noexcept;
    int allocate(PositionalIo& io, std::uint64_t offset, std::uint64_t len) noexcept;

    // Logical size as last seen by this process.
    std::uint64_t size() const noexcept { return size_; }
    // Re-reads the physical size (another process may have written). For a
    // format v2 file, a size smaller than this process left is an integrity
    // failure.
    int refresh_size(PositionalIo& io) noexcept;

    const FileHeader& header() const noexcept { return header_; }
    Category category() const noexcept { return header_.category; }
    bool plaintext_audit() const noexcept { return header_.plaintext_audit(); }
    bool authenticated() const noexcept { return units_ != nullptr; }
    DataLayout layout() const noexcept { return layout_; }

    // What made the last failing call fail, when the file knows more than
    // the errno: the unit that failed authentication and why, or a write
    // refused at the file key's nonce limit. Cleared as it is taken.
    UnitFailure take_failure() noexcept;

  private:
    EncryptedFile(const FileHeader& header, std::unique_ptr<XtsCipher> xts,
                  std::unique_ptr<AuthenticatedUnits> units, std::uint64_t size) noexcept;
    bool encrypted() const noexcept { return xts_ != nullptr || units_ != nullptr; }

    std::size_t unit_length(std::uint64_t unit, std::uint64_t file_size) const noexcept;
    // The end of the run of whole units that starts at `start` (a unit
    // boundary) and stays inside [start, end): where one read can fetch it,
    // which for format v2 means within one group.
    std::uint64_t whole_run_end(std::uint64_t start, std::uint64_t end) const noexcept;
    // Reads the whole units [start, start + len) into `target` and leaves
    // their plaintext there.
    int load_run(PositionalIo& io, std::uint64_t start, std::size_t len,
                 std::uint8_t* target) noexcept;
    // Reads the unit's first `len` bytes as stored into `out`: 0, the read's
    // error, or short_file's when fewer are there.
    int read_stored(PositionalIo& io, std::uint64_t unit, std::size_t len,
                    std::uint8_t* out) noexcept;
    // Reads and decrypts the unit's first `len` bytes into `out`.
    int load_unit(PositionalIo& io, std::uint64_t unit, std::size_t len,
                  std::uint8_t* out) noexcept;
    // Format v2: points `entries` at unit's entry in its group's metadata
    // block, from the thread's cached block unless `reread` or it holds
    // another block; `fresh` is set when it was read from disk.
    int metadata_of(PositionalIo& io, std::uint64_t unit, bool reread, const std::uint8_t** entries,
                    bool* fresh) noexcept;
    // Format v2: opens `unit` with its entry (`entries` points at unit
    // `first`'s), reading the entry again from disk before refusing a unit
    // whose cached entry fails (and the unit's data too when `stored` is
    // `plain`: the failed attempt wiped it).
    int open_unit(PositionalIo& io, std::uint64_t unit, std::uint8_t* stored, std::uint8_t* plain,
                  std::size_t len, const std::uint8_t** entries, bool* fresh,
                  std::uint64_t first) noexcept;
    // Format v2: keeps the thread's cached metadata block in step with
    // entries this file just wrote.
    void note_entries(std::uint64_t first, const std::uint8_t* entries, std::size_t len) noexcept;
    // Encrypts one unit from `plain` into `out`; `zeros` stores a unit that is
    // zero throughout as zeros. Format v2 also fills the unit's `entry`.
    int seal_unit(std::uint64_t unit, const std::uint8_t* plain, std::uint8_t* out, std::size_t len,
                  bool zeros, std::uint8_t* entry) noexcept;
    // Whether a write of zeros over [offset, end), the file then `new_size`
    // long, stores exactly the caller's bytes (format v1's zero units).
    bool stores_zeros_as_they_are(std::uint64_t offset, std::uint64_t end,
                                  std::uint64_t new_size) const noexcept;
    // Writes `len` bytes of sealed whole units starting at unit boundary
    // `start`, and for format v2 their entries.
    int store_run(PositionalIo& io, std::uint64_t start, const std::uint8_t* data, std::size_t len,
                  const std::uint8_t* entries) noexcept;
    int store_unit(PositionalIo& io, std::uint64_t unit, const std::uint8_t* plain,
                   std::size_t len) noexcept;
    // Format v2, after a cut: zeroes the entries of units [first, end) that
    // are still on disk.
    int clear_entries(PositionalIo& io, std::uint64_t first, std::uint64_t end) noexcept;
    // The disk holds less than this process's size says, at `unit`.
    int short_file(std::uint64_t unit) noexcept;
    // Re-encrypts a partial last unit at the length it has in a file of
    // `new_size` bytes (its ciphertext depends on its length).
    int grow_last_unit(PositionalIo& io, std::uint64_t new_size) noexcept;
    // Format v2: the units a growth to `new_size` adds are holes until
    // written, as this process knows.
    int note_new_units(std::uint64_t new_size) noexcept;
    // Re-encrypts the current last unit (and writes a new short last unit)
    // so the file can grow to `new_size` without changing physical bytes
    // outside those units.
    int prepare_growth(PositionalIo& io, std::uint64_t new_size) noexcept;
    bool decrypt_in_place(std::uint64_t unit, std::uint8_t* data, std::size_t len) noexcept;

    FileHeader header_;
    DataLayout layout_;
    std::unique_ptr<XtsCipher> xts_;             // format v1, unless plaintext_audit
    std::unique_ptr<AuthenticatedUnits> units_;  // format v2
    std::uint64_t size_;
    // Format v2: the size this process's own calls left the file at (0 until
    // it changes it); the disk may not hold less.
    std::uint64_t written_size_ = 0;
    std::uint64_t id_;  // unique in the process: names the file in the thread's metadata cache
};

}  // namespace ephemeral_crypt
