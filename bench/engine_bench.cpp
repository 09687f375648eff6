// Engine throughput against raw AES-256-XTS on the same 8 KiB buffers: raw
// OpenSSL EVP (what `openssl speed` measures) and raw libgcrypt (the library
// the engine calls). The engine runs over a no-copy file so the comparison
// measures its own overhead (unit handling, zero checks), not the kernel.
// The authenticated format (AES-256-GCM, metadata entries) is measured too:
// its writes over the no-copy file, its reads over an in-memory file (a read
// must find real entries and tags), beside XTS's over the same file.
// Also the cost of opening a file (its key derived into locked memory, its
// cipher set up there, its header written or checked), which spill-heavy
// queries pay once per file. Run: build/engine_bench; the ratios are printed
// at the end.
#include <benchmark/benchmark.h>
#include <gcrypt.h>
#include <openssl/evp.h>
#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/encrypted_file.hpp"
#include "core/secure_memory.hpp"
#include "../test/unit/memory_io.hpp"
#include "rate_reporter.hpp"
#include "raw_gcrypt_xts.hpp"

namespace ec = ephemeral_crypt;

namespace {

constexpr std::size_t kPage = 8192;
constexpr std::size_t kPages = 256;  // a 2 MiB file, cache resident

void record(benchmark::State& state, const char* /*label*/) {
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * kPage);
}

void tweak_for(std::uint64_t unit, std::uint8_t iv[16]) {
    std::memset(iv, 0, 16);
    std::memcpy(iv, &unit, sizeof(unit));  // little-endian on x86-64, as the format says
}

// Raw OpenSSL EVP on the same 8 KiB buffers. Units=1 is one call per page
// with the tweak set once, which is what `openssl speed` does; Units=2 is the
// format's two 4096-byte data units, the tweak re-set per unit.
template <int Encrypt, int Units>
void BM_RawEvpXts8K(benchmark::State& state) {
    std::uint8_t key[64];
    randombytes_buf(key, sizeof(key));
    EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-XTS", nullptr);
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    std::uint8_t iv[16] = {};
    EVP_CipherInit_ex2(ctx, cipher, key, iv, Encrypt, nullptr);
    std::vector<std::uint8_t> in(kPage, 0x5a), out(kPage);
    constexpr std::size_t unit_bytes = kPage / Units;
    std::uint64_t unit = 0;
    for (auto _ : state) {
        for (std::size_t off = 0; off < kPage; off += unit_bytes) {
            if (Units > 1) {
                tweak_for(unit++, iv);
                EVP_CipherInit_ex2(ctx, nullptr, nullptr, iv, -1, nullptr);
            }
            int n = 0;
            EVP_CipherUpdate(ctx, out.data() + off, &n, in.data() + off,
                             static_cast<int>(unit_bytes));
        }
        benchmark::DoNotOptimize(out.data());
    }
    record(state, "raw");
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(cipher);
}
BENCHMARK(BM_RawEvpXts8K<1, 1>)->Name("BM_RawEvpXtsEncrypt8K_OneUnit");
BENCHMARK(BM_RawEvpXts8K<0, 1>)->Name("BM_RawEvpXtsDecrypt8K_OneUnit");
BENCHMARK(BM_RawEvpXts8K<1, 2>)->Name("BM_RawEvpXtsEncrypt8K");
BENCHMARK(BM_RawEvpXts8K<0, 2>)->Name("BM_RawEvpXtsDecrypt8K");

// Raw libgcrypt, the engine's own cipher, in the format's shape: two 4096-byte
// units per page, the tweak set per unit; out of place, as the engine writes.
template <int Encrypt>
void BM_RawGcryptXts8K(benchmark::State& state) {
    gcry_cipher_hd_t handle = ephemeral_crypt::bench::open_raw_gcrypt_xts();
    if (handle == nullptr) {
        state.SkipWithError("libgcrypt refused AES-256-XTS");
        return;
    }
    std::vector<std::uint8_t> in(kPage, 0x5a), out(kPage);
    std::uint8_t iv[16];
    std::uint64_t unit = 0;
    for (auto _ : state) {
        for (std::size_t off = 0; off < kPage; off += 4096) {
            tweak_for(unit++, iv);
            gcry_cipher_setiv(handle, iv, sizeof(iv));
            if (Encrypt) {
                gcry_cipher_encrypt(handle, out.data() + off, 4096, in.data() + off, 4096);
            } else {
                gcry_cipher_decrypt(handle, out.data() + off, 4096, in.data() + off, 4096);
            }
        }
        benchmark::DoNotOptimize(out.data());
    }
    record(state, "raw");
    gcry_cipher_close(handle);
}
BENCHMARK(BM_RawGcryptXts8K<1>)->Name("BM_RawGcryptXtsEncrypt8K");
BENCHMARK(BM_RawGcryptXts8K<0>)->Name("BM_RawGcryptXtsDecrypt8K");

