// The libc layer under concurrency: 1, 2, 4 and 8 processes at once, each
// writing 8 KiB pages through ec_pwrite to its own encrypted spill file on a
// tmpfs, as backends and parallel workers do, with the counters in a block
// of shared memory as the server has them. Each process's throughput is its
// bytes over its own CPU time (utime + stime), so that a machine with fewer
// cores than processes, which time-slices them, still shows what each write
// costs; wall-clock throughput is printed beside it. The same runs with
// plain pwrite on ordinary files give the reference at each concurrency.
//
// Two counter layouts are measured: a slot per process (what the layer
// does), and every process counting into one shared block with atomic adds
// (what it did before, and what the layer still does beyond its slots).
//
//   build/concurrency_bench [seconds per run, default 2]
//
// Prints one line per layout and concurrency, then the ratios the targets
// use; with --csv, machine-readable lines for bench/run.sh.
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/counters.hpp"
#include "core/enum_names.hpp"
#include "core/instance_key.hpp"
#include "interpose/layer.hpp"
#include "interpose/wrappers.hpp"

namespace ec = ephemeral_crypt;
namespace ip = ephemeral_crypt::interpose;

namespace {

constexpr std::size_t kPage = 8192;
constexpr std::size_t kFilePages = 2048;  // 16 MiB per process, rewritten in a loop
constexpr int kConcurrency[] = {1, 2, 4, 8};

enum class Mode { Libc, LayerSlots, LayerShared };
// In the order the report prints them; the csv rows number them in it.
constexpr ec::EnumName<Mode> kModes[] = {{Mode::Libc, "libc pwrite"},
                                         {Mode::LayerSlots, "layer, a slot per process"},
                                         {Mode::LayerShared, "layer, one shared block"}};

struct Result {
    double bytes = 0;
    double cpu_seconds = 0;
    double wall_seconds = 0;
};

double cpu_seconds_now() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
           (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// One process's run: writes pages until `seconds` have passed.
Result write_for(Mode mode, const std::string& path, double seconds) {
    const int fd = mode == Mode::Libc ? ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600)
                                      : ec_open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        std::perror(path.c_str());
        _exit(3);
    }
    std::vector<unsigned char> page(kPage);
    for (std::size_t i = 0; i < kPage; ++i) {
        page[i] = static_cast<unsigned char>(i * 131 + getpid());
    }
    Result result;
    const double cpu0 = cpu_seconds_now();
    const auto wall0 = std::chrono::steady_clock::now();
    std::size_t n = 0;
    for (;;) {
        const off_t offset = static_cast<off_t>((n % kFilePages) * kPage);
        const ssize_t written = mode == Mode::Libc ? ::pwrite(fd, page.data(), kPage, offset)
                                                   : ec_pwrite(fd, page.data(), kPage, offset);
        if (written != static_cast<ssize_t>(kPage)) {
            std::perror("pwrite");
            _exit(4);
        }
        page[n % kPage] ^= 1;  // no two pages alike
        ++n;
        if ((n & 63) == 0) {
            const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - wall0;
            if (wall.count() >= seconds) {
                result.wall_seconds = wall.count();
                break;
            }
        }
    }
    result.cpu_seconds = cpu_seconds_now() - cpu0;
    result.bytes = static_cast<double>(n) * kPage;
    if (mode == Mode::Libc) {
        ::close(fd);
    } else {
        ec_close(fd);
    }
    unlink(path.c_str());
    return result;
}

