// What each per-file cipher (XTS and GCM) is built on: one libgcrypt cipher
// handle, keyed for its file and owned for the cipher's life. Closing the
// handle wipes its key schedule (and GCM's hash tables) before the block goes
// back to the locked arena, which wipes it again. libgcrypt is only declared
// here, so users of the ciphers need not see it.
#pragma once

#include "core/no_postgres.hpp"

#include <memory>

struct gcry_cipher_handle;

namespace ephemeral_crypt {

struct CloseCipherHandle {
    void operator()(gcry_cipher_handle* handle) const noexcept;
};

// Neither copied nor moved: a cipher's handle is never shared, and never
// left empty behind a cipher that is still in use.
class KeyedCipher {
  public:
    KeyedCipher(const KeyedCipher&) = delete;
    KeyedCipher& operator=(const KeyedCipher&) = delete;

  protected:
    // Takes ownership of `handle`, keyed by open_keyed_handle().
    explicit KeyedCipher(gcry_cipher_handle* handle) noexcept : handle_(handle) {}
    ~KeyedCipher() = default;

    gcry_cipher_handle* handle() const noexcept { return handle_.get(); }

  private:
    std::unique_ptr<gcry_cipher_handle, CloseCipherHandle> handle_;
};

}  // namespace ephemeral_crypt
