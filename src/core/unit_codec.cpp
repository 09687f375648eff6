// What every codec shares (see unit_codec.hpp): reading a unit as stored,
// and the choice of a file's codec from its header.
#include "core/unit_codec.hpp"

#include "core/encrypted_file_internal.hpp"

namespace ephemeral_crypt {

using namespace encrypted_file_internal;

int read_stored_unit(UnitCodec& codec, const StoredFile& file, std::uint64_t unit, std::size_t len,
                     std::uint8_t* out, UnitFailure* why) noexcept {
    const std::int64_t got = file.io.read_at(out, len, file.layout.physical_position(unit * kUnit));
    if (got < 0) {
        return static_cast<int>(got);
    }
    if (static_cast<std::size_t>(got) != len) {
        return codec.truncated_at(unit, why);  // the file is shorter than its cached size says
    }
    return 0;
}

std::unique_ptr<UnitCodec> make_unit_codec(const InstanceKey& key, const FileHeader& header,
                                           CipherSetupFailure* failure) noexcept {
    if (header.authenticated()) {
        return make_gcm_unit_codec(make_gcm_file_units(key, header, failure), header.category);
    }
    return make_xts_unit_codec(make_xts_file_cipher(key, header, failure), header.category);
}

}  // namespace ephemeral_crypt
