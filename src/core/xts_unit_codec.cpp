// Format v1's units (see unit_codec.hpp): AES-256-XTS with the unit index as
// tweak, nothing stored beside the data. A unit that is zero throughout is
// stored as zeros and zeros on disk read as a zero unit (holes, fallocate,
// md.c's zero-filled extensions), except a unit shorter than one AES block:
// its ciphertext is a keystream XOR, so it is always written and never taken
// for a hole.
#include "core/unit_codec.hpp"

#include <cerrno>
#include <cstring>
#include <memory>

#include "core/cipher_timing.hpp"
#include "core/encrypted_file_internal.hpp"
#include "core/xts_cipher.hpp"

namespace ephemeral_crypt {

using namespace encrypted_file_internal;

namespace {

class XtsUnitCodec final : public UnitCodecOver<XtsCipher> {
  public:
    using UnitCodecOver::UnitCodecOver;

    bool has_entries() const noexcept override { return false; }
    std::size_t shortest_hole() const noexcept override { return kXtsMinimumBytes; }
    bool authenticates_size() const noexcept override { return false; }

    // XTS has no failure the errno does not tell: `why` is never filled.
    int seal(std::uint64_t unit, const std::uint8_t* plain, std::uint8_t* out, std::size_t len,
             bool zeros, std::uint8_t* /*entry*/, UnitFailure* /*why*/) noexcept override {
        if (zeros && len >= kXtsMinimumBytes) {
            std::memset(out, 0, len);
            return 0;
        }
        const CipherTimer timer(category_, CipherDirection::Encrypt, len);
        return state_->encrypt_unit(unit, plain, out, len) ? 0 : -EIO;
    }

    int open_run(const StoredFile& /*file*/, std::uint64_t first, std::size_t count,
                 std::size_t last_len, std::uint8_t* data, UnitFailure* /*why*/) noexcept override {
        for (std::size_t i = 0; i < count; ++i) {
            const std::size_t len = i + 1 == count ? last_len : kUnit;
            if (!decrypt_in_place(first + i, data + i * kUnit, len)) {
                return -EIO;
            }
        }
        return 0;
    }

    int load_unit(const StoredFile& file, std::uint64_t unit, std::size_t len, std::uint8_t* out,
                  UnitFailure* why) noexcept override {
        const int rc = read_stored_unit(*this, file, unit, len, out, why);
        if (rc < 0) {
            return rc;
        }
        return decrypt_in_place(unit, out, len) ? 0 : -EIO;
    }

    // Format v1 cannot tell a cut from a read error: EncryptedFile reports EIO.
    int truncated_at(std::uint64_t /*unit*/, UnitFailure* /*why*/) noexcept override {
        return -EIO;
    }
    int note_holes(std::uint64_t /*first*/, std::uint64_t /*end*/) noexcept override { return 0; }
    void forget_from(std::uint64_t /*first*/) noexcept override {}

  private:
    bool decrypt_in_place(std::uint64_t unit, std::uint8_t* data, std::size_t len) noexcept {
        if (len >= kXtsMinimumBytes && all_zero(data, len)) {
            return true;
        }
        const CipherTimer timer(category_, CipherDirection::Decrypt, len);
        return state_->decrypt_unit(unit, data, data, len);
    }
};

}  // namespace

std::unique_ptr<UnitCodec> make_xts_unit_codec(std::unique_ptr<XtsCipher> cipher,
                                               Category category) noexcept {
    return new_unit_codec<XtsUnitCodec>(std::move(cipher), category);
}

}  // namespace ephemeral_crypt
