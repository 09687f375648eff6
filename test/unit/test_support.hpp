// Small helpers shared by the unit tests: hex decoding, whole-file reads and
// writes with plain C++ streams (never through the layer, so they see the
// disk), draining a pipe, and a seeded RNG whose seed can be forced with EPHEMERAL_CRYPT_SEED
// to replay a failure.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/file_cipher.hpp"
#include "core/hex.hpp"

namespace ephemeral_crypt {

// Parameterised tests print the cipher by name.
inline void PrintTo(FileCipher cipher, std::ostream* out) {
    *out << file_cipher_name(cipher);
}

}  // namespace ephemeral_crypt

namespace ephemeral_crypt::testing {

inline std::vector<std::uint8_t> from_hex(const std::string& hex) {
    return bytes_from_hex(hex);
}

// A file's bytes; empty if it cannot be read.
inline std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Replaces a file's bytes.
inline void spit(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Everything `fd` (a pipe's read end) gives until its writers close it;
// then closes it.
inline std::string drain_and_close(int fd) {
    std::string out;
    char buffer[512];
    ssize_t got;
    while ((got = read(fd, buffer, sizeof(buffer))) > 0) {
        out.append(buffer, static_cast<std::size_t>(got));
    }
    close(fd);
    return out;
}

inline std::uint64_t test_seed() {
    if (const char* forced = std::getenv("EPHEMERAL_CRYPT_SEED")) {
        return std::strtoull(forced, nullptr, 10);
    }
    return std::random_device{}();
}

}  // namespace ephemeral_crypt::testing
