// AES-256-GCM from libgcrypt against AES-256-GCM from OpenSSL, in the shape
// the authenticated format uses: one 4096-byte data unit per call, a fresh
// 96-bit nonce each time, 48 bytes of additional authenticated data (file
// nonce, unit index, entry kind, length), a 16-byte tag. The engine takes its
// GCM from whichever library is faster here; XTS on the same unit is printed
// beside them as the reference the authenticated mode's cost is judged
// against, and the nonce draw on its own: the engine's pooled draw
// (core/nonce_source) and one libsodium call per nonce, which it avoids.
// Run: build/gcm_bench; the ratios are printed at the end.
#include <benchmark/benchmark.h>
#include <gcrypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sodium.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "core/nonce_source.hpp"
#include "rate_reporter.hpp"
#include "raw_gcrypt_xts.hpp"

namespace {

constexpr std::size_t kUnit = 4096;
constexpr std::size_t kNonce = 12;
constexpr std::size_t kTag = 16;
constexpr std::size_t kAad = 48;

void record(benchmark::State& state) {
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * kUnit);
}

struct Unit {
    std::vector<std::uint8_t> plain = std::vector<std::uint8_t>(kUnit, 0x5a);
    std::vector<std::uint8_t> cipher = std::vector<std::uint8_t>(kUnit);
    std::uint8_t aad[kAad] = {};
    std::uint8_t nonce[kNonce] = {};
    std::uint8_t tag[kTag] = {};
    std::uint8_t key[32] = {};
    Unit() {
        randombytes_buf(key, sizeof(key));
        randombytes_buf(aad, sizeof(aad));
    }
};

// The timed loop of the four GCM benchmarks: `step` seals (under a fresh
// nonce, drawn first) or opens one unit.
template <class Step>
void time_units(benchmark::State& state, Unit& u, bool fresh_nonce, Step&& step) {
    for (auto _ : state) {
        if (fresh_nonce) {
            ephemeral_crypt::draw_nonce(u.nonce);
        }
        if (!step()) {
            state.SkipWithError("the library refused a unit");
            break;
        }
        benchmark::DoNotOptimize(u.tag);
        benchmark::DoNotOptimize(u.plain.data());
    }
    record(state);
}

// ---- libgcrypt ----

gcry_cipher_hd_t gcrypt_gcm(const Unit& u) {
    gcry_cipher_hd_t handle = nullptr;
    if (gcry_cipher_open(&handle, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM, 0) != 0 ||
        gcry_cipher_setkey(handle, u.key, sizeof(u.key)) != 0) {
        return nullptr;
    }
    return handle;
}

bool gcrypt_seal(gcry_cipher_hd_t h, Unit& u) {
    return gcry_cipher_setiv(h, u.nonce, kNonce) == 0 &&
           gcry_cipher_authenticate(h, u.aad, kAad) == 0 &&
           gcry_cipher_encrypt(h, u.cipher.data(), kUnit, u.plain.data(), kUnit) == 0 &&
           gcry_cipher_gettag(h, u.tag, kTag) == 0;
}

bool gcrypt_open(gcry_cipher_hd_t h, Unit& u) {
    return gcry_cipher_setiv(h, u.nonce, kNonce) == 0 &&
           gcry_cipher_authenticate(h, u.aad, kAad) == 0 &&
           gcry_cipher_decrypt(h, u.plain.data(), kUnit, u.cipher.data(), kUnit) == 0 &&
           gcry_cipher_checktag(h, u.tag, kTag) == 0;
}

void BM_GcryptGcmSeal4K(benchmark::State& state) {
    Unit u;
    gcry_cipher_hd_t h = gcrypt_gcm(u);
    if (h == nullptr) {
        state.SkipWithError("libgcrypt refused AES-256-GCM");
        return;
    }
    time_units(state, u, true, [&] { return gcrypt_seal(h, u); });
    gcry_cipher_close(h);
}
BENCHMARK(BM_GcryptGcmSeal4K);

void BM_GcryptGcmOpen4K(benchmark::State& state) {
    Unit u;
    gcry_cipher_hd_t h = gcrypt_gcm(u);
    if (h == nullptr || !gcrypt_seal(h, u)) {
        state.SkipWithError("libgcrypt refused AES-256-GCM");
        return;
    }
    // Out of place, so the ciphertext stays as it is on disk.
    time_units(state, u, false, [&] { return gcrypt_open(h, u); });
    gcry_cipher_close(h);
}
BENCHMARK(BM_GcryptGcmOpen4K);

// ---- OpenSSL ----

struct EvpGcm {
    EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    ~EvpGcm() {
        EVP_CIPHER_CTX_free(ctx);
        EVP_CIPHER_free(cipher);
    }
};

