// How the engine room reports failure: one exception type that carries the
// errno of the system call that failed (0 when none did) and a message that
// names what failed without restating the errno. Start-up paths throw it;
// the one fence (engine_api_internal.hpp) stops every exception there and
// hands the errno and the message to src/pg, which reports them with
// errcode_for_file_access() and %m.
#pragma once

#include "core/no_postgres.hpp"

#include <stdexcept>
#include <string>

namespace ephemeral_crypt::engine {

class EngineError : public std::runtime_error {
  public:
    explicit EngineError(const std::string& what, int error_number = 0)
        : std::runtime_error(what), error_number_(error_number) {}
    int error_number() const noexcept { return error_number_; }

  private:
    int error_number_;
};

// Throws EngineError("<action> \"<path>\"") with the current errno. Call it
// right after the system call that failed: errno is read before the message
// is built, and the arguments allocate nothing at the call.
[[noreturn]] void throw_system_error(const char* action, const std::string& path);

}  // namespace ephemeral_crypt::engine
