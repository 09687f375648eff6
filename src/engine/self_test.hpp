// The self-test that must pass before the server may serve: the ciphers'
// known answers (IEEE 1619 vector 10 for AES-256-XTS; a NIST GCM vector, and
// the rejection of its tag altered, for AES-256-GCM), then a round trip of a
// canary through the calls the server itself makes, on a real file of an
// enabled category, checking that the bytes on disk carry the header and not
// the canary.
#pragma once

#include "core/no_postgres.hpp"

#include <sys/types.h>

#include <cstddef>
#include <string>

namespace ephemeral_crypt::engine {

// The file calls the round trip goes through.
struct SelfTestCalls {
    int (*open)(const char*, int, ...) = nullptr;
    ssize_t (*pwrite)(int, const void*, size_t, off_t) = nullptr;
    ssize_t (*pread)(int, void*, size_t, off_t) = nullptr;
    int (*close)(int) = nullptr;
};

// What the server's own GOT slots hold for open, pwrite, pread and close:
// going through them proves the server's calls reach the layer, not merely
// that the layer works when called directly. Members are null if not found.
SelfTestCalls server_file_calls() noexcept;

// True if AES-256-XTS reproduces IEEE 1619 vector 10 and decrypts it back,
// and AES-256-GCM reproduces the NIST vector, opens it, and refuses it with
// one bit of its tag changed.
bool cipher_known_answers_pass();

// Runs both parts; throws EngineError saying what failed (and on which file).
// `data_dir` prefixes the self-test file's path: "" in the server, whose
// working directory is the data directory. Only the cipher is checked when
// no category is enabled.
void run_self_test(const SelfTestCalls& calls, const std::string& data_dir);

}  // namespace ephemeral_crypt::engine
