// The libc layer on a real file: aligned 8 KiB pwrite/pread through the
// wrappers the GOT patcher installs (ec_pwrite/ec_pread, called directly, no
// patching) on an encrypted spill file, against plain ::pwrite/::pread on an
// ordinary file in the same directory. Two places: a tmpfs (/dev/shm) and the
// page cache of the disk under /tmp (EC_LAYER_BENCH_DISK_DIR overrides it).
// The files are small enough to stay cached, so this measures the layer's
// CPU cost (lookup, header offset, XTS, copies) over the kernel's copy.
// A third variant passes an ordinary file through the wrapper: the cost of
// the table lookup alone; a fourth writes and reads the spill file in
// AES-256-GCM (format v2: the cipher, and one more system call per call for
// the units' entries). Run: build/layer_bench; ratios are printed at the end.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "interpose/layer.hpp"
#include "interpose/wrappers.hpp"
#include "rate_reporter.hpp"

namespace ec = ephemeral_crypt;
namespace ip = ephemeral_crypt::interpose;

namespace {

constexpr std::size_t kPage = 8192;
constexpr std::size_t kPages = 1024;  // an 8 MiB file

const char* const kPlaceNames[] = {"tmpfs", "pagecache"};
std::string g_data_dir[2];
ec::InstanceKey* g_key = nullptr;

std::string make_data_dir(const char* parent) {
    std::string tmpl = std::string(parent) + "/ec-layer-bench-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) {
        std::perror(tmpl.c_str());
        std::exit(1);
    }
    std::string dir(buf.data());
    mkdir((dir + "/base").c_str(), 0700);
    mkdir((dir + "/base/pgsql_tmp").c_str(), 0700);
    mkdir((dir + "/base/5").c_str(), 0700);
    return dir;
}

void configure_layer(const std::string& data_dir, ec::FileCipher spill_cipher) {
    ip::LayerConfig config;
    config.key = g_key;
    config.roots.data_dir = data_dir;
    config.policy[ec::category_index(ec::Category::TempRelation)].enabled = true;
    config.policy[ec::category_index(ec::Category::Spill)].enabled = true;
    config.policy[ec::category_index(ec::Category::Spill)].cipher = spill_cipher;
    config.policy[ec::category_index(ec::Category::Wal)].enabled = true;
    ip::configure(config);
}

enum class Path { Libc, Layer, LayerPassthrough, LayerGcm };

// Opens a fresh file of kPages pages for one benchmark and closes/unlinks it.
struct BenchFile {
    int fd = -1;
    std::string path;
    Path how;
    BenchFile(int place, Path how_) : how(how_) {
        static int serial = 0;
        const std::string& dd = g_data_dir[place];
        const bool spill = how == Path::Layer || how == Path::LayerGcm;
        configure_layer(
            dd, how == Path::LayerGcm ? ec::FileCipher::Aes256Gcm : ec::FileCipher::Aes256Xts);
        // Spill files are encrypted; base/5/<n> is an ordinary relation file
        // the layer passes straight through.
        path = spill ? dd + "/base/pgsql_tmp/pgsql_tmp" + std::to_string(getpid()) + "." +
                           std::to_string(++serial)
                     : dd + "/base/5/" + std::to_string(16384 + ++serial);
        fd = how == Path::Libc ? ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600)
                               : ec_open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (fd < 0) {
            std::perror(path.c_str());
            std::exit(1);
        }
        bool tracked = ip::fd_is_tracked(fd, nullptr);
        if (tracked != spill) {
            std::fprintf(stderr, "%s: tracked=%d, expected %d\n", path.c_str(), tracked, spill);
            std::exit(1);
        }
        std::vector<std::uint8_t> page(kPage, 0x5a);
        for (std::size_t i = 0; i < kPages; ++i) {
            if (write_page(page.data(), i) != static_cast<ssize_t>(kPage)) {
                std::perror("fill");
                std::exit(1);
            }
        }
    }
    ~BenchFile() {
        if (how == Path::Libc) {
            ::close(fd);
        } else {
            ec_close(fd);
        }
        ::unlink(path.c_str());
    }
    ssize_t write_page(const void* buf, std::size_t i) const {
        const off_t off = static_cast<off_t>(i * kPage);
        return how == Path::Libc ? ::pwrite(fd, buf, kPage, off) : ec_pwrite(fd, buf, kPage, off);
    }
    ssize_t read_page(void* buf, std::size_t i) const {
        const off_t off = static_cast<off_t>(i * kPage);
        return how == Path::Libc ? ::pread(fd, buf, kPage, off) : ec_pread(fd, buf, kPage, off);
    }
};

