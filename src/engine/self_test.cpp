// The start-up self-test (see self_test.hpp). The round trip writes its
// canary at logical offset 4000, so the write spans the end of the first
// data unit's first page and the physical file must be exactly as long as
// its layout puts 4000 + canary logical bytes: header + 4000 + canary bytes
// in format v1, and one metadata block more in format v2.
#include "engine/self_test.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/data_layout.hpp"
#include "core/file_cipher.hpp"
#include "core/file_header.hpp"
#include "core/file_io.hpp"
#include "core/gcm_cipher.hpp"
#include "core/hex.hpp"
#include "core/xts_cipher.hpp"
#include "engine/errors.hpp"
#include "interpose/layer.hpp"

namespace ephemeral_crypt::engine {

namespace ip = ephemeral_crypt::interpose;

namespace {

constexpr off_t kCanaryOffset = 4000;

// A path inside an enabled category for the round trip (empty when none
// is enabled), and that category.
struct SelfTestFile {
    std::string path;
    Category category = Category::Spill;
};

SelfTestFile self_test_file(const std::string& data_dir) {
    const std::string pid = std::to_string(getpid());
    if (ip::category_enabled(Category::Spill)) {
        mkdir((data_dir + "base/pgsql_tmp").c_str(), 0700);  // what PostgreSQL does on first spill
        return {data_dir + "base/pgsql_tmp/pgsql_tmp_ephemeral_crypt_selftest." + pid,
                Category::Spill};
    }
    if (ip::category_enabled(Category::Wal)) {
        return {data_dir + "pg_wal/xlogtemp." + pid, Category::Wal};
    }
    if (ip::category_enabled(Category::TempRelation)) {
        // Removed by PostgreSQL's startup sweep if we die.
        return {data_dir + "base/1/t0_" + pid, Category::TempRelation};
    }
    return {};
}

// NIST CAVP gcmEncryptExtIV256.rsp, [Keylen = 256] [IVlen = 96] [PTlen = 128]
// [AADlen = 128] [Taglen = 128], Count = 0.
bool gcm_known_answer_passes() {
    std::uint8_t key[kGcmKeyBytes], nonce[kGcmNonceBytes], aad[16], plain[16], expected[16],
        expected_tag[kGcmTagBytes];
    if (!from_hex("92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b", key,
                  sizeof(key)) ||
        !from_hex("ac93a1a6145299bde902f21a", nonce, sizeof(nonce)) ||
        !from_hex("1e0889016f67601c8ebea4943bc23ad6", aad, sizeof(aad)) ||
        !from_hex("2d71bcfa914e4ac045b2aa60955fad24", plain, sizeof(plain)) ||
        !from_hex("8995ae2e6df3dbf96fac7b7137bae67f", expected, sizeof(expected)) ||
        !from_hex("eca5aa77d51d4a0a14d9c51e1da474ab", expected_tag, sizeof(expected_tag))) {
        return false;
    }
    GcmCipher cipher(key);
    std::uint8_t sealed[16], tag[kGcmTagBytes], back[16];
    if (!cipher.seal(nonce, aad, sizeof(aad), plain, sealed, sizeof(plain), tag) ||
        std::memcmp(sealed, expected, sizeof(sealed)) != 0 ||
        std::memcmp(tag, expected_tag, sizeof(tag)) != 0 ||
        !cipher.open(nonce, aad, sizeof(aad), sealed, back, sizeof(back), tag) ||
        std::memcmp(back, plain, sizeof(back)) != 0) {
        return false;
    }
    tag[0] ^= 1;
    return !cipher.open(nonce, aad, sizeof(aad), sealed, back, sizeof(back), tag);
}

// The file's raw bytes, read with libc itself (never through the layer).
std::string raw_bytes(const std::string& path, std::size_t at_most) {
    std::vector<char> raw(at_most);
    const FileCalls libc = ip::plaintext_file_calls();
    const int fd = libc.open(path.c_str(), O_RDONLY);
    const ssize_t n = fd >= 0 ? libc.pread(fd, raw.data(), raw.size(), 0) : -1;
    if (fd >= 0) {
        libc.close(fd);
    }
    return std::string(raw.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
}

}  // namespace

SelfTestCalls server_file_calls() noexcept {
    const FileCalls server = ip::server_file_calls();
    SelfTestCalls calls;
    calls.open = server.open;
    calls.pwrite = server.pwrite;
    calls.pread = server.pread;
    calls.close = server.close;
    return calls;
}

bool cipher_known_answers_pass() {
    static const char kKey[] =
        "2718281828459045235360287471352662497757247093699959574966967627"
        "3141592653589793238462643383279502884197169399375105820974944592";
    static const char kFirstBlocks[] =
        "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b";
    std::uint8_t key[kFileKeyBytes];
    std::uint8_t expected[32];
    if (!from_hex(kKey, key, sizeof(key)) || !from_hex(kFirstBlocks, expected, sizeof(expected))) {
        return false;
    }
    std::uint8_t plain[512], cipher_text[512], back[512];
    for (int i = 0; i < 512; ++i) {
        plain[i] = static_cast<std::uint8_t>(i);
    }
    XtsCipher cipher(key);
    if (!cipher.encrypt_unit(0xff, plain, cipher_text, sizeof(plain)) ||
        !cipher.decrypt_unit(0xff, cipher_text, back, sizeof(back))) {
        return false;
    }
    return std::memcmp(cipher_text, expected, sizeof(expected)) == 0 &&
           std::memcmp(plain, back, sizeof(plain)) == 0 && gcm_known_answer_passes();
}

void run_self_test(const SelfTestCalls& calls, const std::string& data_dir) {
    if (!cipher_known_answers_pass()) {
        throw EngineError("AES-256-XTS or AES-256-GCM known-answer test failed");
    }
    const SelfTestFile file = self_test_file(data_dir);
    const std::string& path = file.path;
    if (path.empty()) {
        return;  // nothing is to be encrypted: only the cipher is checked
    }
    if (calls.open == nullptr || calls.pwrite == nullptr || calls.pread == nullptr ||
        calls.close == nullptr) {
        throw EngineError("the server's open/pread/pwrite/close slots were not found");
    }
    const std::string canary = "ephemeral_crypt self-test canary " + std::to_string(getpid());
    int fd = calls.open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        throw_system_error("could not create", path);
    }
    const bool tracked = ip::fd_is_tracked(fd, nullptr);
    const bool written = calls.pwrite(fd, canary.data(), canary.size(), kCanaryOffset) ==
                         static_cast<ssize_t>(canary.size());
    calls.close(fd);

