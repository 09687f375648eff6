// How one cipher turns a file's 4096-byte data units into what is stored
// and back: the interface EncryptedFile (core/encrypted_file.hpp)
// drives, so that EncryptedFile's own code is the same for every format. One
// implementation per cipher: XtsUnitCodec (format v1, AES-256-XTS,
// xts_unit_codec.cpp) and GcmUnitCodec (format v2, AES-256-GCM with a
// metadata entry per unit, gcm_unit_codec.cpp). A plaintext-audit file has
// no codec at all. A third cipher is one more implementation and one line in
// make_unit_codec().
//
// Every method is noexcept and returns 0 or -errno; data that fails
// authentication is kIntegrityFailure. A method that can fail for a reason
// the errno does not tell takes `why` (which may be null), and fills it in
// as it fails: which unit, and why.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "core/authenticated_units.hpp"
#include "core/category.hpp"
#include "core/data_layout.hpp"
#include "core/file_ciphers.hpp"
#include "core/file_header.hpp"
#include "core/instance_key.hpp"
#include "core/positional_io.hpp"
#include "core/xts_cipher.hpp"

namespace ephemeral_crypt {

// Where a codec reads what it needs besides the bytes EncryptedFile hands it:
// the file, where its bytes lie, and which file it is (it names the file in
// the thread's cached metadata block).
struct StoredFile {
    PositionalIo& io;
    const DataLayout& layout;
    std::uint64_t file_id;
};

class UnitCodec {
  public:
    virtual ~UnitCodec() = default;

    // Whether each unit has a metadata entry stored beside its data (format
    // v2), which EncryptedFile writes after the data and clears after a cut.
    virtual bool has_entries() const noexcept = 0;

    // The shortest unit a hole (zeros on disk) may stand for. A shorter unit
    // past the old end must be written even when the file only grows over
    // it (format v1: a unit under one AES block is a keystream XOR, so zeros
    // on disk are not zeros to the reader).
    virtual std::size_t shortest_hole() const noexcept = 0;

    // Whether the file may not be found shorter than this process left it
    // (format v2: the size is part of what is authenticated).
    virtual bool authenticates_size() const noexcept = 0;

    // Encrypts `len` bytes of `unit` from `plain` into `out`. `zeros` says
    // `plain` is zero throughout, which a codec may store as zeros. For a
    // codec with entries, also fills `entry` (kEntryBytes).
    virtual int seal(std::uint64_t unit, const std::uint8_t* plain, std::uint8_t* out,
                     std::size_t len, bool zeros, std::uint8_t* entry,
                     UnitFailure* why) noexcept = 0;

    // `data` holds `count` units from unit `first` on, as read from disk,
    // all whole but the last, which is `last_len` bytes long; all of them in
    // one group when the codec has entries. Leaves their plaintext there,
    // or, for a unit that fails, wipes it and returns the failure.
    virtual int open_run(const StoredFile& file, std::uint64_t first, std::size_t count,
                         std::size_t last_len, std::uint8_t* data, UnitFailure* why) noexcept = 0;

    // Reads `unit`'s first `len` bytes from the file and leaves their
    // plaintext in `out`.
    virtual int load_unit(const StoredFile& file, std::uint64_t unit, std::size_t len,
                          std::uint8_t* out, UnitFailure* why) noexcept = 0;

    // The disk holds less than this process's size says, at `unit`: the
    // error to return for it.
    virtual int truncated_at(std::uint64_t unit, UnitFailure* why) noexcept = 0;

    // This process grew the file over units [first, end) without writing
    // them, or cut it before unit `first`.
    virtual int note_holes(std::uint64_t first, std::uint64_t end) noexcept = 0;
    virtual void forget_from(std::uint64_t first) noexcept = 0;
};

// What every implementation holds: its cipher state, and the category whose
// cipher time it counts (core/cipher_timing.hpp).
template <class CipherState>
class UnitCodecOver : public UnitCodec {
  public:
    UnitCodecOver(std::unique_ptr<CipherState> state, Category category) noexcept
        : state_(std::move(state)), category_(category) {}

  protected:
    std::unique_ptr<CipherState> state_;
    Category category_;
};

// A `Codec` (a UnitCodecOver<CipherState>) over `state`; null if `state` is
// null (its maker failed) or the codec itself cannot be allocated.
template <class Codec, class CipherState>
std::unique_ptr<UnitCodec> new_unit_codec(std::unique_ptr<CipherState> state,
                                          Category category) noexcept {
    if (!state) {
        return nullptr;
    }
    return std::unique_ptr<UnitCodec>(new (std::nothrow) Codec(std::move(state), category));
}

// One maker per implementation, each taking its cipher state (null if that
// or the codec cannot be made: new_unit_codec).
std::unique_ptr<UnitCodec> make_xts_unit_codec(std::unique_ptr<XtsCipher> cipher,
                                               Category category) noexcept;
std::unique_ptr<UnitCodec> make_gcm_unit_codec(std::unique_ptr<AuthenticatedUnits> units,
                                               Category category) noexcept;

// The codec `header` calls for, its cipher state in locked memory; null,
// with `*failure` set, when that cannot be made. Never called for a
// plaintext-audit header.
std::unique_ptr<UnitCodec> make_unit_codec(const InstanceKey& key, const FileHeader& header,
                                           CipherSetupFailure* failure) noexcept;

// Reads `unit`'s first `len` bytes as stored into `out`: 0, the read's
// error, or the codec's truncated_at() (filling `why`) when fewer are there.
int read_stored_unit(UnitCodec& codec, const StoredFile& file, std::uint64_t unit, std::size_t len,
                     std::uint8_t* out, UnitFailure* why) noexcept;

}  // namespace ephemeral_crypt
