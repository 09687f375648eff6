// The exception types src/core throws. They are thrown only from set-up paths
// (key creation, cipher construction); the per-I/O paths are noexcept and
// report through return codes so they can sit behind libc wrappers.
#pragma once

#include "core/no_postgres.hpp"

#include <stdexcept>
#include <string>

namespace ephemeral_crypt {

class CryptoError : public std::runtime_error {
  public:
    explicit CryptoError(const std::string& what) : std::runtime_error(what) {}
};

// No locked memory is left for a file's key and cipher state
// (core/secure_memory.hpp): the file is refused, never served from ordinary
// memory. Callers tell it from other failures to say so.
class LockedMemoryExhausted : public CryptoError {
  public:
    explicit LockedMemoryExhausted(const std::string& what) : CryptoError(what) {}
};

// Appends OpenSSL's queued error text so a failure names its real cause.
[[noreturn]] void throw_openssl_error(const char* operation);

}  // namespace ephemeral_crypt
