// Hex conversion through libsodium (see hex.hpp).
#include "core/hex.hpp"

#include <sodium.h>

namespace ephemeral_crypt {

std::string to_hex(const std::uint8_t* data, std::size_t len) {
    std::string out(2 * len + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), data, len);
    out.pop_back();  // the terminating NUL sodium writes
    return out;
}

bool to_hex(const std::uint8_t* data, std::size_t len, char* out, std::size_t out_len) noexcept {
    if (out_len < 2 * len + 1) {
        return false;
    }
    sodium_bin2hex(out, out_len, data, len);
    return true;
}

bool from_hex(std::string_view text, std::uint8_t* out, std::size_t len) noexcept {
    if (text.size() != 2 * len) {
        return false;
    }
    if (len == 0) {
        return true;  // nothing to decode; `out` may be null (an empty vector's data())
    }
    std::size_t written = 0;
    const char* end = nullptr;
    return sodium_hex2bin(out, len, text.data(), text.size(), nullptr, &written, &end) == 0 &&
           written == len && end == text.data() + text.size();
}

std::vector<std::uint8_t> bytes_from_hex(std::string_view text) {
    std::vector<std::uint8_t> out(text.size() / 2);
    if (text.size() % 2 != 0 || !from_hex(text, out.data(), out.size())) {
        out.clear();
    }
    return out;
}

}  // namespace ephemeral_crypt