// Accepts writes and serves reads without copying, so the engine's own CPU
// cost (crypto plus bookkeeping) is measured without a storage copy.
class NullIo : public ec::PositionalIo {
  public:
    std::int64_t read_at(void*, std::size_t len, std::uint64_t offset) noexcept override {
        return offset >= size_
                   ? 0
                   : static_cast<std::int64_t>(std::min<std::uint64_t>(len, size_ - offset));
    }
    std::int64_t write_at(const void*, std::size_t len, std::uint64_t offset) noexcept override {
        size_ = std::max<std::uint64_t>(size_, offset + len);
        return static_cast<std::int64_t>(len);
    }
    std::int64_t size() noexcept override { return static_cast<std::int64_t>(size_); }
    int truncate(std::uint64_t length) noexcept override {
        size_ = length;
        return 0;
    }

  private:
    std::uint64_t size_ = 0;
};

template <class Io, ec::FileCipher Cipher = ec::FileCipher::Aes256Xts>
struct EngineFile {
    std::unique_ptr<ec::InstanceKey> key = ec::InstanceKey::generate();
    Io io;
    std::unique_ptr<ec::EncryptedFile> file;
    EngineFile() {
        file = ec::EncryptedFile::create(io, *key, ec::Category::Spill, Cipher, false).file;
        std::vector<std::uint8_t> page(kPage, 0x5a);
        for (std::size_t i = 0; i < kPages; ++i) {
            file->pwrite(io, page.data(), kPage, i * kPage);
        }
    }
};

// One 8 KiB page written or read per iteration, cycling over the file.
template <class Io, bool Write, ec::FileCipher Cipher = ec::FileCipher::Aes256Xts>
void BM_EnginePage8K(benchmark::State& state) {
    EngineFile<Io, Cipher> f;
    // Reads use a non-zero buffer so the no-copy file's reads are never
    // taken for holes.
    std::vector<std::uint8_t> page(kPage, Write ? 0x5a : 0xa5);
    std::size_t i = 0;
    for (auto _ : state) {
        const std::uint64_t offset = (i++ % kPages) * kPage;
        if constexpr (Write) {
            f.file->pwrite(f.io, page.data(), kPage, offset);
        } else {
            f.file->pread(f.io, page.data(), kPage, offset);
            benchmark::DoNotOptimize(page.data());
        }
    }
    record(state, "engine");
}
BENCHMARK(BM_EnginePage8K<NullIo, true>)->Name("BM_EngineWrite8K");
BENCHMARK(BM_EnginePage8K<ec::testing::MemoryIo, true>)->Name("BM_EngineWrite8K_MemoryFile");
BENCHMARK(BM_EnginePage8K<NullIo, true, ec::FileCipher::Aes256Gcm>)->Name("BM_EngineWrite8K_Gcm");
BENCHMARK(BM_EnginePage8K<ec::testing::MemoryIo, true, ec::FileCipher::Aes256Gcm>)
    ->Name("BM_EngineWrite8K_Gcm_MemoryFile");
BENCHMARK(BM_EnginePage8K<NullIo, false>)->Name("BM_EngineRead8K");
BENCHMARK(BM_EnginePage8K<ec::testing::MemoryIo, false>)->Name("BM_EngineRead8K_MemoryFile");
BENCHMARK(BM_EnginePage8K<ec::testing::MemoryIo, false, ec::FileCipher::Aes256Gcm>)
    ->Name("BM_EngineRead8K_Gcm_MemoryFile");

