// The C++ side of the bridge: owns the instance key and drives the layer.
// This file must not include postgres.h (core/no_postgres.hpp enforces it);
// every entry point is a try/catch fence that turns exceptions into a return
// code and a message for the PostgreSQL side to ereport.
#include "pg/bridge.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "core/file_header.hpp"
#include "core/xts_cipher.hpp"
#include "interpose/got_patcher.hpp"
#include "interpose/layer.hpp"
#include "interpose/real_libc.hpp"
#include "interpose/wrappers.hpp"

namespace ec = ephemeral_crypt;
namespace ip = ephemeral_crypt::interpose;

namespace {

std::unique_ptr<ec::InstanceKey> g_key;
char g_key_id[2 * ec::kKeyIdBytes + 1];
ec_event_callback g_callback = nullptr;

void set_error(char* errbuf, std::size_t errlen, const std::string& message) noexcept {
    if (errbuf != nullptr && errlen > 0) {
        std::snprintf(errbuf, errlen, "%s", message.c_str());
    }
}

ec::Category category_at(int index) noexcept {
    return ec::kAllCategories[index];
}

void forward_event(ip::LayerEvent event, ec::Category category, const char* path,
                   const char* detail) {
    if (g_callback != nullptr) {
        g_callback(static_cast<int>(event), static_cast<int>(ec::category_index(category)), path,
                   detail);
    }
}

// Self-test part 1: the cipher reproduces IEEE 1619 vector 10.
bool known_answers_pass() {
    static const char kKey[] =
        "2718281828459045235360287471352662497757247093699959574966967627"
        "3141592653589793238462643383279502884197169399375105820974944592";
    static const char kFirstBlocks[] =
        "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b";
    std::uint8_t key[ec::kFileKeyBytes];
    for (std::size_t i = 0; i < sizeof(key); ++i) {
        key[i] = static_cast<std::uint8_t>(
            std::strtoul(std::string(kKey + 2 * i, 2).c_str(), nullptr, 16));
    }
    std::uint8_t plain[512], cipher_text[512], back[512];
    for (int i = 0; i < 512; ++i) {
        plain[i] = static_cast<std::uint8_t>(i);
    }
    ec::XtsCipher cipher(key);
    if (!cipher.encrypt_unit(0xff, plain, cipher_text, sizeof(plain)) ||
        !cipher.decrypt_unit(0xff, cipher_text, back, sizeof(back))) {
        return false;
    }
    for (int i = 0; i < 32; ++i) {
        const auto expected = static_cast<std::uint8_t>(
            std::strtoul(std::string(kFirstBlocks + 2 * i, 2).c_str(), nullptr, 16));
        if (cipher_text[i] != expected) {
            return false;
        }
    }
    return std::memcmp(plain, back, sizeof(plain)) == 0;
}

// A path inside an enabled category for the round trip, or empty.
std::string self_test_path() {
    const std::string pid = std::to_string(getpid());
    if (ip::category_enabled(ec::Category::Spill)) {
        mkdir("base/pgsql_tmp", 0700);  // what PostgreSQL would create on first spill
        return "base/pgsql_tmp/pgsql_tmp_ephemeral_crypt_selftest." + pid;
    }
    if (ip::category_enabled(ec::Category::Wal)) {
        return "pg_wal/xlogtemp." + pid;
    }
    if (ip::category_enabled(ec::Category::TempRelation)) {
        return "base/1/t0_" + pid;  // removed by PostgreSQL's startup sweep if we die
    }
    return {};
}

int self_test(char* errbuf, std::size_t errlen) {
    if (!known_answers_pass()) {
        set_error(errbuf, errlen, "AES-256-XTS known-answer test failed");
        return -1;
    }
    const std::string path = self_test_path();
    if (path.empty()) {
        return 0;  // nothing is to be encrypted: only the cipher is checked
    }
    // Go through the server's own GOT slots: this proves the server's calls
    // reach the layer, not merely that the layer works when called directly.
    using OpenFn = int (*)(const char*, int, ...);
    using PwriteFn = ssize_t (*)(int, const void*, size_t, off_t);
    using PreadFn = ssize_t (*)(int, void*, size_t, off_t);
    using CloseFn = int (*)(int);
    auto open_fn = reinterpret_cast<OpenFn>(ip::current_slot_value(nullptr, "open"));
    auto pwrite_fn = reinterpret_cast<PwriteFn>(ip::current_slot_value(nullptr, "pwrite"));
    auto pread_fn = reinterpret_cast<PreadFn>(ip::current_slot_value(nullptr, "pread"));
    auto close_fn = reinterpret_cast<CloseFn>(ip::current_slot_value(nullptr, "close"));
    if (open_fn == nullptr || pwrite_fn == nullptr || pread_fn == nullptr || close_fn == nullptr) {
        set_error(errbuf, errlen, "the server's open/pread/pwrite/close slots were not found");
        return -1;
    }
    const std::string canary = "ephemeral_crypt self-test canary " + std::to_string(getpid());
    int fd = open_fn(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        set_error(errbuf, errlen, "could not create \"" + path + "\": " + std::strerror(errno));
        return -1;
    }
    const bool tracked = ip::fd_is_tracked(fd, nullptr);
    const bool written =
        pwrite_fn(fd, canary.data(), canary.size(), 4000) == static_cast<ssize_t>(canary.size());
    close_fn(fd);

    std::vector<char> raw(ec::kHeaderBytes + 4000 + canary.size() + 1);
    const int raw_fd = ip::real().open(path.c_str(), O_RDONLY);
    const ssize_t raw_len = raw_fd >= 0 ? ip::real().pread(raw_fd, raw.data(), raw.size(), 0) : -1;
    if (raw_fd >= 0) {
        ip::real().close(raw_fd);
    }
    std::string from_layer(canary.size(), '\0');
    fd = open_fn(path.c_str(), O_RDONLY);
    const bool read_back = fd >= 0 && pread_fn(fd, from_layer.data(), from_layer.size(), 4000) ==
                                          static_cast<ssize_t>(canary.size());
    if (fd >= 0) {
        close_fn(fd);
    }
    unlink(path.c_str());

    const std::string on_disk(raw.data(), raw_len > 0 ? static_cast<std::size_t>(raw_len) : 0);
    std::string failure;
    if (!tracked) {
        failure = "the layer did not take the self-test file";
    } else if (!written) {
        failure = "the self-test write failed";
    } else if (on_disk.size() != ec::kHeaderBytes + 4000 + canary.size() ||
               on_disk.compare(0, 8, std::string(ec::kHeaderMagic, 8)) != 0) {
        failure = "the self-test file has no encryption header";
    } else if (on_disk.find(canary) != std::string::npos) {
        failure = "the self-test canary reached the disk in plaintext";
    } else if (!read_back || from_layer != canary) {
        failure = "the self-test canary did not read back through the layer";
    }
    if (!failure.empty()) {
        set_error(errbuf, errlen, failure + " (file \"" + path + "\")");
        return -1;
    }
    return 0;
}

bool is_segment_name(const char* name) {
    std::size_t len = std::strlen(name);
    if (len == 32 && std::strcmp(name + 24, ".partial") == 0) {
        len = 24;
    }
    if (len != 24) {
        return false;
    }
    for (std::size_t i = 0; i < 24; ++i) {
        const char c = name[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

// Rewrites one plaintext segment through the layer into a temporary file and
// renames it over the original, durably.
int encrypt_segment(const std::string& path, char* errbuf, std::size_t errlen) {
    const std::string temp = "pg_wal/xlogtemp.ephemeral_crypt." + std::to_string(getpid());
    const int in = ip::real().open(path.c_str(), O_RDONLY);
    if (in < 0) {
        set_error(errbuf, errlen, "could not open \"" + path + "\": " + std::strerror(errno));
        return -1;
    }
    const int out = ec_open(temp.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (out < 0) {
        ip::real().close(in);
        set_error(errbuf, errlen, "could not create \"" + temp + "\": " + std::strerror(errno));
        return -1;
    }
    std::vector<char> buffer(1 << 20);
    off_t offset = 0;
    int rc = 0;
    for (;;) {
        const ssize_t n = ip::real().pread(in, buffer.data(), buffer.size(), offset);
        if (n < 0) {
            rc = -1;
            break;
        }
        if (n == 0) {
            break;
        }
        if (ec_pwrite(out, buffer.data(), static_cast<size_t>(n), offset) != n) {
            rc = -1;
            break;
        }
        offset += n;
    }
    std::memset(buffer.data(), 0, buffer.size());
    if (rc == 0 && fsync(out) != 0) {
        rc = -1;
    }
    const int saved = errno;
    ip::real().close(in);
    ec_close(out);
    if (rc == 0 && ip::real().rename(temp.c_str(), path.c_str()) != 0) {
        rc = -1;
    }
    if (rc != 0) {
        unlink(temp.c_str());
        set_error(errbuf, errlen,
                  "could not encrypt WAL segment \"" + path + "\": " + std::strerror(saved));
        return -1;
    }
    return 0;
}

}  // namespace

extern "C" {

int ec_bridge_create_key_and_configure(const ec_settings* settings, ec_event_callback callback,
                                       char* errbuf, size_t errlen) {
    try {
        g_key = ec::InstanceKey::generate();
        const std::string id = g_key->id_hex();
        std::snprintf(g_key_id, sizeof(g_key_id), "%s", id.c_str());
        g_callback = callback;
        ip::LayerConfig config;
        config.key = g_key.get();
        for (int i = 0; i < EC_CATEGORY_COUNT; ++i) {
            config.policy[i].enabled = settings->encrypt[i];
            config.policy[i].degradation = settings->degradation[i] == EC_FAIL_OPEN_AUDIT
                                               ? ip::Degradation::FailOpenAudit
                                               : ip::Degradation::FailClosed;
        }
        char resolved[PATH_MAX];
        config.roots.data_dir =
            realpath(settings->data_dir, resolved) != nullptr ? resolved : settings->data_dir;
        const std::string wal_link = config.roots.data_dir + "/pg_wal";
        if (realpath(wal_link.c_str(), resolved) != nullptr && wal_link != resolved) {
            config.roots.wal_dir = resolved;
        }
        config.on_event = forward_event;
        ip::configure(config);
        return 0;
    } catch (const std::exception& e) {
        set_error(errbuf, errlen, e.what());
    } catch (...) {
        set_error(errbuf, errlen, "unknown error while creating the instance key");
    }
    return -1;
}

int ec_bridge_install(bool inject_failure, int* objects_patched, int* slots_patched, char* errbuf,
                      size_t errlen) {
    if (inject_failure) {
        set_error(errbuf, errlen, "fault injected by ephemeral_crypt.test_fault = install_layer");
        return -1;
    }
    try {
        const ip::InstallReport report = ip::install();
        *objects_patched = report.objects_patched;
        *slots_patched = report.slots_patched;
        if (!report.ok) {
            set_error(errbuf, errlen, report.error);
            return -1;
        }
        return 0;
    } catch (const std::exception& e) {
        set_error(errbuf, errlen, e.what());
    } catch (...) {
        set_error(errbuf, errlen, "unknown error while installing the file-access layer");
    }
    return -1;
}

int ec_bridge_self_test(char* errbuf, size_t errlen) {
    try {
        return self_test(errbuf, errlen);
    } catch (const std::exception& e) {
        set_error(errbuf, errlen, e.what());
    } catch (...) {
        set_error(errbuf, errlen, "unknown error in the self-test");
    }
    return -1;
}

int ec_bridge_encrypt_plaintext_wal(int* converted, char* errbuf, size_t errlen) {
    *converted = 0;
    try {
        DIR* dir = opendir("pg_wal");
        if (dir == nullptr) {
            set_error(errbuf, errlen,
                      std::string("could not open pg_wal: ") + std::strerror(errno));
            return -1;
        }
        std::vector<std::string> plaintext;
        while (const struct dirent* entry = readdir(dir)) {
            if (!is_segment_name(entry->d_name)) {
                continue;
            }
            const std::string path = std::string("pg_wal/") + entry->d_name;
            const int fd = ip::real().open(path.c_str(), O_RDONLY);
            if (fd < 0) {
                continue;
            }
            char magic[sizeof(ec::kHeaderMagic)];
            const ssize_t n = ip::real().pread(fd, magic, sizeof(magic), 0);
            ip::real().close(fd);
            if (n != static_cast<ssize_t>(sizeof(magic)) ||
                std::memcmp(magic, ec::kHeaderMagic, sizeof(magic)) != 0) {
                plaintext.push_back(path);
            }
        }
        closedir(dir);
        for (const std::string& path : plaintext) {
            if (encrypt_segment(path, errbuf, errlen) != 0) {
                return -1;
            }
            ++*converted;
        }
        if (*converted > 0) {
            const int dirfd = ip::real().open("pg_wal", O_RDONLY | O_DIRECTORY);
            if (dirfd >= 0) {
                fsync(dirfd);
                ip::real().close(dirfd);
            }
        }
        return 0;
    } catch (const std::exception& e) {
        set_error(errbuf, errlen, e.what());
    } catch (...) {
        set_error(errbuf, errlen, "unknown error while encrypting plaintext WAL");
    }
    return -1;
}

void ec_bridge_inject_category_fault(int category) {
    if (category >= 0 && category < EC_CATEGORY_COUNT) {
        ip::set_fault(category_at(category), true);
    }
}

const char* ec_bridge_key_id(void) {
    return g_key_id;
}

int64_t ec_bridge_key_created_at_unix_ms(void) {
    if (!g_key) {
        return 0;
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               g_key->created_at().time_since_epoch())
        .count();
}

const char* ec_bridge_category_name(int category) {
    if (category < 0 || category >= EC_CATEGORY_COUNT) {
        return "unknown";
    }
    return ec::category_name(category_at(category)).data();
}

const char* ec_bridge_cipher_name(void) {
    return "AES-256-XTS";
}

size_t ec_bridge_counters_size(void) {
    return sizeof(ec::Counters);
}

void ec_bridge_attach_counters(void* shared, bool initialize, bool merge_local) {
    auto* counters = static_cast<ec::Counters*>(shared);
    if (initialize) {
        new (counters) ec::Counters();
    }
    ip::attach_counters(counters, merge_local);
}

void ec_bridge_read_counters(int category, ec_counter_values* out) {
    const ec::CategoryCounters& c = ip::counters().category[category];
    out->files_encrypted = c.files_encrypted.load(std::memory_order_relaxed);
    out->files_open = c.files_open.load(std::memory_order_relaxed);
    out->bytes_encrypted = c.bytes_encrypted.load(std::memory_order_relaxed);
    out->bytes_decrypted = c.bytes_decrypted.load(std::memory_order_relaxed);
    out->failures = c.failures.load(std::memory_order_relaxed);
    out->plaintext_fallbacks = c.plaintext_fallbacks.load(std::memory_order_relaxed);
}

}  // extern "C"
