// File inspection and the scan (see inspection.hpp). Files are read with
// libc itself, so what is reported is what is on disk.
#include "engine/inspection.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "core/data_layout.hpp"
#include "core/file_header.hpp"
#include "core/file_io.hpp"
#include "core/path_classifier.hpp"
#include "interpose/layer.hpp"

namespace ephemeral_crypt::engine {

namespace ip = ephemeral_crypt::interpose;

namespace {

constexpr int kMaxScanDepth = 8;

// Real paths of the tablespace directories; file_status may be asked about
// files below them, and nothing else outside the data directory.
std::vector<std::string> tablespace_roots(const std::string& data_dir) {
    std::vector<std::string> roots;
    const std::string base = data_dir + "/pg_tblspc";
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

bool has_parent_component(const std::string& path) {
    std::size_t start = 0;
    for (;;) {
        const std::size_t slash = path.find('/', start);
        const std::size_t end = slash == std::string::npos ? path.size() : slash;
        if (path.compare(start, end - start, "..") == 0 && end - start == 2) {
            return true;
        }
        if (slash == std::string::npos) {
            return false;
        }
        start = slash + 1;
    }
}

FileReport report_for(const std::string& display_path, const std::string& full_path,
                      const ClassifierRoots& roots, const InstanceKey* key) {
    FileReport out;
    out.path = display_path;
    out.category = classify_path(full_path, roots);
    const FileCalls libc = ip::plaintext_file_calls();
    struct stat st {};
    if (libc.stat(full_path.c_str(), &st) == 0) {
        out.physical_size = st.st_size;
        out.logical_size = st.st_size;
    }
    std::uint8_t header[kHeaderBytes];
    ssize_t n = -1;
    const int fd = libc.open(full_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = libc.pread(fd, header, sizeof(header), 0);
        libc.close(fd);
    }
    if (n <= 0) {
        out.header_status = n == 0 ? "empty" : "unreadable";
        return out;
    }
    const DecodedHeader decoded = decode_header(header, static_cast<std::size_t>(n), key);
    out.header_status = std::string(header_status_name(decoded.status));
    out.has_header = decoded.status != HeaderStatus::NotOurs;
    if (decoded.status == HeaderStatus::Ok || decoded.status == HeaderStatus::ForeignInstance) {
        out.key_id = key_id_to_hex(decoded.header.key_id);
    }
    out.current_instance = decoded.status == HeaderStatus::Ok;
    out.plaintext_audit = decoded.status == HeaderStatus::Ok && decoded.header.plaintext_audit();
    out.encrypted = out.has_header && !out.plaintext_audit &&
                    decoded.status != HeaderStatus::Corrupt &&
                    decoded.status != HeaderStatus::Truncated;
    if (out.has_header && decoded.status != HeaderStatus::Truncated) {
        out.logical_size =
            DataLayout::for_version(decoded.header.version).logical_size(out.physical_size);
    }
    return out;
}

void scan_directory(const std::string& full, const std::string& display, int depth,
                    const ClassifierRoots& roots, const InstanceKey* key,
                    std::vector<FileReport>& found, const ScanBudgetCheck& keep_going) {
    if (depth > kMaxScanDepth || !keep_going()) {
        return;
    }
    DIR* dir = opendir(full.c_str());
    if (dir == nullptr) {
        return;
    }
    std::vector<std::string> names;
    while (const struct dirent* entry = readdir(dir)) {
        if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) {
            names.emplace_back(entry->d_name);
        }
    }
    closedir(dir);
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
        if (!keep_going()) {
            return;
        }
        const std::string child_full = full + "/" + name;
        const std::string child_display = display.empty() ? name : display + "/" + name;
        struct stat st {};
        if (ip::plaintext_file_calls().stat(child_full.c_str(), &st) != 0) {
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            scan_directory(child_full, child_display, depth + 1, roots, key, found, keep_going);
        } else if (S_ISREG(st.st_mode) && classify_path(child_display, roots)) {
            found.push_back(report_for(child_display, child_full, roots, key));
        }
    }
}

Inspection problem(PathProblem kind, std::string message, int error_number = 0) {
    Inspection result;
    result.problem = kind;
    result.message = std::move(message);
    result.error_number = error_number;
    return result;
}

}  // namespace

Inspection inspect_file(const std::string& requested, const ClassifierRoots& roots,
                        const InstanceKey* key) {
    if (requested.empty()) {
        return problem(PathProblem::Empty, "the path is empty");
    }
    // Refuse any ".." component outright rather than reason about where it leads.
    if (has_parent_component(requested)) {
        return problem(PathProblem::Traversal, "the path contains \"..\"");
    }
    const std::string& data_dir = roots.data_dir;
    const bool absolute = requested[0] == '/';
    const std::string full = absolute ? requested : data_dir + "/" + requested;
    char resolved_buffer[PATH_MAX];
    if (realpath(full.c_str(), resolved_buffer) == nullptr) {
        const int error = errno;
        if (error == ENOENT || error == ENOTDIR) {
            return problem(PathProblem::Missing, "no such file");
        }
        return problem(PathProblem::Unreadable, "could not resolve the path", error);
    }
    const std::string resolved = resolved_buffer;
    bool inside = is_below(resolved, data_dir);
    for (const std::string& root : tablespace_roots(data_dir)) {
        inside = inside || is_below(resolved, root);
    }
    if (!inside) {
        return problem(PathProblem::Outside,
                       absolute ? "the path is outside the data directory and its tablespaces"
                                : "the path leads outside the data directory and its "
                                  "tablespaces (symbolic link)");
    }
    struct stat st {};
    if (ip::plaintext_file_calls().stat(resolved.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return problem(PathProblem::NotRegular, "not a regular file");
    }
    // Classify by the path the server itself would use.
    const std::string display = is_below(full, data_dir) ? full.substr(data_dir.size() + 1) : full;
    Inspection result;
    result.report = report_for(display, full, roots, key);
    return result;
}

std::vector<FileReport> scan_data_directory(const ClassifierRoots& roots, const InstanceKey* key,
                                            const ScanBudgetCheck& keep_going) {
    std::vector<FileReport> found;
    const ScanBudgetCheck always = [] { return true; };
    const ScanBudgetCheck& check = keep_going ? keep_going : always;
    for (const char* top : {"base", "pg_wal", "pg_replslot", "pg_tblspc"}) {
        scan_directory(roots.data_dir + "/" + top, top, 0, roots, key, found, check);
    }
    return found;
}

}  // namespace ephemeral_crypt::engine