    const FileCipher cipher = ip::config().policy[category_index(file.category)].cipher;
    const auto expected_size = static_cast<std::size_t>(
        DataLayout::for_version(format_version_for(cipher))
            .physical_size(kCanaryOffset + static_cast<off_t>(canary.size())));
    const std::string on_disk = raw_bytes(path, expected_size + 1);
    std::string from_layer(canary.size(), '\0');
    fd = calls.open(path.c_str(), O_RDONLY);
    const bool read_back =
        fd >= 0 && calls.pread(fd, from_layer.data(), from_layer.size(), kCanaryOffset) ==
                       static_cast<ssize_t>(canary.size());
    if (fd >= 0) {
        calls.close(fd);
    }
    unlink(path.c_str());

    const char* failure = nullptr;
    if (!tracked) {
        failure = "the layer did not take the self-test file";
    } else if (!written) {
        failure = "the self-test write failed";
    } else if (on_disk.size() != expected_size ||
               on_disk.compare(0, sizeof(kHeaderMagic),
                               std::string(kHeaderMagic, sizeof(kHeaderMagic))) != 0) {
        failure = "the self-test file has no encryption header";
    } else if (on_disk.find(canary) != std::string::npos) {
        failure = "the self-test canary reached the disk in plaintext";
    } else if (!read_back || from_layer != canary) {
        failure = "the self-test canary did not read back through the layer";
    }
    if (failure != nullptr) {
        throw EngineError(std::string(failure) + " (file \"" + path + "\")");
    }
}

}  // namespace ephemeral_crypt::engine
