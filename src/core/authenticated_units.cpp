// Sealing and opening format v2 units (see authenticated_units.hpp). Nothing
// here does I/O: EncryptedFile reads and writes the data and the entries, and
// hands them over. Every refusal names its reason, because the operator's
// WARNING is the only account of what was found on disk.
#include "core/authenticated_units.hpp"

#include <sodium.h>

#include <cstring>
#include <new>

#include "core/encrypted_file_internal.hpp"
#include "core/nonce_source.hpp"

namespace ephemeral_crypt {

using encrypted_file_internal::all_zero;

namespace {

constexpr std::size_t kNonceAt = 0;
constexpr std::size_t kTagAt = kNonceAt + kGcmNonceBytes;
constexpr std::size_t kKindAt = kTagAt + kGcmTagBytes;
constexpr std::size_t kAdditionalDataBytes = 48;
static_assert(kKindAt + 4 == kEntryBytes, "nonce, tag, kind and three zero bytes");

// Full sentences: the operator's WARNING quotes them as its detail.
constexpr char kTagMismatch[] =
    "Its tag does not verify: the unit's data, nonce or tag was changed, or the unit was moved "
    "from another position or file.";
constexpr char kRolledBack[] =
    "This process wrote a newer version of the unit: it was replaced by an older one (rolled "
    "back).";
constexpr char kHoleRolledBack[] =
    "This process left the unit unwritten, and it now holds a unit sealed earlier (rolled back).";
constexpr char kZeroedWritten[] =
    "This process wrote the unit, and its data and metadata entry are now zero.";
constexpr char kHoleHoldsData[] = "The unit has no metadata entry, but its data is not zero.";
constexpr char kZerosHoldData[] = "The unit was written as zeros, but its data is not zero.";
constexpr char kMalformedEntry[] = "Its metadata entry is malformed.";

void put_u64(std::uint8_t* p, std::uint64_t v) noexcept {
    for (int i = 0; i < 8; ++i) {
        p[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
}

void put_u32(std::uint8_t* p, std::uint32_t v) noexcept {
    for (int i = 0; i < 4; ++i) {
        p[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
}

}  // namespace

AuthenticatedUnits::AuthenticatedUnits(std::unique_ptr<GcmCipher> cipher,
                                       const std::array<std::uint8_t, kNonceBytes>& file_nonce,
                                       std::uint64_t nonce_limit) noexcept
    : cipher_(std::move(cipher)), file_nonce_(file_nonce), nonce_limit_(nonce_limit) {}

std::uint64_t AuthenticatedUnits::fingerprint(const std::uint8_t tag[kGcmTagBytes]) noexcept {
    std::uint64_t value = 0;
    std::memcpy(&value, tag, sizeof(value));
    // 0 and 1 mean unknown and hole; a tag that starts with them is moved
    // out of their way (which costs nothing: two tags still share a
    // fingerprint with probability about 2^-64).
    return value < 2 ? value + 2 : value;
}

std::uint64_t AuthenticatedUnits::recorded(std::uint64_t unit) const noexcept {
    const std::uint64_t group = unit / kUnitsPerGroup;
    if (group >= records_.size() || !records_[group]) {
        return kUnknown;
    }
    return records_[group][unit % kUnitsPerGroup];
}

int AuthenticatedUnits::record(std::uint64_t unit, std::uint64_t value) noexcept {
    const std::uint64_t group = unit / kUnitsPerGroup;
    try {
        if (group >= records_.size()) {
            records_.resize(group + 1);
        }
    } catch (...) {
        return -ENOMEM;
    }
    std::unique_ptr<std::uint64_t[]>& block = records_[group];
    if (!block) {
        block.reset(new (std::nothrow) std::uint64_t[kUnitsPerGroup]());
        if (!block) {
            return -ENOMEM;
        }
    }
    block[unit % kUnitsPerGroup] = value;
    return 0;
}

void AuthenticatedUnits::additional_data(std::uint64_t unit, std::size_t len, UnitKind kind,
                                         std::uint8_t out[kAdditionalDataBytes]) const noexcept {
    std::memcpy(out, file_nonce_.data(), kNonceBytes);
    put_u64(out + 32, unit);
    put_u32(out + 40, static_cast<std::uint32_t>(len));
    out[44] = static_cast<std::uint8_t>(kind);
    out[45] = out[46] = out[47] = 0;
}

int AuthenticatedUnits::seal(std::uint64_t unit, const std::uint8_t* plain, std::uint8_t* out,
                             std::size_t len, bool zeros, std::uint8_t entry[kEntryBytes],
                             UnitFailure* why) noexcept {
    if (len == 0 || len > kHeaderBytes) {
        return -EIO;
    }
    if (nonces_drawn_ >= nonce_limit_) {
        if (why != nullptr) {
            *why = {static_cast<std::int64_t>(unit),
                    "The file key reached 2^32 sealed units, NIST SP 800-38D's limit for random "
                    "nonces: the write is refused, and the file must be written anew."};
        }
        return -EIO;
    }
    std::memset(entry, 0, kEntryBytes);
    if (!draw_nonce(entry + kNonceAt)) {
        return -EIO;
    }
    ++nonces_drawn_;
    const UnitKind kind = zeros ? UnitKind::Zeros : UnitKind::Sealed;
    entry[kKindAt] = static_cast<std::uint8_t>(kind);
    std::uint8_t aad[kAdditionalDataBytes];
    additional_data(unit, len, kind, aad);
    bool sealed;
    if (zeros) {
        std::memset(out, 0, len);
        sealed =
            cipher_->seal(entry + kNonceAt, aad, sizeof(aad), nullptr, nullptr, 0, entry + kTagAt);
    } else {
        sealed = cipher_->seal(entry + kNonceAt, aad, sizeof(aad), plain, out, len, entry + kTagAt);
    }
    if (!sealed) {
        return -EIO;
    }
    return record(unit, fingerprint(entry + kTagAt));
}

int AuthenticatedUnits::open(std::uint64_t unit, const std::uint8_t* stored, std::uint8_t* plain,
                             std::size_t len, const std::uint8_t entry[kEntryBytes],
                             UnitFailure* why) noexcept {
    // Every refusal wipes `plain`: a unit opened in place holds its
    // unauthenticated plaintext there once the cipher has run.
    const auto refuse = [&](const char* reason) noexcept {
        sodium_memzero(plain, len);
        return fail(unit, reason, why);
    };
    const std::uint64_t expected = recorded(unit);
    const std::uint8_t kind_byte = entry[kKindAt];
    if (kind_byte > static_cast<std::uint8_t>(UnitKind::Zeros) || entry[kKindAt + 1] != 0 ||
        entry[kKindAt + 2] != 0 || entry[kKindAt + 3] != 0) {
        return refuse(kMalformedEntry);
    }
    const auto kind = static_cast<UnitKind>(kind_byte);
    if (kind == UnitKind::Hole) {
        if (!all_zero(entry, kEntryBytes)) {
            return refuse(kMalformedEntry);
        }
        if (!all_zero(stored, len)) {
            return refuse(kHoleHoldsData);
        }
        if (expected != kUnknown && expected != kHole) {
            return refuse(kZeroedWritten);
        }
        std::memset(plain, 0, len);
        return 0;
    }
    std::uint8_t aad[kAdditionalDataBytes];
    additional_data(unit, len, kind, aad);
    bool authentic;
    if (kind == UnitKind::Zeros) {
        authentic =
            cipher_->open(entry + kNonceAt, aad, sizeof(aad), stored, plain, 0, entry + kTagAt);
        if (authentic && !all_zero(stored, len)) {
            return refuse(kZerosHoldData);
        }
        std::memset(plain, 0, len);
    } else {
        authentic =
            cipher_->open(entry + kNonceAt, aad, sizeof(aad), stored, plain, len, entry + kTagAt);
    }
    if (!authentic) {
        return refuse(kTagMismatch);
    }
    if (expected != kUnknown && expected != fingerprint(entry + kTagAt)) {
        return refuse(expected == kHole ? kHoleRolledBack : kRolledBack);
    }
    return 0;
}

int AuthenticatedUnits::note_holes(std::uint64_t first, std::uint64_t end) noexcept {
    for (std::uint64_t unit = first; unit < end; ++unit) {
        const int rc = record(unit, kHole);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

void AuthenticatedUnits::forget_from(std::uint64_t first) noexcept {
    const std::uint64_t group = first / kUnitsPerGroup;
    if (group >= records_.size()) {
        return;
    }
    if (records_[group]) {
        for (std::uint64_t i = first % kUnitsPerGroup; i < kUnitsPerGroup; ++i) {
            records_[group][i] = kUnknown;
        }
    }
    records_.resize(group + 1);
}

int AuthenticatedUnits::fail(std::uint64_t unit, const char* reason, UnitFailure* why) noexcept {
    if (why != nullptr) {
        *why = {static_cast<std::int64_t>(unit), reason};
    }
    return kIntegrityFailure;
}

}  // namespace ephemeral_crypt
