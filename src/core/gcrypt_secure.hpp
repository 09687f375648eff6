// libgcrypt, set up so that every cipher handle the extension opens lives in the
// process's locked, non-dumpable arena (core/secure_memory.hpp), key
// schedules and all, from gcry_cipher_open to gcry_cipher_close.
//
// libgcrypt allocates a handle opened with GCRY_CIPHER_SECURE through its
// "secure" allocator. Its own secure pool is locked but not excluded from
// core dumps, is fixed in size (and locked whole) when set up, is not locked
// again in a forked child, and grows into overflow pools that are not locked
// at all; so this file installs the arena as that allocator instead
// (gcry_set_allocation_handler, before libgcrypt's initialisation is
// finished), and checks every handle it opens: one that did not land in the
// arena is closed and refused. Every per-file cipher (XTS and GCM) opens and
// keys its handle here.
#pragma once

#include "core/no_postgres.hpp"

#include <gcrypt.h>

#include <cstddef>
#include <cstdint>

namespace ephemeral_crypt {

// XTS arrived in libgcrypt 1.8; its VAES/AVX2 path, which the throughput
// figures in bench/RESULTS.md rely on, in 1.9. GCM is older than both.
inline constexpr const char* kMinimumGcryptVersion = "1.8.0";

// Initialises libgcrypt once per process, with the arena as its secure
// allocator. Throws CryptoError if libgcrypt is too old, or was initialised
// by another component first (its allocator can then no longer be set).
void initialise_gcrypt();

// Opens a handle for `algorithm` in `mode` (GCRY_CIPHER_* values) in locked
// memory. Throws LockedMemoryExhausted when the arena refuses (no locked
// memory left), CryptoError for any other failure, including a handle that
// libgcrypt placed outside the arena (FIPS mode ignores custom allocators).
gcry_cipher_hd_t open_secure_cipher(int algorithm, int mode);

// Opens an AES-256 handle in `mode` (GCRY_CIPHER_MODE_XTS, _GCM) in locked
// memory and sets `key` in it. Throws as open_secure_cipher does, and
// CryptoError naming `cipher_name` when the key is refused.
gcry_cipher_hd_t open_keyed_handle(int mode, const std::uint8_t* key, std::size_t key_len,
                                   const char* cipher_name);

// Throws CryptoError "<operation> failed: <libgcrypt's reason>".
[[noreturn]] void throw_gcrypt_error(const char* operation, gcry_error_t error);

}  // namespace ephemeral_crypt