template <Path How>
void BM_Pwrite8K(benchmark::State& state) {
    BenchFile f(static_cast<int>(state.range(0)), How);
    std::vector<std::uint8_t> page(kPage, 0x5a);
    std::size_t i = 0;
    for (auto _ : state) {
        if (f.write_page(page.data(), i++ % kPages) != static_cast<ssize_t>(kPage)) {
            state.SkipWithError("pwrite failed");
            break;
        }
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * kPage);
    state.SetLabel(kPlaceNames[state.range(0)]);
}

template <Path How>
void BM_Pread8K(benchmark::State& state) {
    BenchFile f(static_cast<int>(state.range(0)), How);
    std::vector<std::uint8_t> page(kPage);
    std::size_t i = 0;
    for (auto _ : state) {
        if (f.read_page(page.data(), i++ % kPages) != static_cast<ssize_t>(kPage)) {
            state.SkipWithError("pread failed");
            break;
        }
        benchmark::DoNotOptimize(page.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * kPage);
    state.SetLabel(kPlaceNames[state.range(0)]);
}

BENCHMARK(BM_Pwrite8K<Path::Libc>)->Name("BM_LibcPwrite8K")->Arg(0)->Arg(1);
BENCHMARK(BM_Pwrite8K<Path::Layer>)->Name("BM_LayerPwrite8K")->Arg(0)->Arg(1);
BENCHMARK(BM_Pwrite8K<Path::LayerPassthrough>)->Name("BM_PassthroughPwrite8K")->Arg(0)->Arg(1);
BENCHMARK(BM_Pwrite8K<Path::LayerGcm>)->Name("BM_LayerGcmPwrite8K")->Arg(0)->Arg(1);
BENCHMARK(BM_Pread8K<Path::Libc>)->Name("BM_LibcPread8K")->Arg(0)->Arg(1);
BENCHMARK(BM_Pread8K<Path::Layer>)->Name("BM_LayerPread8K")->Arg(0)->Arg(1);
BENCHMARK(BM_Pread8K<Path::LayerPassthrough>)->Name("BM_PassthroughPread8K")->Arg(0)->Arg(1);
BENCHMARK(BM_Pread8K<Path::LayerGcm>)->Name("BM_LayerGcmPread8K")->Arg(0)->Arg(1);

class RatioReporter : public ephemeral_crypt::bench::RateReporter {
  public:
    void Finalize() override {
        ConsoleReporter::Finalize();
        std::printf("\nlayer/libc throughput ratio, aligned 8 KiB (encrypted spill file):\n");
        for (int place = 0; place < 2; ++place) {
            const std::string arg = "/" + std::to_string(place);
            std::printf(
                "  %-9s write: %.3f  read: %.3f   (pass-through file: write %.3f, read "
                "%.3f)\n",
                kPlaceNames[place], ratio("BM_LayerPwrite8K" + arg, "BM_LibcPwrite8K" + arg),
                ratio("BM_LayerPread8K" + arg, "BM_LibcPread8K" + arg),
                ratio("BM_PassthroughPwrite8K" + arg, "BM_LibcPwrite8K" + arg),
                ratio("BM_PassthroughPread8K" + arg, "BM_LibcPread8K" + arg));
            std::printf("  %-9s GCM write: %.3f  GCM read: %.3f\n", kPlaceNames[place],
                        ratio("BM_LayerGcmPwrite8K" + arg, "BM_LibcPwrite8K" + arg),
                        ratio("BM_LayerGcmPread8K" + arg, "BM_LibcPread8K" + arg));
        }
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (sodium_init() < 0) {
        return 1;
    }
    g_key = ec::InstanceKey::generate().release();
    g_data_dir[0] = make_data_dir("/dev/shm");
    const char* disk = std::getenv("EC_LAYER_BENCH_DISK_DIR");
    g_data_dir[1] = make_data_dir(disk != nullptr && *disk != '\0' ? disk : "/tmp");
    benchmark::Initialize(&argc, argv);
    RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    for (const std::string& dir : g_data_dir) {
        const std::string cmd = "rm -rf '" + dir + "'";
        (void)std::system(cmd.c_str());
    }
    return 0;
}
