// What the files of the engine's C interface (engine_api.h) share: the one
// fence every entry point that can fail runs its body through, the
// conversions between the C header's values and the engine's C++ types, and
// the few globals more than one subject touches (each defined in the file of
// its subject). Included only by the engine_api*.cpp files.
#pragma once

#include "core/no_postgres.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "core/category.hpp"
#include "core/event_ring.hpp"
#include "core/policy.hpp"
#include "core/shared_policy.hpp"
#include "engine/engine_api.h"
#include "engine/errors.hpp"

namespace ephemeral_crypt::engine::api {

// The instance key's id in hex, set at start-up (engine_api.cpp) and
// stamped on every recorded event.
extern char g_key_id[EC_KEY_ID_BUFFER];
// The shared block every process reads the policy in force from
// (engine_api_policy.cpp); null until shared memory is attached and after
// it is detached.
extern SharedPolicy* g_shared_policy;
// The decision trail's ring in shared memory (engine_api_events.cpp); null
// likewise.
extern EventRing* g_event_ring;

inline std::int64_t unix_ms_now() noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

inline void copy_text(char* out, std::size_t out_len, const std::string& text) noexcept {
    std::snprintf(out, out_len, "%s", text.c_str());
}

inline void fill_error(ec_error* error, int saved_errno, const char* message) noexcept {
    if (error != nullptr) {
        error->status = EC_FAILED;
        error->saved_errno = saved_errno;
        std::snprintf(error->message, sizeof(error->message), "%s", message);
    }
}

// The one place where C++ exceptions stop: every entry point that can fail
// runs its body through this, so nothing is ever thrown into PostgreSQL's C
// frames. The body returns EC_OK or reports a failure through fill_error;
// an exception becomes the message and errno it carries.
template <class Body>
ec_status fenced(ec_error* error, Body&& body) noexcept {
    if (error != nullptr) {
        error->status = EC_OK;
        error->saved_errno = 0;
        error->message[0] = '\0';
    }
    try {
        return body();
    } catch (const EngineError& e) {
        fill_error(error, e.error_number(), e.what());
    } catch (const std::bad_alloc&) {
        fill_error(error, 0, "out of memory");
    } catch (const std::exception& e) {
        fill_error(error, 0, e.what());
    } catch (...) {
        fill_error(error, 0, "unexpected C++ exception");
    }
    return EC_FAILED;
}

inline bool valid_category(int category) noexcept {
    return category >= 0 && category < EC_CATEGORY_COUNT;
}

inline Category category_at(int index) noexcept {
    return kAllCategories[index];
}

inline Degradation degradation_from(int value) noexcept {
    return value == EC_FAIL_OPEN_AUDIT ? Degradation::FailOpenAudit : Degradation::FailClosed;
}

inline FileCipher cipher_from(int value) noexcept {
    return value == EC_CIPHER_AES_256_GCM ? FileCipher::Aes256Gcm : FileCipher::Aes256Xts;
}

inline CategoryPolicy to_core_category(bool encrypt, int degradation, int cipher) noexcept {
    CategoryPolicy core;
    core.enabled = encrypt;
    core.degradation = degradation_from(degradation);
    core.cipher = cipher_from(cipher);
    return core;
}

}  // namespace ephemeral_crypt::engine::api

// The short names the engine_api*.cpp files write their calls with: the
// core (ec::), the engine's rooms (engine::) and the file-access layer (ip::).
namespace ephemeral_crypt::interpose {}
namespace ec = ephemeral_crypt;
namespace engine = ephemeral_crypt::engine;
namespace ip = ephemeral_crypt::interpose;
