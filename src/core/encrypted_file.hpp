// The encrypted-file engine: logical reads, writes, truncates and allocations
// of any offset and length over a PositionalIo whose first 4096 bytes hold
// the file header. Logical offset L lives at physical L + 4096 and the
// logical size is the physical size minus the header, so nothing but the
// header is stored out of band.
//
// Data is AES-256-XTS in 4096-byte units with the unit index as tweak. A
// unit's length is min(4096, size - start), so the last unit may be short;
// growing or shrinking a file re-encrypts that unit at its new length. Units
// whose ciphertext is all zeros read as zeros (holes, fallocate). A last unit
// shorter than one AES block is never left as a hole: it is always written.
//
// One EncryptedFile is shared by every descriptor a process has on the same
// file, so the cached logical size stays coherent between them. Its key is
// derived into locked memory and its cipher state lives there
// (core/secure_memory.hpp); destroying it wipes both. Methods are noexcept
// and return bytes or -errno; a cryptographic failure is -EIO.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/category.hpp"
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

    // Writes a fresh header (random nonce) to an empty file. With
    // `plaintext_audit` the file is marked as holding plaintext and its data
    // is stored unencrypted (fail_open_audit). On failure `file` is null,
    // `status` is not Ok and `error` says why.
    static OpenOutcome create(PositionalIo& io, const InstanceKey& key, Category category,
                              bool plaintext_audit) noexcept;

    // Reads and checks the header of an existing file.
    static OpenOutcome open(PositionalIo& io, const InstanceKey& key) noexcept;

    std::int64_t pread(PositionalIo& io, void* buf, std::size_t len, std::uint64_t offset) noexcept;
    std::int64_t pwrite(PositionalIo& io, const void* buf, std::size_t len,
                        std::uint64_t offset) noexcept;
    int truncate(PositionalIo& io, std::uint64_t length) noexcept;
    int allocate(PositionalIo& io, std::uint64_t offset, std::uint64_t len) noexcept;

    // Logical size as last seen by this process.
    std::uint64_t size() const noexcept { return size_; }
    // Re-reads the physical size (another process may have written).
    int refresh_size(PositionalIo& io) noexcept;

    const FileHeader& header() const noexcept { return header_; }
    Category category() const noexcept { return header_.category; }
    bool plaintext_audit() const noexcept { return header_.plaintext_audit(); }

  private:
    EncryptedFile(const FileHeader& header, std::unique_ptr<XtsCipher> cipher,
                  std::uint64_t size) noexcept;

    std::size_t unit_length(std::uint64_t unit, std::uint64_t file_size) const noexcept;
    // Reads and decrypts the unit's first `len` bytes into `out`.
    int load_unit(PositionalIo& io, std::uint64_t unit, std::size_t len,
                  std::uint8_t* out) noexcept;
    int store_unit(PositionalIo& io, std::uint64_t unit, const std::uint8_t* plain,
                   std::size_t len) noexcept;
    // Re-encrypts a partial last unit at the length it has in a file of
    // `new_size` bytes (its ciphertext depends on its length).
    int grow_last_unit(PositionalIo& io, std::uint64_t new_size) noexcept;
    // Re-encrypts the current last unit (and writes a new short last unit)
    // so the file can grow to `new_size` without changing physical bytes
    // outside those units.
    int prepare_growth(PositionalIo& io, std::uint64_t new_size) noexcept;
    bool decrypt_in_place(std::uint64_t unit, std::uint8_t* data, std::size_t len) noexcept;

    FileHeader header_;
    std::unique_ptr<XtsCipher> cipher_;  // null for plaintext_audit files
    std::uint64_t size_;
};

}  // namespace ephemeral_crypt
