// libFuzzer target for the header decoder: any input, any length, must decode
// to a named status without reading out of bounds (ASan checks the latter).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/file_header.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static std::unique_ptr<ephemeral_crypt::InstanceKey> key =
        ephemeral_crypt::InstanceKey::generate();
    (void)ephemeral_crypt::decode_header(data, size, key.get());
    (void)ephemeral_crypt::decode_header(data, size, nullptr);
    return 0;
}
