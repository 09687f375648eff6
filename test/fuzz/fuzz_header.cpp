// libFuzzer target for the header decoder: any input, any length, must decode
// to a named status without reading out of bounds (ASan checks the latter).
// Raw inputs rarely get past the magic, so each input is also applied as a
// list of byte edits to a valid header, which reaches the checksum, MAC and
// field checks.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/file_header.hpp"

namespace ec = ephemeral_crypt;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static std::unique_ptr<ec::InstanceKey> key = ec::InstanceKey::generate();
    static std::vector<std::uint8_t> valid = [] {
        std::vector<std::uint8_t> header(ec::kHeaderBytes);
        ec::FileHeader fields;
        ec::encode_header(fields, *key, header.data());
        return header;
    }();

    (void)ec::decode_header(data, size, key.get());
    (void)ec::decode_header(data, size, nullptr);

    if (size < 1) {
        return 0;
    }
    std::vector<std::uint8_t> edited = valid;
    // First byte chooses a truncation; then (offset, value) pairs, offsets
    // biased towards the meaningful first 112 bytes.
    const std::size_t length = data[0] % 8 == 0 ? (data[0] * 17) % ec::kHeaderBytes : edited.size();
    for (std::size_t i = 1; i + 1 < size; i += 2) {
        edited[data[i] % 128] = data[i + 1];
    }
    const auto decoded = ec::decode_header(edited.data(), length, key.get());
    if (size == 1 && length == edited.size() && decoded.status != ec::HeaderStatus::Ok) {
        __builtin_trap();  // an unedited valid header must decode
    }
    (void)ec::decode_header(edited.data(), length, nullptr);
    return 0;
}