bool evp_seal(EvpGcm& e, Unit& u) {
    int n = 0;
    return EVP_EncryptInit_ex2(e.ctx, nullptr, nullptr, u.nonce, nullptr) == 1 &&
           EVP_EncryptUpdate(e.ctx, nullptr, &n, u.aad, kAad) == 1 &&
           EVP_EncryptUpdate(e.ctx, u.cipher.data(), &n, u.plain.data(), kUnit) == 1 &&
           EVP_EncryptFinal_ex(e.ctx, u.cipher.data() + n, &n) == 1 &&
           EVP_CIPHER_CTX_ctrl(e.ctx, EVP_CTRL_GCM_GET_TAG, kTag, u.tag) == 1;
}

bool evp_open(EvpGcm& e, Unit& u) {
    int n = 0;
    return EVP_DecryptInit_ex2(e.ctx, nullptr, nullptr, u.nonce, nullptr) == 1 &&
           EVP_DecryptUpdate(e.ctx, nullptr, &n, u.aad, kAad) == 1 &&
           EVP_DecryptUpdate(e.ctx, u.plain.data(), &n, u.cipher.data(), kUnit) == 1 &&
           EVP_CIPHER_CTX_ctrl(e.ctx, EVP_CTRL_GCM_SET_TAG, kTag, u.tag) == 1 &&
           EVP_DecryptFinal_ex(e.ctx, u.plain.data() + n, &n) == 1;
}

void BM_EvpGcmSeal4K(benchmark::State& state) {
    Unit u;
    EvpGcm e;
    if (EVP_EncryptInit_ex2(e.ctx, e.cipher, u.key, nullptr, nullptr) != 1) {
        state.SkipWithError("OpenSSL refused AES-256-GCM");
        return;
    }
    time_units(state, u, true, [&] { return evp_seal(e, u); });
}
BENCHMARK(BM_EvpGcmSeal4K);

void BM_EvpGcmOpen4K(benchmark::State& state) {
    Unit u;
    EvpGcm e;
    EvpGcm d;
    if (EVP_EncryptInit_ex2(e.ctx, e.cipher, u.key, nullptr, nullptr) != 1 ||
        EVP_DecryptInit_ex2(d.ctx, d.cipher, u.key, nullptr, nullptr) != 1 || !evp_seal(e, u)) {
        state.SkipWithError("OpenSSL refused AES-256-GCM");
        return;
    }
    time_units(state, u, false, [&] { return evp_open(d, u); });
}
BENCHMARK(BM_EvpGcmOpen4K);

// ---- References ----

// The XTS the engine uses today, on the same unit, with the tweak set per unit.
void BM_GcryptXts4K(benchmark::State& state) {
    gcry_cipher_hd_t h = ephemeral_crypt::bench::open_raw_gcrypt_xts();
    if (h == nullptr) {
        state.SkipWithError("libgcrypt refused AES-256-XTS");
        return;
    }
    Unit u;
    std::uint8_t tweak[16] = {};
    std::uint64_t unit = 0;
    for (auto _ : state) {
        ++unit;
        std::memcpy(tweak, &unit, sizeof(unit));
        gcry_cipher_setiv(h, tweak, sizeof(tweak));
        gcry_cipher_encrypt(h, u.cipher.data(), kUnit, u.plain.data(), kUnit);
        benchmark::DoNotOptimize(u.cipher.data());
    }
    record(state);
    gcry_cipher_close(h);
}
BENCHMARK(BM_GcryptXts4K);

// The cost of a fresh nonce alone: the engine's pooled draw, and one
// libsodium call (a getrandom system call) per nonce.
void BM_PooledNonce(benchmark::State& state) {
    std::uint8_t nonce[kNonce];
    for (auto _ : state) {
        ephemeral_crypt::draw_nonce(nonce);
        benchmark::DoNotOptimize(nonce);
    }
}
BENCHMARK(BM_PooledNonce);

void BM_SodiumNonce(benchmark::State& state) {
    std::uint8_t nonce[kNonce];
    for (auto _ : state) {
        randombytes_buf(nonce, sizeof(nonce));
        benchmark::DoNotOptimize(nonce);
    }
}
BENCHMARK(BM_SodiumNonce);

class GcmRatioReporter : public ephemeral_crypt::bench::RateReporter {
  public:
    void Finalize() override {
        ConsoleReporter::Finalize();
        std::printf(
            "\nAES-256-GCM at the format's shape (4 KiB unit, fresh nonce, 48-byte AAD):\n");
        std::printf("  libgcrypt / OpenSSL: seal %.3f, open %.3f (above 1: libgcrypt is faster)\n",
                    ratio("BM_GcryptGcmSeal4K", "BM_EvpGcmSeal4K"),
                    ratio("BM_GcryptGcmOpen4K", "BM_EvpGcmOpen4K"));
        std::printf("  libgcrypt GCM seal / libgcrypt XTS: %.3f\n",
                    ratio("BM_GcryptGcmSeal4K", "BM_GcryptXts4K"));
        std::printf("  %s, libgcrypt %s\n", OpenSSL_version(OPENSSL_VERSION),
                    gcry_check_version(nullptr));
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (sodium_init() < 0 || gcry_check_version("1.8.0") == nullptr) {
        std::fprintf(stderr, "libsodium or libgcrypt could not be initialised\n");
        return 1;
    }
    gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    benchmark::Initialize(&argc, argv);
    GcmRatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
