// Known-answer and behaviour tests for AES-256-GCM: vectors from NIST's CAVP
// GCM test files (gcmEncryptExtIV256.rsp, gcmDecrypt256.rsp, 96-bit nonces,
// 128-bit tags), the rejection of every altered input, and agreement with
// OpenSSL's independent GCM at the format's own shapes.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sodium.h>

#include <string>
#include <vector>

#include "core/gcm_cipher.hpp"
#include "openssl_reference.hpp"
#include "test_support.hpp"

namespace ephemeral_crypt {
namespace {

using testing::from_hex;
using testing::OpenSslReference;

struct Vector {
    const char* source;
    const char* key;
    const char* nonce;
    const char* aad;
    const char* plain;
    const char* cipher;
    const char* tag;
};

// gcmEncryptExtIV256.rsp, Keylen = 256, IVlen = 96, Taglen = 128.
const Vector kEncryptVectors[] = {
    {"PTlen=0 AADlen=0 Count=0", "b52c505a37d78eda5dd34f20c22540ea1b58963cf8e5bf8ffa85f9f2492505b4",
     "516c33929df5a3284ff463d7", "", "", "", "bdc1ac884d332457a1d2664f168c76f0"},
    {"PTlen=0 AADlen=128 Count=0",
     "78dc4e0aaf52d935c3c01eea57428f00ca1fd475f5da86a49c8dd73d68c8e223", "d79cf22d504cc793c3fb6c8a",
     "b96baa8c1c75a671bfb2d08d06be5f36", "", "", "3e5d486aa2e30b22e040b85723a06e76"},
    {"PTlen=0 AADlen=128 Count=1",
     "4457ff33683cca6ca493878bdc00373893a9763412eef8cddb54f91318e0da88", "699d1f29d7b8c55300bb1fd2",
     "6749daeea367d0e9809e2dc2f309e6e3", "", "", "d60c74d2517fde4a74e0cd4709ed43a9"},
    {"PTlen=128 AADlen=0 Count=0",
     "31bdadd96698c204aa9ce1448ea94ae1fb4a9a0b3c9d773b51bb1822666b8f22", "0d18e06c7c725ac9e362e1ce",
     "", "2db5168e932556f8089a0622981d017d", "fa4362189661d163fcd6a56d8bf0405a",
     "d636ac1bbedd5cc3ee727dc2ab4a9489"},
    {"PTlen=104 AADlen=0 Count=3",
     "e5a0eb92cc2b064e1bc80891faf1fab5e9a17a9c3a984e25416720e30e6c2b21", "4742357c335913153ff0eb0f",
     "", "8499893e16b0ba8b007d54665a", "eb8e6175f1fe38eb1acf95fd51",
     "88a8b74bb74fda553e91020a23deed45"},
    {"PTlen=256 AADlen=0 Count=6",
     "37f39137416bafde6f75022a7a527cc593b6000a83ff51ec04871a0ff5360e4e", "a291484c3de8bec6b47f525f",
     "", "fafd94cede8b5a0730394bec68a8e77dba288d6ccaa8e1563a81d6e7ccc7fc97",
     "44dc868006b21d49284016565ffb3979cc4271d967628bf7cdaf86db888e92e5",
     "01a2b578aa2f41ec6379a44a31cc019c"},
    {"PTlen=408 AADlen=0 Count=8",
     "595f259c55abe00ae07535ca5d9b09d6efb9f7e9abb64605c337acbd6b14fc7e", "92f258071d79af3e63672285",
     "",
     "a6fee33eb110a2d769bbc52b0f36969c287874f665681477a25fc4c48015c541fbe2394133ba490a34ee2dd67b898"
     "1"
     "77849a91",
     "bbca4a9e09ae9690c0f6f8d405e53dccd666aa9c5fa13c8758bc30abe1ddd1bcce0d36a1eaaaaffef20cd3c5970b9"
     "6"
     "73f8a65c",
     "26ccecb9976fd6ac9c2c0f372c52c821"},
    {"PTlen=128 AADlen=128 Count=0",
     "92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b", "ac93a1a6145299bde902f21a",
     "1e0889016f67601c8ebea4943bc23ad6", "2d71bcfa914e4ac045b2aa60955fad24",
     "8995ae2e6df3dbf96fac7b7137bae67f", "eca5aa77d51d4a0a14d9c51e1da474ab"},
    {"PTlen=128 AADlen=128 Count=1",
     "7da3bccaffb3464178ca7c722379836db50ce0bfb47640b9572163865332e486", "c04fd2e701c3dc62b68738b3",
     "fec0311013202e4ffdc4204926ae0ddf", "fd671cab1ee21f0df6bb610bf94f0e69",
     "6be61b17b7f7d494a7cdf270562f37ba", "5e702a38323fe1160b780d17adad3e96"},
    {"PTlen=128 AADlen=128 Count=2",
     "a359b9584beec189527f8842dda6b6d4c6a5db2f889635715fa3bcd7967c0a71", "8616c4cde11b34a944caba32",
     "e1796fca20cb3d3ab0ade69b2a18891e", "33a46b7539d64c6e1bdb91ba221e3007",
     "b0d316e95f3f3390ba10d0274965c62b", "aeaedcf8a012cc32ef25a62790e9334c"},
    {"PTlen=128 AADlen=128 Count=3",
     "8c83238e7b3b58278200b54940d779d0a0750673aab0bf2f5808dd15dc1a8c49", "70f8f4ebe408f61a35077956",
     "e1cbf83924f1b8d1014b97db56c25a15", "6e57f8572dd5b2247410f0d4c7424186",
     "4a11acb9611251df01f79f16f8201ffb", "9732be4ad0569586753d90fabb06f62c"},
};

// gcmDecrypt256.rsp, PTlen = 128, AADlen = 128: entries whose result is FAIL.
const Vector kFailVectors[] = {
    {"Count=2", "9a0343f850a6427120f764789ffec6d237447b898fbf51d2182f065d3861497d",
     "3deef6f453dd70d92143adcd", "dbb8226a624520863db6897017b2a4f8", "",
     "e93165935ac18e3a2845d15fe31a9286", "f5fc50d18766bc3d9e16dd136d45816b"},
    {"Count=4", "2a765ceac97265c15209eea90bea85cd9586b972160502ff592a306dc017e6b9",
     "62c545d9d4e3c7acb66b4bf1", "7d12474e23dc233bc6312d4d5b2deee4", "",
     "ae0594a7b66d3a958e4e6212d3288f91", "ec9aa846d185cc0f43d392240cd6e2c4"},
};

struct Decoded {
    std::vector<std::uint8_t> key, nonce, aad, plain, cipher, tag;
    explicit Decoded(const Vector& v)
        : key(from_hex(v.key)),
          nonce(from_hex(v.nonce)),
          aad(from_hex(v.aad)),
          plain(from_hex(v.plain)),
          cipher(from_hex(v.cipher)),
          tag(from_hex(v.tag)) {}
};

TEST(GcmCipher, NistEncryptVectorsSealToTheirCiphertextAndTag) {
    for (const Vector& v : kEncryptVectors) {
        const Decoded d(v);
        ASSERT_EQ(d.key.size(), kGcmKeyBytes) << v.source;
        ASSERT_EQ(d.nonce.size(), kGcmNonceBytes) << v.source;
        GcmCipher cipher(d.key.data());
        std::vector<std::uint8_t> out(d.plain.size());
        std::uint8_t tag[kGcmTagBytes];
        ASSERT_TRUE(cipher.seal(d.nonce.data(), d.aad.data(), d.aad.size(), d.plain.data(),
                                out.data(), d.plain.size(), tag))
            << v.source;
        EXPECT_EQ(out, d.cipher) << v.source;
        EXPECT_EQ(std::vector<std::uint8_t>(tag, tag + kGcmTagBytes), d.tag) << v.source;
    }
}

TEST(GcmCipher, NistEncryptVectorsOpenBackToTheirPlaintext) {
    for (const Vector& v : kEncryptVectors) {
        const Decoded d(v);
        GcmCipher cipher(d.key.data());
        std::vector<std::uint8_t> out(d.cipher.size());
        std::vector<std::uint8_t> stored = d.cipher;
        ASSERT_TRUE(cipher.open(d.nonce.data(), d.aad.data(), d.aad.size(), stored.data(),
                                out.data(), stored.size(), d.tag.data()))
            << v.source;
        EXPECT_EQ(out, d.plain) << v.source;
    }
}

TEST(GcmCipher, NistFailVectorsAreRefused) {
    for (const Vector& v : kFailVectors) {
        const Decoded d(v);
        GcmCipher cipher(d.key.data());
        std::vector<std::uint8_t> out(d.cipher.size());
        EXPECT_FALSE(cipher.open(d.nonce.data(), d.aad.data(), d.aad.size(), d.cipher.data(),
                                 out.data(), d.cipher.size(), d.tag.data()))
            << v.source;
    }
}

// Every bit of ciphertext, tag, nonce and additional data counts.
TEST(GcmCipher, AnyAlteredInputIsRefused) {
    const Decoded d(kEncryptVectors[7]);
    GcmCipher cipher(d.key.data());
    std::vector<std::uint8_t> out(d.cipher.size());
    auto opens = [&](std::vector<std::uint8_t> nonce, std::vector<std::uint8_t> aad,
                     std::vector<std::uint8_t> sealed, std::vector<std::uint8_t> tag) {
        return cipher.open(nonce.data(), aad.data(), aad.size(), sealed.data(), out.data(),
                           sealed.size(), tag.data());
    };
    ASSERT_TRUE(opens(d.nonce, d.aad, d.cipher, d.tag));
    using Field = std::vector<std::uint8_t> Decoded::*;
    for (const Field field : {&Decoded::nonce, &Decoded::aad, &Decoded::cipher, &Decoded::tag}) {
        for (std::size_t byte = 0; byte < (d.*field).size(); ++byte) {
            Decoded altered = d;
            (altered.*field)[byte] ^= 0x80;
            EXPECT_FALSE(opens(altered.nonce, altered.aad, altered.cipher, altered.tag))
                << "byte " << byte;
        }
    }
    // Shorter ciphertext, or longer additional data, are other messages too.
    EXPECT_FALSE(cipher.open(d.nonce.data(), d.aad.data(), d.aad.size(), d.cipher.data(),
                             out.data(), d.cipher.size() - 1, d.tag.data()));
    // A failed check leaves the handle usable for the next unit.
    EXPECT_TRUE(opens(d.nonce, d.aad, d.cipher, d.tag));
    EXPECT_EQ(out, d.plain);
}

TEST(GcmCipher, SealsInPlace) {
    const Decoded d(kEncryptVectors[5]);
    GcmCipher cipher(d.key.data());
    std::vector<std::uint8_t> buffer = d.plain;
    std::uint8_t tag[kGcmTagBytes];
    ASSERT_TRUE(
        cipher.seal(d.nonce.data(), nullptr, 0, buffer.data(), buffer.data(), buffer.size(), tag));
    EXPECT_EQ(buffer, d.cipher);
    EXPECT_EQ(std::vector<std::uint8_t>(tag, tag + kGcmTagBytes), d.tag);
}

TEST(GcmCipher, OpensInPlace) {
    const Decoded d(kEncryptVectors[5]);
    GcmCipher cipher(d.key.data());
    std::vector<std::uint8_t> buffer = d.cipher;
    ASSERT_TRUE(cipher.open(d.nonce.data(), nullptr, 0, buffer.data(), buffer.data(), buffer.size(),
                            d.tag.data()));
    EXPECT_EQ(buffer, d.plain);
    buffer = d.cipher;
    std::vector<std::uint8_t> bad_tag = d.tag;
    bad_tag[0] ^= 1;
    EXPECT_FALSE(cipher.open(d.nonce.data(), nullptr, 0, buffer.data(), buffer.data(),
                             buffer.size(), bad_tag.data()));
}

// libgcrypt seals, OpenSSL (an independent implementation) opens, over random
// keys and nonces, 48 bytes of additional data and every unit length the
// format writes, so the format is plain SP 800-38D GCM.
TEST(GcmCipher, MatchesOpenSslGcmForRandomKeysNoncesAndLengths) {
    ASSERT_GE(sodium_init(), 0);
    const OpenSslReference openssl("AES-256-GCM");
    ASSERT_TRUE(openssl.ready());
    for (int trial = 0; trial < 300; ++trial) {
        std::uint8_t key[kGcmKeyBytes], nonce[kGcmNonceBytes], aad[48], tag[kGcmTagBytes];
        randombytes_buf(key, sizeof(key));
        randombytes_buf(nonce, sizeof(nonce));
        randombytes_buf(aad, sizeof(aad));
        const std::size_t len = 1 + randombytes_uniform(4096);
        std::vector<std::uint8_t> plain(len), sealed(len), theirs(len);
        randombytes_buf(plain.data(), len);
        GcmCipher cipher(key);
        ASSERT_TRUE(cipher.seal(nonce, aad, sizeof(aad), plain.data(), sealed.data(), len, tag));

        int n = 0;
        ASSERT_EQ(EVP_DecryptInit_ex2(openssl.context(), openssl.cipher(), key, nonce, nullptr), 1);
        ASSERT_EQ(EVP_DecryptUpdate(openssl.context(), nullptr, &n, aad, sizeof(aad)), 1);
        ASSERT_EQ(EVP_DecryptUpdate(openssl.context(), theirs.data(), &n, sealed.data(),
                                    static_cast<int>(len)),
                  1);
        ASSERT_EQ(EVP_CIPHER_CTX_ctrl(openssl.context(), EVP_CTRL_GCM_SET_TAG, sizeof(tag), tag),
                  1);
        ASSERT_EQ(EVP_DecryptFinal_ex(openssl.context(), theirs.data() + n, &n), 1)
            << "length " << len;
        ASSERT_EQ(theirs, plain) << "length " << len;
    }
}

}  // namespace
}  // namespace ephemeral_crypt