// The in-memory file's memcpy is part of any file I/O; this measures it
// alone so the engine's own cost can be separated from it.
void BM_MemoryFileCopy8K(benchmark::State& state) {
    ec::testing::MemoryIo io;
    io.bytes.resize(kPages * kPage + 4096);
    std::vector<std::uint8_t> page(kPage, 0x5a);
    std::size_t i = 0;
    for (auto _ : state) {
        io.write_at(page.data(), kPage, (i++ % kPages) * kPage);
    }
    record(state, "copy");
}
BENCHMARK(BM_MemoryFileCopy8K);

// Opening a file, as the layer does for every spill file, temp relation
// segment and WAL segment: CreateFile for a new one (a fresh nonce, the key
// derived, the cipher set up, the header MAC'd and written), OpenFile for an
// existing one (the header read and checked, checksum and MAC, the key
// derived, the cipher set up), KeyAndCipher for the key derivation into
// locked memory and the cipher set-up alone. Each iteration also destroys
// the engine, which wipes its state, as closing the file's last descriptor
// does.
void record_opens(benchmark::State& state) {
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// Whether `outcome` holds a file; if not, the benchmark is marked failed with
// `failure`. The file is destroyed with the outcome, at the end of the
// caller's statement, so each iteration pays for the wipe.
template <class Outcome>
bool opened(benchmark::State& state, const Outcome& outcome, const char* failure) {
    if (!outcome.file) {
        state.SkipWithError(failure);
        return false;
    }
    benchmark::DoNotOptimize(outcome.file.get());
    return true;
}

template <ec::FileCipher Cipher>
void BM_OpenCreateFile(benchmark::State& state) {
    auto key = ec::InstanceKey::generate();
    for (auto _ : state) {
        NullIo io;
        if (!opened(state, ec::EncryptedFile::create(io, *key, ec::Category::Spill, Cipher, false),
                    "creating the file failed")) {
            break;
        }
    }
    record_opens(state);
}
BENCHMARK(BM_OpenCreateFile<ec::FileCipher::Aes256Xts>)->Name("BM_OpenCreateFile");
BENCHMARK(BM_OpenCreateFile<ec::FileCipher::Aes256Gcm>)->Name("BM_OpenCreateFile_Gcm");

template <ec::FileCipher Cipher>
void BM_OpenExistingFile(benchmark::State& state) {
    auto key = ec::InstanceKey::generate();
    ec::testing::MemoryIo io;
    if (!ec::EncryptedFile::create(io, *key, ec::Category::Spill, Cipher, false).file) {
        state.SkipWithError("creating the file failed");
        return;
    }
    for (auto _ : state) {
        if (!opened(state, ec::EncryptedFile::open(io, *key), "opening the file failed")) {
            break;
        }
    }
    record_opens(state);
}
BENCHMARK(BM_OpenExistingFile<ec::FileCipher::Aes256Xts>)->Name("BM_OpenExistingFile");
BENCHMARK(BM_OpenExistingFile<ec::FileCipher::Aes256Gcm>)->Name("BM_OpenExistingFile_Gcm");

void BM_OpenKeyAndCipher(benchmark::State& state) {
    auto key = ec::InstanceKey::generate();
    std::uint8_t nonce[32];
    randombytes_buf(nonce, sizeof(nonce));
    for (auto _ : state) {
        ec::SecureBytes file_key(ec::kFileKeyBytes);
        if (!file_key ||
            !key->derive_file_key(nonce, sizeof(nonce), ec::Category::Spill, file_key.data())) {
            state.SkipWithError("deriving the key failed");
            break;
        }
        ec::XtsCipher cipher(file_key.data());
        benchmark::DoNotOptimize(&cipher);
    }
    record_opens(state);
}
BENCHMARK(BM_OpenKeyAndCipher);

class RatioReporter : public ephemeral_crypt::bench::RateReporter {
  public:
    void ReportRuns(const std::vector<Run>& runs) override {
        RateReporter::ReportRuns(runs);
        for (const Run& run : runs) {
            auto it = run.counters.find("items_per_second");
            const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
            if (it != run.counters.end() && (median || run.run_type == Run::RT_Iteration)) {
                opens_per_second_[run.run_name.str()] = it->second.value;
            }
        }
    }

    // Microseconds per open, or -1 when the benchmark did not run.
    double open_us(const std::string& name) const {
        const auto it = opens_per_second_.find(name);
        return it == opens_per_second_.end() || it->second == 0 ? -1.0 : 1e6 / it->second;
    }

    void Finalize() override {
        ConsoleReporter::Finalize();
        std::printf("\nengine throughput ratio, 8 KiB pages (target >= 0.90 of openssl speed):\n");
        std::printf(
            "  vs raw OpenSSL, one call per page (openssl speed's shape): write %.3f, read %.3f\n",
            ratio("BM_EngineWrite8K", "BM_RawEvpXtsEncrypt8K_OneUnit"),
            ratio("BM_EngineRead8K", "BM_RawEvpXtsDecrypt8K_OneUnit"));
        std::printf(
            "  vs raw OpenSSL, two 4 KiB units per page:            write %.3f, read %.3f\n",
            ratio("BM_EngineWrite8K", "BM_RawEvpXtsEncrypt8K"),
            ratio("BM_EngineRead8K", "BM_RawEvpXtsDecrypt8K"));
        std::printf(
            "  vs raw libgcrypt (the engine's cipher), same shape:  write %.3f, read %.3f\n",
            ratio("BM_EngineWrite8K", "BM_RawGcryptXtsEncrypt8K"),
            ratio("BM_EngineRead8K", "BM_RawGcryptXtsDecrypt8K"));
        std::printf(
            "  including an in-memory file's copy, vs raw OpenSSL one call: write %.3f, read "
            "%.3f\n",
            ratio("BM_EngineWrite8K_MemoryFile", "BM_RawEvpXtsEncrypt8K_OneUnit"),
            ratio("BM_EngineRead8K_MemoryFile", "BM_RawEvpXtsDecrypt8K_OneUnit"));
        std::printf("\nauthenticated format (AES-256-GCM) against XTS, 8 KiB pages:\n");
        std::printf("  no-copy file: write %.3f\n",
                    ratio("BM_EngineWrite8K_Gcm", "BM_EngineWrite8K"));
        std::printf("  in-memory file: write %.3f, read %.3f\n",
                    ratio("BM_EngineWrite8K_Gcm_MemoryFile", "BM_EngineWrite8K_MemoryFile"),
                    ratio("BM_EngineRead8K_Gcm_MemoryFile", "BM_EngineRead8K_MemoryFile"));
        // The same run's raw libgcrypt page is the yardstick: an open costs
        // as much as encrypting this many 8 KiB pages.
        const double page_us = rate("BM_RawGcryptXtsEncrypt8K") > 0
                                   ? 1e6 * kPage / rate("BM_RawGcryptXtsEncrypt8K")
                                   : -1.0;
        std::printf("\ncost of opening a file (medians; in 8 KiB pages of raw libgcrypt XTS):\n");
        const char* const kOpens[][2] = {
            {"BM_OpenCreateFile", "create (nonce, key, cipher, header MAC'd and written)"},
            {"BM_OpenExistingFile", "open an existing file (header checked, key, cipher)"},
            {"BM_OpenKeyAndCipher", "key derivation + cipher set-up alone"},
            {"BM_OpenCreateFile_Gcm", "create, AES-256-GCM (format v2)"},
            {"BM_OpenExistingFile_Gcm", "open an existing file, AES-256-GCM"},
        };
        for (const auto& open : kOpens) {
            const double us = open_us(open[0]);
            std::printf("  %-54s %7.2f us  %6.1f pages\n", open[1], us,
                        us > 0 && page_us > 0 ? us / page_us : -1.0);
        }
        const ec::SecureArenaUsage usage = ec::SecureArena::process().usage();
        std::printf("  locked memory held by the arena at the end: %zu bytes in %zu chunk(s)\n",
                    usage.bytes_locked, usage.chunks);
    }

  private:
    std::map<std::string, double> opens_per_second_;
};

}  // namespace

int main(int argc, char** argv) {
    if (sodium_init() < 0 || gcry_check_version(nullptr) == nullptr) {
        return 1;
    }
    benchmark::Initialize(&argc, argv);
    RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