// Runs `processes` writers at once; returns the mean per-process result.
Result run(Mode mode, int processes, const std::string& dir, double seconds) {
    auto* results =
        static_cast<Result*>(mmap(nullptr, sizeof(Result) * processes, PROT_READ | PROT_WRITE,
                                  MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    // A slot per process, or none: then every process counts into the total.
    const std::size_t slots = mode == Mode::LayerShared ? 0 : 16;
    const std::size_t bytes = ec::SharedCounters::bytes_for(slots);
    void* block = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ip::attach_counters(ec::SharedCounters::create(block, slots), false);

    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) {
        std::perror("pipe");
        std::exit(1);
    }
    std::vector<pid_t> children;
    for (int i = 0; i < processes; ++i) {
        const pid_t pid = fork();
        if (pid == 0) {
            char go;
            ::close(pipe_fds[1]);
            if (::read(pipe_fds[0], &go, 1) != 0) {  // released together when the pipe closes
                _exit(5);
            }
            const std::string path =
                mode == Mode::Libc
                    ? dir + "/base/5/" + std::to_string(16384 + i)
                    : dir + "/base/pgsql_tmp/pgsql_tmp" + std::to_string(getpid()) + ".0";
            results[i] = write_for(mode, path, seconds);
            _exit(0);
        }
        children.push_back(pid);
    }
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    Result mean;
    for (int i = 0; i < processes; ++i) {
        int status = 0;
        waitpid(children[i], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            std::fprintf(stderr, "writer %d failed (status %d)\n", i, status);
            std::exit(1);
        }
        mean.bytes += results[i].bytes / processes;
        mean.cpu_seconds += results[i].cpu_seconds / processes;
        mean.wall_seconds += results[i].wall_seconds / processes;
    }
    ip::detach_counters();
    munmap(block, bytes);
    munmap(results, sizeof(Result) * processes);
    return mean;
}

}  // namespace

int main(int argc, char** argv) {
    bool csv = false;
    double seconds = 2.0;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--csv") == 0) {
            csv = true;
        } else {
            seconds = std::atof(argv[i]);
        }
    }
    if (seconds <= 0) {
        std::fprintf(stderr, "usage: concurrency_bench [--csv] [seconds per run]\n");
        return 2;
    }
    char tmpl[] = "/dev/shm/ec-concurrency-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
        std::perror("mkdtemp");
        return 1;
    }
    const std::string dir = tmpl;
    mkdir((dir + "/base").c_str(), 0700);
    mkdir((dir + "/base/pgsql_tmp").c_str(), 0700);
    mkdir((dir + "/base/5").c_str(), 0700);

    std::unique_ptr<ec::InstanceKey> key = ec::InstanceKey::generate();
    ip::LayerConfig config;
    config.key = key.get();
    config.roots.data_dir = dir;
    config.policy[ec::category_index(ec::Category::Spill)].enabled = true;
    ip::configure(config);

    double per_cpu[3][4] = {};
    std::printf("%-28s %9s %18s %18s\n", "writers", "processes", "MB/s per CPU-second",
                "MB/s per process");
    for (int m = 0; m < 3; ++m) {
        for (int c = 0; c < 4; ++c) {
            const Result r = run(kModes[m].value, kConcurrency[c], dir, seconds);
            per_cpu[m][c] = r.bytes / r.cpu_seconds / 1e6;
            const double per_wall = r.bytes / r.wall_seconds / 1e6;
            std::printf("%-28s %9d %18.0f %18.0f\n", std::string(kModes[m].name).c_str(),
                        kConcurrency[c], per_cpu[m][c], per_wall);
            if (csv) {
                std::printf("csv,%d,%d,%.0f,%.0f\n", m, kConcurrency[c], per_cpu[m][c], per_wall);
            }
        }
    }
    std::printf(
        "\nper-process throughput (per CPU-second), layer against libc at the same concurrency:\n");
    for (int c = 0; c < 4; ++c) {
        std::printf("  %d process(es): slots %.3f, shared block %.3f\n", kConcurrency[c],
                    per_cpu[1][c] / per_cpu[0][c], per_cpu[2][c] / per_cpu[0][c]);
    }
    std::printf(
        "per-process throughput at 8 processes against 1: slots %.3f, shared block %.3f, libc "
        "%.3f\n",
        per_cpu[1][3] / per_cpu[1][0], per_cpu[2][3] / per_cpu[2][0],
        per_cpu[0][3] / per_cpu[0][0]);
    rmdir((dir + "/base/pgsql_tmp").c_str());
    rmdir((dir + "/base/5").c_str());
    rmdir((dir + "/base").c_str());
    rmdir(dir.c_str());
    return 0;
}
