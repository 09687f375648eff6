// Fresh 96-bit GCM nonces. Every write of a data unit takes a new random
// nonce from libsodium's CSPRNG (randombytes_buf), so no coordination is
// needed between the processes that write one file: a file key sees nonces
// drawn independently at random, and q of them collide with probability
// below q^2 / 2^97 (NIST SP 800-38D, 8.3, caps random nonces at 2^32 per
// key; AuthenticatedUnits enforces that cap).
//
// randombytes_buf costs a system call (getrandom) per call, as much as
// sealing a unit, so nonces are drawn 4 KiB at a time into a per-thread
// pool. A forked child must never hand out the nonces its parent will, so
// the pool is emptied in the child: a pthread_atfork handler bumps a fork
// generation, and a pool filled in an older generation is refilled before
// use.
#pragma once

#include "core/no_postgres.hpp"

#include <cstdint>

#include "core/gcm_cipher.hpp"

namespace ephemeral_crypt {

// Fills `out` with a fresh nonce. False only if libsodium cannot be
// initialised.
bool draw_nonce(std::uint8_t out[kGcmNonceBytes]) noexcept;

}  // namespace ephemeral_crypt
