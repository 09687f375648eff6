// Known-answer and behaviour tests for the AES-256-XTS unit cipher.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sodium.h>

#include <cstring>
#include <vector>

#include "core/xts_cipher.hpp"
#include "openssl_reference.hpp"
#include "test_support.hpp"

namespace ephemeral_crypt {
namespace {

using testing::from_hex;
using testing::OpenSslReference;

// IEEE 1619-2007, XTS-AES-256 Vector 10: key1 || key2, data unit sequence
// number 0xff, 512-byte data unit of 00..ff twice.
const char* kVector10Key =
    "2718281828459045235360287471352662497757247093699959574966967627"
    "3141592653589793238462643383279502884197169399375105820974944592";
const char* kVector10Ciphertext =
    "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b5d31e276f8fe4a8d66b317f9ac683f"
    "44680a86ac35adfc3345befecb4bb188fd5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a7"
    "41b0c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca2a3e7a7d7df7b10355165c8b9a"
    "6d0a7de8b062c4500dc4cd120c0f7418dae3d0b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e"
    "12ac3a0f93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec583e9645e07b8d9670655b"
    "a5bbcfecc6dc3966380ad8fecb17b6ba02469a020a84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1"
    "327a02b140f1505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae9be69a2ffeceb1bec9"
    "de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29a9abc3d4d893927284c58754cce294529f8614dcd2aba991"
    "925fedc4ae74ffac6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f645e8b7e9bfdef"
    "33943054ff84011493c27b3429eaedb4ed5376441a77ed43851ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550"
    "be97f7ab4066193c4caa773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151";

std::vector<std::uint8_t> vector10_plaintext() {
    std::vector<std::uint8_t> plain(512);
    for (std::size_t i = 0; i < plain.size(); ++i) {
        plain[i] = static_cast<std::uint8_t>(i % 256);
    }
    return plain;
}

TEST(XtsCipher, Ieee1619Vector10Encrypts) {
    const auto key = from_hex(kVector10Key);
    ASSERT_EQ(key.size(), kFileKeyBytes);
    XtsCipher cipher(key.data());
    const auto plain = vector10_plaintext();
    std::vector<std::uint8_t> out(plain.size());
    ASSERT_TRUE(cipher.encrypt_unit(0xff, plain.data(), out.data(), plain.size()));
    EXPECT_EQ(out, from_hex(kVector10Ciphertext));
}

TEST(XtsCipher, Ieee1619Vector10DecryptsInPlace) {
    const auto key = from_hex(kVector10Key);
    XtsCipher cipher(key.data());
    auto data = from_hex(kVector10Ciphertext);
    ASSERT_TRUE(cipher.decrypt_unit(0xff, data.data(), data.data(), data.size()));
    EXPECT_EQ(data, vector10_plaintext());
}

TEST(XtsCipher, TweakIsTheUnitIndex) {
    const auto key = from_hex(kVector10Key);
    XtsCipher cipher(key.data());
    const auto plain = vector10_plaintext();
    std::vector<std::uint8_t> a(plain.size()), b(plain.size());
    ASSERT_TRUE(cipher.encrypt_unit(0xfe, plain.data(), a.data(), plain.size()));
    ASSERT_TRUE(cipher.encrypt_unit(0xff, plain.data(), b.data(), plain.size()));
    EXPECT_NE(a, b);
    EXPECT_EQ(b, from_hex(kVector10Ciphertext));
}

TEST(XtsCipher, RoundTripsEveryLengthUpToAUnit) {
    const auto key = from_hex(kVector10Key);
    XtsCipher cipher(key.data());
    std::vector<std::uint8_t> plain(kDataUnitBytes);
    for (std::size_t i = 0; i < plain.size(); ++i) {
        plain[i] = static_cast<std::uint8_t>(i * 7 + 3);
    }
    for (std::size_t len : {1, 2, 15, 16, 17, 31, 33, 100, 511, 4095, 4096}) {
        std::vector<std::uint8_t> enc(len), dec(len);
        ASSERT_TRUE(cipher.encrypt_unit(42, plain.data(), enc.data(), len)) << len;
        EXPECT_NE(0, std::memcmp(enc.data(), plain.data(), len)) << len;
        ASSERT_TRUE(cipher.decrypt_unit(42, enc.data(), dec.data(), len)) << len;
        EXPECT_EQ(0, std::memcmp(dec.data(), plain.data(), len)) << len;
    }
}

// The cipher runs on libgcrypt for speed; OpenSSL is an independent IEEE 1619
// implementation, so equal output over random keys, tweaks and every kind of
// length (ciphertext stealing included) pins the format to the standard.
TEST(XtsCipher, MatchesOpenSslXtsForRandomKeysTweaksAndLengths) {
    ASSERT_GE(sodium_init(), 0);
    const OpenSslReference openssl("AES-256-XTS");
    ASSERT_TRUE(openssl.ready());
    for (int trial = 0; trial < 500; ++trial) {
        std::uint8_t key[kFileKeyBytes];
        randombytes_buf(key, sizeof(key));
        const std::uint64_t unit =
            (std::uint64_t{randombytes_random()} << 31) ^ randombytes_random();
        const std::size_t len =
            kXtsMinimumBytes + randombytes_uniform(kDataUnitBytes - kXtsMinimumBytes + 1);
        std::vector<std::uint8_t> plain(len), ours(len), theirs(len);
        randombytes_buf(plain.data(), len);

        XtsCipher cipher(key);
        ASSERT_TRUE(cipher.encrypt_unit(unit, plain.data(), ours.data(), len));
        std::uint8_t tweak[16] = {};
        for (int i = 0; i < 8; ++i) {
            tweak[i] = static_cast<std::uint8_t>(unit >> (8 * i));
        }
        int out_len = 0;
        ASSERT_EQ(EVP_CipherInit_ex2(openssl.context(), openssl.cipher(), key, tweak, 1, nullptr),
                  1);
        ASSERT_EQ(EVP_CipherUpdate(openssl.context(), theirs.data(), &out_len, plain.data(),
                                   static_cast<int>(len)),
                  1);
        ASSERT_EQ(ours, theirs) << "unit " << unit << ", length " << len;

        ASSERT_TRUE(cipher.decrypt_unit(unit, ours.data(), ours.data(), len));
        ASSERT_EQ(ours, plain) << "unit " << unit << ", length " << len;
    }
}

TEST(XtsCipher, RejectsEmptyAndOversizedUnits) {
    const auto key = from_hex(kVector10Key);
    XtsCipher cipher(key.data());
    std::vector<std::uint8_t> buf(kDataUnitBytes + 1);
    EXPECT_FALSE(cipher.encrypt_unit(0, buf.data(), buf.data(), 0));
    EXPECT_FALSE(cipher.encrypt_unit(0, buf.data(), buf.data(), kDataUnitBytes + 1));
}

TEST(XtsCipher, RefusesEqualKeyHalves) {
    std::vector<std::uint8_t> key(kFileKeyBytes, 0x5a);
    EXPECT_THROW(XtsCipher cipher(key.data()), CryptoError);
}

}  // namespace
}  // namespace ephemeral_crypt
