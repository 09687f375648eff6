// OpenSSL as the independent implementation the cipher tests check ours
// against: one fetched cipher and a context for it, freed however the test
// ends (an ASSERT returning early included).
#pragma once

#include <openssl/evp.h>

namespace ephemeral_crypt::testing {

class OpenSslReference {
  public:
    explicit OpenSslReference(const char* cipher_name)
        : cipher_(EVP_CIPHER_fetch(nullptr, cipher_name, nullptr)),
          context_(EVP_CIPHER_CTX_new()) {}
    ~OpenSslReference() {
        EVP_CIPHER_CTX_free(context_);
        EVP_CIPHER_free(cipher_);
    }
    OpenSslReference(const OpenSslReference&) = delete;
    OpenSslReference& operator=(const OpenSslReference&) = delete;

    // Both the cipher and the context exist.
    bool ready() const { return cipher_ != nullptr && context_ != nullptr; }
    const EVP_CIPHER* cipher() const { return cipher_; }
    EVP_CIPHER_CTX* context() const { return context_; }

  private:
    EVP_CIPHER* cipher_;
    EVP_CIPHER_CTX* context_;
};

}  // namespace ephemeral_crypt::testing
