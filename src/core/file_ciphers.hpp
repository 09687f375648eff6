// The one place each file's cipher state is made, one function per cipher.
// The per-file key is derived from the instance key and the header's nonce
// into a stack buffer, handed to the cipher's constructor, which opens and
// keys its libgcrypt handle (gcry_cipher_open, then gcry_cipher_setkey; the
// handle holds the key schedule, and for GCM the GHASH tables, until it is
// closed), and wiped with sodium_memzero before returning, whatever happened.
#pragma once

#include "core/no_postgres.hpp"

#include <memory>

#include "core/authenticated_units.hpp"
#include "core/file_header.hpp"
#include "core/instance_key.hpp"
#include "core/xts_cipher.hpp"

namespace ephemeral_crypt {

// Null when the key cannot be derived or libgcrypt refuses it.
std::unique_ptr<XtsCipher> make_xts_file_cipher(const InstanceKey& key,
                                                const FileHeader& header) noexcept;
std::unique_ptr<AuthenticatedUnits> make_gcm_file_units(const InstanceKey& key,
                                                        const FileHeader& header) noexcept;

}  // namespace ephemeral_crypt
