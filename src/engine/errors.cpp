// The engine's one exception type (see errors.hpp).
#include "engine/errors.hpp"

#include <cerrno>

namespace ephemeral_crypt::engine {

void throw_system_error(const char* action, const std::string& path) {
    const int error = errno;
    throw EngineError(std::string(action) + " \"" + path + "\"", error);
}

}  // namespace ephemeral_crypt::engine
