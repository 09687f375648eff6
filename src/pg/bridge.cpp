// The C++ side of the bridge: owns the instance key and drives the layer.
// This file must not include postgres.h (core/no_postgres.hpp enforces it);
// every entry point is a try/catch fence that turns exceptions into a return
// code and a message for the PostgreSQL side to ereport.
#include "pg/bridge.hpp"

#include <openssl/sha.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "core/file_header.hpp"
#include "core/policy.hpp"
#include "core/xts_cipher.hpp"
#include "interpose/got_patcher.hpp"
#include "interpose/path_classifier.hpp"
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

// The one place where C++ exceptions stop: every entry point that can fail
// runs its body through this, so nothing is ever thrown into PostgreSQL's C
// frames. The PostgreSQL side turns the -1 and the message into an ereport.
template <class Body>
int fenced(char* errbuf, std::size_t errlen, Body&& body) noexcept {
    try {
        return body();
    } catch (const std::exception& e) {
        set_error(errbuf, errlen, e.what());
    } catch (...) {
        set_error(errbuf, errlen, "unexpected C++ exception");
    }
    return -1;
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

void fsync_path(const char* path, int flags) {
    const int fd = ip::real().open(path, flags);
    if (fd >= 0) {
        fsync(fd);
        ip::real().close(fd);
    }
}

enum class SegmentKind { Plaintext, Current, Foreign };

struct WalSegment {
    std::string path;
    SegmentKind kind;
    std::string key_id;  // set for Foreign segments whose header names a key
};

// The WAL segments in pg_wal, classified by their first bytes: no header
// (plaintext), this instance's header, or another instance's. The one place
// start-up reads segment headers; false if pg_wal cannot be listed.
bool list_wal_segments(std::vector<WalSegment>* segments) {
    DIR* dir = opendir("pg_wal");
    if (dir == nullptr) {
        return false;
    }
    while (const struct dirent* entry = readdir(dir)) {
        if (!is_segment_name(entry->d_name)) {
            continue;
        }
        WalSegment segment{std::string("pg_wal/") + entry->d_name, SegmentKind::Plaintext, {}};
        const int fd = ip::real().open(segment.path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            continue;
        }
        std::uint8_t header[ec::kHeaderBytes];
        const ssize_t n = ip::real().pread(fd, header, sizeof(header), 0);
        ip::real().close(fd);
        if (n >= static_cast<ssize_t>(sizeof(ec::kHeaderMagic)) &&
            std::memcmp(header, ec::kHeaderMagic, sizeof(ec::kHeaderMagic)) == 0) {
            const ec::DecodedHeader decoded =
                ec::decode_header(header, static_cast<std::size_t>(n), g_key.get());
            segment.kind = decoded.status == ec::HeaderStatus::Ok ? SegmentKind::Current
                                                                  : SegmentKind::Foreign;
            if (decoded.status == ec::HeaderStatus::ForeignInstance) {
                segment.key_id = ec::key_id_to_hex(decoded.header.key_id);
            }
        }
        segments->push_back(std::move(segment));
    }
    closedir(dir);
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

// --- file inspection for ephemeral_crypt_file_status() and _scan() --------

std::vector<ec_file_report> g_scan_results;

std::string data_dir_root() {
    return ip::config().roots.data_dir;
}

// Real paths of the tablespace directories; file_status may be asked about
// files below them, and nothing else outside the data directory.
std::vector<std::string> tablespace_roots() {
    std::vector<std::string> roots;
    const std::string base = data_dir_root() + "/pg_tblspc";
    if (DIR* dir = opendir(base.c_str())) {
        while (const struct dirent* entry = readdir(dir)) {
            if (entry->d_name[0] == '.') {
                continue;
            }
            char resolved[PATH_MAX];
            const std::string link = base + "/" + entry->d_name;
            if (realpath(link.c_str(), resolved) != nullptr) {
                roots.emplace_back(resolved);
            }
        }
        closedir(dir);
    }
    return roots;
}

bool is_below(const std::string& path, const std::string& root) {
    return path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
           path[root.size()] == '/';
}

void fill_report(const std::string& display_path, const std::string& full_path,
                 ec_file_report* out) {
    std::memset(out, 0, sizeof(*out));
    std::snprintf(out->path, sizeof(out->path), "%s", display_path.c_str());
    const auto category = ip::classify_path(full_path, ip::config().roots);
    out->category = category ? static_cast<int>(ec::category_index(*category)) : -1;
    struct stat st {};
    if (ip::real().stat(full_path.c_str(), &st) == 0) {
        out->physical_size = st.st_size;
        out->logical_size = st.st_size;
    }
    std::uint8_t header[ec::kHeaderBytes];
    ssize_t n = -1;
    const int fd = ip::real().open(full_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = ip::real().pread(fd, header, sizeof(header), 0);
        ip::real().close(fd);
    }
    if (n <= 0) {
        std::snprintf(out->header_status, sizeof(out->header_status), "%s",
                      n == 0 ? "empty" : "unreadable");
        return;
    }
    const ec::DecodedHeader decoded =
        ec::decode_header(header, static_cast<std::size_t>(n), g_key.get());
    std::snprintf(out->header_status, sizeof(out->header_status), "%s",
                  ec::header_status_name(decoded.status).data());
    out->has_header = decoded.status != ec::HeaderStatus::NotOurs;
    if (decoded.status == ec::HeaderStatus::Ok ||
        decoded.status == ec::HeaderStatus::ForeignInstance) {
        std::snprintf(out->key_id, sizeof(out->key_id), "%s",
                      ec::key_id_to_hex(decoded.header.key_id).c_str());
    }
    out->current_instance = decoded.status == ec::HeaderStatus::Ok;
    out->plaintext_audit =
        decoded.status == ec::HeaderStatus::Ok && decoded.header.plaintext_audit();
    out->encrypted = out->has_header && !out->plaintext_audit &&
                     decoded.status != ec::HeaderStatus::Corrupt &&
                     decoded.status != ec::HeaderStatus::Truncated;
    if (out->has_header && decoded.status != ec::HeaderStatus::Truncated) {
        out->logical_size = out->physical_size > static_cast<int64_t>(ec::kHeaderBytes)
                                ? out->physical_size - static_cast<int64_t>(ec::kHeaderBytes)
                                : 0;
    }
}

void scan_directory(const std::string& full, const std::string& display, int depth) {
    if (depth > 8) {
        return;
    }
    DIR* dir = opendir(full.c_str());
    if (dir == nullptr) {
        return;
    }
    std::vector<std::pair<std::string, bool>> entries;
    while (const struct dirent* entry = readdir(dir)) {
        const std::string name = entry->d_name;
        if (name == "." || name == "..") {
            continue;
        }
        entries.emplace_back(name, entry->d_type == DT_DIR || entry->d_type == DT_LNK);
    }
    closedir(dir);
    std::sort(entries.begin(), entries.end());
    for (const auto& [name, maybe_dir] : entries) {
        const std::string child_full = full + "/" + name;
        const std::string child_display = display.empty() ? name : display + "/" + name;
        struct stat st {};
        if (ip::real().stat(child_full.c_str(), &st) != 0) {
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            scan_directory(child_full, child_display, depth + 1);
        } else if (S_ISREG(st.st_mode) && ip::classify_path(child_display, ip::config().roots)) {
            ec_file_report report;
            fill_report(child_display, child_full, &report);
            g_scan_results.push_back(report);
        }
        (void)maybe_dir;
    }
}

}  // namespace

extern "C" {

int ec_bridge_inspect_file(const char* path, ec_file_report* out, char* errbuf, size_t errlen) {
    try {
        const std::string requested = path != nullptr ? path : "";
        if (requested.empty()) {
            set_error(errbuf, errlen, "the path is empty");
            return EC_PATH_EMPTY;
        }
        // Refuse any ".." component outright rather than reason about where it leads.
        std::size_t start = 0;
        while (start <= requested.size()) {
            const std::size_t slash = requested.find('/', start);
            const std::string part = requested.substr(
                start, slash == std::string::npos ? std::string::npos : slash - start);
            if (part == "..") {
                set_error(errbuf, errlen, "the path contains \"..\"");
                return EC_PATH_TRAVERSAL;
            }
            if (slash == std::string::npos) {
                break;
            }
            start = slash + 1;
        }
        const std::string data_dir = data_dir_root();
        const std::string full = requested[0] == '/' ? requested : data_dir + "/" + requested;
        char resolved_buffer[PATH_MAX];
        if (realpath(full.c_str(), resolved_buffer) == nullptr) {
            if (errno == ENOENT || errno == ENOTDIR) {
                set_error(errbuf, errlen, "no such file");
                return EC_PATH_MISSING;
            }
            set_error(errbuf, errlen, std::strerror(errno));
            return EC_PATH_UNREADABLE;
        }
        const std::string resolved = resolved_buffer;
        bool inside = is_below(resolved, data_dir);
        for (const std::string& root : tablespace_roots()) {
            inside = inside || is_below(resolved, root);
        }
        if (!inside) {
            set_error(errbuf, errlen,
                      requested[0] == '/'
                          ? "the path is outside the data directory and its tablespaces"
                          : "the path leads outside the data directory and its tablespaces "
                            "(symbolic link)");
            return EC_PATH_OUTSIDE;
        }
        struct stat st {};
        if (ip::real().stat(resolved.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
            set_error(errbuf, errlen, "not a regular file");
            return EC_PATH_NOT_REGULAR;
        }
        // Classify by the path the server itself would use.
        const std::string display =
            is_below(full, data_dir) ? full.substr(data_dir.size() + 1) : full;
        fill_report(display, full, out);
        return EC_PATH_OK;
    } catch (const std::exception& e) {
        set_error(errbuf, errlen, e.what());
    } catch (...) {
        set_error(errbuf, errlen, "unknown error");
    }
    return EC_PATH_UNREADABLE;
}

int ec_bridge_scan(void) {
    try {
        g_scan_results.clear();
        const std::string data_dir = data_dir_root();
        for (const char* top : {"base", "pg_wal", "pg_replslot", "pg_tblspc"}) {
            scan_directory(data_dir + "/" + top, top, 0);
        }
        return static_cast<int>(g_scan_results.size());
    } catch (...) {
        g_scan_results.clear();
        return -1;
    }
}

bool ec_bridge_scan_result(int index, ec_file_report* out) {
    if (index < 0 || static_cast<std::size_t>(index) >= g_scan_results.size()) {
        return false;
    }
    *out = g_scan_results[static_cast<std::size_t>(index)];
    return true;
}

int ec_bridge_create_key_and_configure(const ec_settings* settings, ec_event_callback callback,
                                       char* errbuf, size_t errlen) {
    return fenced(errbuf, errlen, [&]() -> int {
        g_key = ec::InstanceKey::generate();
        const std::string id = g_key->id_hex();
        std::snprintf(g_key_id, sizeof(g_key_id), "%s", id.c_str());
        g_callback = callback;
        ip::LayerConfig config;
        config.key = g_key.get();
        for (int i = 0; i < EC_CATEGORY_COUNT; ++i) {
            config.policy[i].enabled = settings->encrypt[i];
            config.policy[i].degradation = settings->degradation[i] == EC_FAIL_OPEN_AUDIT
                                               ? ec::Degradation::FailOpenAudit
                                               : ec::Degradation::FailClosed;
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
    });
}

int ec_bridge_install(bool inject_failure, int* objects_patched, int* slots_patched, char* errbuf,
                      size_t errlen) {
    if (inject_failure) {
        set_error(errbuf, errlen, "fault injected by ephemeral_crypt.test_fault = install_layer");
        return -1;
    }
    return fenced(errbuf, errlen, [&]() -> int {
        const ip::InstallReport report = ip::install();
        *objects_patched = report.objects_patched;
        *slots_patched = report.slots_patched;
        if (!report.ok) {
            set_error(errbuf, errlen, report.error);
            return -1;
        }
        return 0;
    });
}

int ec_bridge_self_test(char* errbuf, size_t errlen) {
    return fenced(errbuf, errlen, [&]() -> int { return self_test(errbuf, errlen); });
}

int ec_bridge_encrypt_plaintext_wal(int* converted, char* errbuf, size_t errlen) {
    *converted = 0;
    return fenced(errbuf, errlen, [&]() -> int {
        std::vector<WalSegment> segments;
        if (!list_wal_segments(&segments)) {
            set_error(errbuf, errlen,
                      std::string("could not open pg_wal: ") + std::strerror(errno));
            return -1;
        }
        for (const WalSegment& segment : segments) {
            if (segment.kind != SegmentKind::Plaintext) {
                continue;
            }
            if (encrypt_segment(segment.path, errbuf, errlen) != 0) {
                return -1;
            }
            ++*converted;
        }
        if (*converted > 0) {
            fsync_path("pg_wal", O_RDONLY | O_DIRECTORY);
        }
        return 0;
    });
}

static ec::Policy to_core_policy(const ec_policy* policy) {
    ec::Policy core;
    core.version = policy->version;
    for (int i = 0; i < EC_CATEGORY_COUNT; ++i) {
        core.category[i].enabled = policy->encrypt[i];
        core.category[i].degradation = policy->degradation[i] == EC_FAIL_OPEN_AUDIT
                                           ? ec::Degradation::FailOpenAudit
                                           : ec::Degradation::FailClosed;
    }
    return core;
}

int ec_bridge_load_policy_file(const char* path, const char* public_key, ec_policy* policy,
                               char* errbuf, size_t errlen) {
    try {
        const ec::PolicyFileResult result =
            ec::load_policy_file(path, public_key != nullptr ? public_key : "");
        const bool parsed = result.status == ec::PolicyFileStatus::Ok ||
                            result.status == ec::PolicyFileStatus::Unsigned ||
                            result.status == ec::PolicyFileStatus::BadSignature;
        if (parsed) {
            std::snprintf(policy->version, sizeof(policy->version), "%s",
                          result.policy.version.c_str());
            for (int i = 0; i < EC_CATEGORY_COUNT; ++i) {
                policy->encrypt[i] = result.policy.category[i].enabled;
                policy->degradation[i] =
                    result.policy.category[i].degradation == ec::Degradation::FailOpenAudit
                        ? EC_FAIL_OPEN_AUDIT
                        : EC_FAIL_CLOSED;
            }
        }
        set_error(errbuf, errlen, result.error);
        switch (result.status) {
            case ec::PolicyFileStatus::Ok:
                return EC_POLICY_OK;
            case ec::PolicyFileStatus::Missing:
                return EC_POLICY_MISSING;
            case ec::PolicyFileStatus::Unreadable:
                return EC_POLICY_UNREADABLE;
            case ec::PolicyFileStatus::Malformed:
                return EC_POLICY_MALFORMED;
            case ec::PolicyFileStatus::Unsigned:
                return EC_POLICY_UNSIGNED;
            case ec::PolicyFileStatus::BadSignature:
                return EC_POLICY_BAD_SIGNATURE;
        }
    } catch (...) {
        set_error(errbuf, errlen, "out of memory while reading the policy file");
    }
    return EC_POLICY_UNREADABLE;
}

bool ec_bridge_policy_digest(const ec_policy* policy, char digest[65]) {
    try {
        const std::string hex = ec::policy_digest_hex(to_core_policy(policy));
        std::snprintf(digest, 65, "%s", hex.c_str());
        return hex.size() == 64;
    } catch (...) {
        digest[0] = '\0';
        return false;
    }
}

namespace {

constexpr char kSeedPath[] = "ephemeral_crypt.restart";
constexpr char kSeedMagic[8] = {'E', 'C', 'S', 'E', 'E', 'D', '0', '1'};
constexpr std::size_t kSeedMaxPrefix = 8192;

struct SeedHeader {
    char magic[8];
    std::uint32_t timeline;
    std::uint32_t prefix_bytes;
    std::uint64_t checkpoint_lsn;
};

}  // namespace

int ec_bridge_save_restart_seed(const char* segment_path, uint64_t checkpoint_offset,
                                uint32_t timeline, uint64_t checkpoint_lsn, char* errbuf,
                                size_t errlen) {
    return fenced(errbuf, errlen, [&]() -> int {
        // The checkpoint record's total length sits in its first four bytes.
        const int fd = ec_open(segment_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            set_error(errbuf, errlen, std::string("cannot open ") + segment_path);
            return -1;
        }
        std::uint32_t record_length = 0;
        std::vector<std::uint8_t> prefix;
        bool ok = ec_pread(fd, &record_length, sizeof(record_length),
                           static_cast<off_t>(checkpoint_offset)) ==
                  static_cast<ssize_t>(sizeof(record_length));
        const std::uint64_t end = checkpoint_offset + record_length;
        ok = ok && record_length > 0 && end <= kSeedMaxPrefix;
        if (ok) {
            prefix.resize(end);
            ok = ec_pread(fd, prefix.data(), prefix.size(), 0) ==
                 static_cast<ssize_t>(prefix.size());
        }
        ec_close(fd);
        if (!ok) {
            set_error(errbuf, errlen, "cannot read the checkpoint record");
            return -1;
        }
        SeedHeader header{};
        std::memcpy(header.magic, kSeedMagic, sizeof(kSeedMagic));
        header.timeline = timeline;
        header.prefix_bytes = static_cast<std::uint32_t>(prefix.size());
        header.checkpoint_lsn = checkpoint_lsn;
        std::vector<std::uint8_t> file(sizeof(header) + prefix.size());
        std::memcpy(file.data(), &header, sizeof(header));
        std::memcpy(file.data() + sizeof(header), prefix.data(), prefix.size());
        std::uint8_t digest[32];
        SHA256(file.data(), file.size(), digest);
        file.insert(file.end(), digest, digest + sizeof(digest));
        const std::string temp = std::string(kSeedPath) + ".tmp";
        const int out =
            ip::real().open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out < 0 ||
            ip::real().write(out, file.data(), file.size()) != static_cast<ssize_t>(file.size()) ||
            fsync(out) != 0) {
            if (out >= 0) {
                ip::real().close(out);
            }
            set_error(errbuf, errlen, std::string("cannot write ") + temp);
            return -1;
        }
        ip::real().close(out);
        if (ip::real().rename(temp.c_str(), kSeedPath) != 0) {
            set_error(errbuf, errlen, std::string("cannot rename ") + temp);
            return -1;
        }
        fsync_path(".", O_RDONLY | O_DIRECTORY);
        return 0;
    });
}

void ec_bridge_discard_restart_seed(void) {
    unlink(kSeedPath);
}

int ec_bridge_rebuild_from_seed(const char* segment_path, uint32_t timeline,
                                uint64_t checkpoint_lsn, uint64_t segment_bytes, char* errbuf,
                                size_t errlen) {
    return fenced(errbuf, errlen, [&]() -> int {
        std::vector<std::uint8_t> file;
        const int in = ip::real().open(kSeedPath, O_RDONLY | O_CLOEXEC);
        if (in < 0) {
            return 0;
        }
        std::uint8_t buffer[4096];
        for (;;) {
            const ssize_t n = ip::real().read(in, buffer, sizeof(buffer));
            if (n <= 0) {
                break;
            }
            file.insert(file.end(), buffer, buffer + n);
        }
        ip::real().close(in);
        SeedHeader header{};
        if (file.size() < sizeof(header) + 32) {
            return 0;
        }
        std::memcpy(&header, file.data(), sizeof(header));
        std::uint8_t digest[32];
        SHA256(file.data(), file.size() - 32, digest);
        const bool valid = std::memcmp(header.magic, kSeedMagic, sizeof(kSeedMagic)) == 0 &&
                           file.size() == sizeof(header) + header.prefix_bytes + 32 &&
                           std::memcmp(digest, file.data() + file.size() - 32, 32) == 0;
        if (!valid || header.timeline != timeline || header.checkpoint_lsn != checkpoint_lsn) {
            return 0;  // a seed of another checkpoint, or damaged: not this restart's
        }
        const std::string temp = "pg_wal/xlogtemp.ephemeral_crypt." + std::to_string(getpid());
        const int out = ec_open(temp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        bool ok = out >= 0;
        ok = ok && ec_pwrite(out, file.data() + sizeof(header), header.prefix_bytes, 0) ==
                       static_cast<ssize_t>(header.prefix_bytes);
        // The rest of the segment reads as zeros, as a freshly initialised one does.
        ok = ok && ec_ftruncate(out, static_cast<off_t>(segment_bytes)) == 0;
        ok = ok && fsync(out) == 0;
        if (out >= 0) {
            ec_close(out);
        }
        if (!ok || ip::real().rename(temp.c_str(), segment_path) != 0) {
            unlink(temp.c_str());
            set_error(errbuf, errlen,
                      std::string("cannot rebuild ") + segment_path + ": " + std::strerror(errno));
            return -1;
        }
        fsync_path("pg_wal", O_RDONLY | O_DIRECTORY);
        return 1;
    });
}

int ec_bridge_remove_foreign_wal(char* errbuf, size_t errlen) {
    return fenced(errbuf, errlen, [&]() -> int {
        std::vector<WalSegment> segments;
        if (!list_wal_segments(&segments)) {
            set_error(errbuf, errlen, std::string("cannot open pg_wal: ") + std::strerror(errno));
            return -1;
        }
        int removed = 0;
        for (const WalSegment& segment : segments) {
            if (segment.kind != SegmentKind::Foreign) {
                continue;
            }
            if (unlink(segment.path.c_str()) != 0) {
                set_error(errbuf, errlen,
                          "cannot remove " + segment.path + ": " + std::strerror(errno));
                return -1;
            }
            ++removed;
        }
        fsync_path("pg_wal", O_RDONLY | O_DIRECTORY);
        return removed;
    });
}

int ec_bridge_count_foreign_wal(char* key_id, size_t key_id_len) {
    if (key_id_len > 0) {
        key_id[0] = '\0';
    }
    // An exception here can only be out of memory; report none found and let
    // the startup process meet the files itself.
    return std::max(0, fenced(nullptr, 0, [&]() -> int {
                        std::vector<WalSegment> segments;
                        list_wal_segments(&segments);
                        int found = 0;
                        for (const WalSegment& segment : segments) {
                            if (segment.kind != SegmentKind::Foreign) {
                                continue;
                            }
                            if (found++ == 0 && key_id_len > segment.key_id.size()) {
                                std::snprintf(key_id, key_id_len, "%s", segment.key_id.c_str());
                            }
                        }
                        return found;
                    }));
}

bool ec_bridge_expose_key_for_testing(const char* path) {
#ifdef EPHEMERAL_CRYPT_TEST_HOOKS
    if (!g_key || path == nullptr) {
        return false;
    }
    std::uint8_t bytes[ec::kInstanceKeyBytes];
    g_key->copy_key_bytes_for_testing(bytes);
    char hex[2 * ec::kInstanceKeyBytes + 2];
    for (std::size_t i = 0; i < ec::kInstanceKeyBytes; ++i) {
        std::snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
    }
    hex[2 * ec::kInstanceKeyBytes] = '\n';
    const int fd = ip::real().open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const bool ok = fd >= 0 && ip::real().write(fd, hex, 2 * ec::kInstanceKeyBytes + 1) ==
                                   static_cast<ssize_t>(2 * ec::kInstanceKeyBytes + 1);
    if (fd >= 0) {
        ip::real().close(fd);
    }
    std::memset(bytes, 0, sizeof(bytes));
    std::memset(hex, 0, sizeof(hex));
    return ok;
#else
    (void)path;
    return false;
#endif
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

void ec_bridge_detach_counters(void) {
    ip::detach_counters();
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
