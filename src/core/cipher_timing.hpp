// The opt-in benchmark build's account of the time spent inside the cipher
// calls (make EC_BENCH_TIMING=1, which defines EPHEMERAL_CRYPT_BENCH_TIMING;
// never the default, never in a package). Each process adds up, per category
// and direction, the nanoseconds and bytes of every data unit it encrypts or
// decrypts (the all-zero shortcut does no cipher work and is not counted),
// and writes one line per category to stderr as it exits, which the server
// log keeps. bench/run.sh reads those lines to give the cipher's in-server
// speed and the cost beyond it. In the default build the timer is an empty
// object and nothing is written.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>

#include "core/category.hpp"

namespace ephemeral_crypt {

enum class CipherDirection : std::uint8_t { Encrypt = 0, Decrypt = 1 };

// The account, kept in every build (the unit tests drive it directly); only
// the benchmark build's CipherTimer adds to it.
void add_cipher_time(Category category, CipherDirection direction, std::uint64_t nanoseconds,
                     std::size_t bytes) noexcept;
std::uint64_t cipher_clock_ns() noexcept;

// Writes "ephemeral_crypt cipher timing: pid P category C encrypt_ns N
// encrypt_bytes B decrypt_ns N decrypt_bytes B" to `fd`, one write(2) per
// category this process did cipher work in, so that the lines of processes
// exiting together do not interleave.
void report_cipher_time(int fd) noexcept;

#ifdef EPHEMERAL_CRYPT_BENCH_TIMING

inline constexpr bool kCipherTimingBuild = true;

// Times its own lifetime: construct it just before a cipher call.
class CipherTimer {
  public:
    CipherTimer(Category category, CipherDirection direction, std::size_t bytes) noexcept
        : category_(category), direction_(direction), bytes_(bytes), start_(cipher_clock_ns()) {}
    ~CipherTimer() { add_cipher_time(category_, direction_, cipher_clock_ns() - start_, bytes_); }
    CipherTimer(const CipherTimer&) = delete;
    CipherTimer& operator=(const CipherTimer&) = delete;

  private:
    Category category_;
    CipherDirection direction_;
    std::size_t bytes_;
    std::uint64_t start_;
};

#else

inline constexpr bool kCipherTimingBuild = false;

class CipherTimer {
  public:
    CipherTimer(Category, CipherDirection, std::size_t) noexcept {}
};

#endif

}  // namespace ephemeral_crypt
