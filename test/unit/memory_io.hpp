// An in-memory PositionalIo for engine tests: a byte vector with the same
// semantics as a kernel file (reads stop at the end, writes past it leave a
// zero-filled gap).
#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/positional_io.hpp"

namespace ephemeral_crypt::testing {

class MemoryIo : public PositionalIo {
  public:
    std::int64_t read_at(void* buf, std::size_t len, std::uint64_t offset) noexcept override {
        ++reads;
        if (offset >= bytes.size()) {
            return 0;
        }
        const std::size_t n = std::min<std::size_t>(len, bytes.size() - offset);
        std::memcpy(buf, bytes.data() + offset, n);
        return static_cast<std::int64_t>(n);
    }
    std::int64_t write_at(const void* buf, std::size_t len,
                          std::uint64_t offset) noexcept override {
        ++writes;
        if (fail_writes) {
            return -ENOSPC;
        }
        if (offset + len > bytes.size()) {
            bytes.resize(offset + len, 0);
        }
        std::memcpy(bytes.data() + offset, buf, len);
        return static_cast<std::int64_t>(len);
    }
    std::int64_t size() noexcept override { return static_cast<std::int64_t>(bytes.size()); }
    int truncate(std::uint64_t length) noexcept override {
        bytes.resize(length, 0);
        return 0;
    }

    std::vector<std::uint8_t> bytes;
    bool fail_writes = false;
    int reads = 0;
    int writes = 0;
};

}  // namespace ephemeral_crypt::testing
