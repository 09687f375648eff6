// The one place each file's cipher state is made, one function per cipher.
// The per-file key is derived from the instance key and the header's nonce
// straight into a block of the process's locked, non-dumpable arena
// (core/secure_memory.hpp), handed from there to the cipher's constructor,
// which opens and keys its libgcrypt handle in the arena too
// (core/gcrypt_secure.hpp; the handle holds the key schedule, and for GCM the
// GHASH tables, until it is closed), and the block is wiped as it goes back,
// whatever happened.
#pragma once

#include "core/no_postgres.hpp"

#include <memory>

#include "core/authenticated_units.hpp"
#include "core/file_header.hpp"
#include "core/instance_key.hpp"
#include "core/xts_cipher.hpp"

namespace ephemeral_crypt {

// Why a file's cipher state was not made.
enum class CipherSetupFailure {
    None,
    NoLockedMemory,  // the arena (RLIMIT_MEMLOCK) has no room for the key or the handle
    Refused,         // the key could not be derived, or libgcrypt refused it
};

// Null, with `*failure` set, when the cipher state cannot be made.
std::unique_ptr<XtsCipher> make_xts_file_cipher(const InstanceKey& key, const FileHeader& header,
                                                CipherSetupFailure* failure) noexcept;
std::unique_ptr<AuthenticatedUnits> make_gcm_file_units(const InstanceKey& key,
                                                        const FileHeader& header,
                                                        CipherSetupFailure* failure) noexcept;

}  // namespace ephemeral_crypt
