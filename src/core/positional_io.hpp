// The abstract file EncryptedFile encrypts into: positional reads and writes,
// size, truncate and allocate on physical offsets. Tests back it with memory;
// the libc layer backs it with a real descriptor. Every call reports failure
// as a negative errno value so EncryptedFile never needs exceptions.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>

namespace ephemeral_crypt {

class PositionalIo {
  public:
    virtual ~PositionalIo() = default;
    // Transfers all `len` bytes unless end of file (reads) or an error stops
    // it; returns the count transferred or -errno.
    virtual std::int64_t read_at(void* buf, std::size_t len, std::uint64_t offset) noexcept = 0;
    virtual std::int64_t write_at(const void* buf, std::size_t len,
                                  std::uint64_t offset) noexcept = 0;
    // Physical size in bytes, or -errno.
    virtual std::int64_t size() noexcept = 0;
    virtual int truncate(std::uint64_t length) noexcept = 0;  // 0 or -errno
    // Reserves [offset, offset + len) so later writes cannot fail for space,
    // extending the file if needed. The default extends by truncate.
    virtual int allocate(std::uint64_t offset, std::uint64_t len) noexcept {
        const std::int64_t current = size();
        if (current < 0) {
            return static_cast<int>(current);
        }
        if (offset + len > static_cast<std::uint64_t>(current)) {
            return truncate(offset + len);
        }
        return 0;
    }
};

}  // namespace ephemeral_crypt
