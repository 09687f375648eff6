// The data units of a format v2 (AES-256-GCM) file: sealing a unit under a
// fresh nonce into its 32-byte metadata entry, and opening it again only if
// everything checks out. It owns the file's cipher, the file nonce every
// unit's additional data carries, the count of nonces drawn under the file
// key, and this process's record of what it wrote, which is what catches a
// unit rolled back to an older version of itself.
//
// Metadata entry (docs/formats.md, "Authenticated layout"):
//   [0, 12)   nonce        [12, 28)  tag        [28]  kind        [29, 32)  zero
// kind 0, an entry of 32 zero bytes: no entry; the unit was never written
//   (a hole, a fallocated or ftruncate-extended range) and its data must be
//   all zeros, which it reads as;
// kind 1, sealed: the data is the unit's GCM ciphertext;
// kind 2, zeros: PostgreSQL wrote zeros throughout (md.c extending a
//   relation); the data is stored as zeros without cipher work and the tag
//   (GCM over no data) authenticates that it is zeros.
// Additional authenticated data, 48 bytes:
//   file nonce (32) | unit index (u64 LE) | unit length (u32 LE) | kind | zero (3)
// so a unit, with its entry, moved to another position or another file, cut
// shorter, or relabelled as zeros, fails.
#pragma once

#include "core/no_postgres.hpp"

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/data_layout.hpp"
#include "core/file_header.hpp"
#include "core/gcm_cipher.hpp"

namespace ephemeral_crypt {

// What EncryptedFile returns when data fails authentication; the layer turns it
// into EIO for the caller and counts it as an integrity failure.
inline constexpr int kIntegrityFailure = -EBADMSG;

enum class UnitKind : std::uint8_t { Hole = 0, Sealed = 1, Zeros = 2 };

// Why a call failed, when the errno alone does not say: the unit and a
// static sentence (or two) for the operator. The call that fails fills it in
// through its `why` argument (which may be null when the caller does not
// ask), so the reason travels with that call's result and no file keeps a
// "last failure" another caller could take or overwrite.
struct UnitFailure {
    std::int64_t unit = -1;  // -1: none recorded
    const char* reason = nullptr;
};

class AuthenticatedUnits {
  public:
    // SP 800-38D, 8.3: at most 2^32 invocations with random nonces per key.
    static constexpr std::uint64_t kNonceLimit = std::uint64_t{1} << 32;

    AuthenticatedUnits(std::unique_ptr<GcmCipher> cipher,
                       const std::array<std::uint8_t, kNonceBytes>& file_nonce,
                       std::uint64_t nonce_limit = kNonceLimit) noexcept;

    // Seals `len` bytes of `unit`'s plaintext from `plain` into `out` under a
    // fresh nonce and fills `entry`. With `zeros` (`plain` is zero
    // throughout) `out` is zero-filled and the entry is of kind zeros.
    // Records the unit as written by this process. Returns 0, -EIO (the
    // cipher failed, or the key reached its nonce limit: then `why` says so)
    // or -ENOMEM.
    int seal(std::uint64_t unit, const std::uint8_t* plain, std::uint8_t* out, std::size_t len,
             bool zeros, std::uint8_t entry[kEntryBytes], UnitFailure* why) noexcept;

    // Checks `stored`, the unit's `len` data bytes as read from disk, with
    // its `entry` against this process's record of the unit, and writes its
    // plaintext into `plain`, which may be `stored` itself (opened in place).
    // Returns 0, or kIntegrityFailure with `plain` wiped and `why` saying
    // why.
    int open(std::uint64_t unit, const std::uint8_t* stored, std::uint8_t* plain, std::size_t len,
             const std::uint8_t entry[kEntryBytes], UnitFailure* why) noexcept;

    // This process grew the file past units [first, end) without writing
    // them: they are holes now, and anything else found there later is not
    // what it left. Returns 0 or -ENOMEM.
    int note_holes(std::uint64_t first, std::uint64_t end) noexcept;
    // This process cut the file before unit `first`.
    void forget_from(std::uint64_t first) noexcept;

    // An integrity failure of `unit`, found here or by the caller (a file
    // shorter than this process wrote it): fills `why` and returns
    // kIntegrityFailure.
    static int fail(std::uint64_t unit, const char* reason, UnitFailure* why) noexcept;

    std::uint64_t nonces_drawn() const noexcept { return nonces_drawn_; }

  private:
    // Per unit: 0 unknown (not written by this process since it opened the
    // file), 1 a hole this process left, else a fingerprint of the tag it
    // last sealed the unit with.
    static constexpr std::uint64_t kUnknown = 0;
    static constexpr std::uint64_t kHole = 1;
    static std::uint64_t fingerprint(const std::uint8_t tag[kGcmTagBytes]) noexcept;
    std::uint64_t recorded(std::uint64_t unit) const noexcept;
    int record(std::uint64_t unit, std::uint64_t value) noexcept;

    void additional_data(std::uint64_t unit, std::size_t len, UnitKind kind,
                         std::uint8_t out[48]) const noexcept;

    std::unique_ptr<GcmCipher> cipher_;
    std::array<std::uint8_t, kNonceBytes> file_nonce_;
    std::uint64_t nonce_limit_;
    std::uint64_t nonces_drawn_ = 0;
    // One block of kUnitsPerGroup records per group, allocated when this
    // process first writes into the group (8 bytes per 4 KiB of data).
    std::vector<std::unique_ptr<std::uint64_t[]>> records_;
};

}  // namespace ephemeral_crypt
