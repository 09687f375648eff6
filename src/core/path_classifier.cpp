// Path rules for the three categories. Relation paths follow relpath():
// base/<db>/t<backend>_<relfilenode>[_fsm|_vm|_init][.<segno>] and
// pg_tblspc/<spc>/<PG_version_catversion>/<db>/<same>. Spill files are any
// file below a pgsql_tmp directory (shared filesets nest *.fileset
// directories there) plus pg_replslot/<slot>/xid-*.spill. WAL is
// pg_wal/<24 hex>[.partial], pg_wal/xlogtemp.<pid>, and pg_wal/RECOVERYXLOG,
// the name every segment restore_command brings back is read under before
// PostgreSQL keeps it under its own.
#include "core/path_classifier.hpp"

#include <cctype>

namespace ephemeral_crypt {

namespace {

bool all_digits(std::string_view s) noexcept {
    if (s.empty()) {
        return false;
    }
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
    }
    return true;
}

bool all_upper_hex(std::string_view s) noexcept {
    for (char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

bool starts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.substr(0, prefix.size()) == prefix;
}

bool ends_with(std::string_view s, std::string_view suffix) noexcept {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Splits "a/b/c" from the right: returns the last component and shortens `path`.
std::string_view pop_component(std::string_view& path) noexcept {
    while (!path.empty() && path.back() == '/') {
        path.remove_suffix(1);
    }
    const std::size_t slash = path.rfind('/');
    std::string_view last;
    if (slash == std::string_view::npos) {
        last = path;
        path = {};
    } else {
        last = path.substr(slash + 1);
        path = path.substr(0, slash);
    }
    return last;
}

// Strips a leading "./" or the data directory; returns false for an absolute
// path outside the roots.
bool relative_to_data_dir(std::string_view& path, const ClassifierRoots& roots) noexcept {
    while (starts_with(path, "./")) {
        path.remove_prefix(2);
    }
    if (path.empty() || path.front() != '/') {
        return true;
    }
    const std::string_view data_dir = roots.data_dir;
    if (!data_dir.empty() && starts_with(path, data_dir) && path.size() > data_dir.size() &&
        path[data_dir.size()] == '/') {
        path.remove_prefix(data_dir.size() + 1);
        return true;
    }
    return false;
}

bool is_tablespace_version_dir(std::string_view name) noexcept {
    // PG_<major>_<catversion>
    return starts_with(name, "PG_") && name.find('_', 3) != std::string_view::npos;
}

}  // namespace

bool is_temp_relation_name(std::string_view name) noexcept {
    if (name.size() < 4 || name[0] != 't') {
        return false;
    }
    name.remove_prefix(1);
    const std::size_t underscore = name.find('_');
    if (underscore == std::string_view::npos || !all_digits(name.substr(0, underscore))) {
        return false;
    }
    name.remove_prefix(underscore + 1);
    const std::size_t dot = name.find('.');
    if (dot != std::string_view::npos) {
        if (!all_digits(name.substr(dot + 1))) {
            return false;
        }
        name = name.substr(0, dot);
    }
    const std::size_t fork = name.find('_');
    if (fork != std::string_view::npos) {
        const std::string_view fork_name = name.substr(fork + 1);
        if (fork_name != "fsm" && fork_name != "vm" && fork_name != "init") {
            return false;
        }
        name = name.substr(0, fork);
    }
    return all_digits(name);
}

bool is_wal_segment_name(std::string_view name) noexcept {
    if (ends_with(name, ".partial")) {
        name.remove_suffix(8);
    }
    return name.size() == 24 && all_upper_hex(name);
}

// Every file of pg_wal in the WAL category.
static bool is_wal_file_name(std::string_view name) noexcept {
    return is_wal_segment_name(name) || starts_with(name, "xlogtemp.") || name == "RECOVERYXLOG";
}

std::optional<Category> classify_path(std::string_view path,
                                      const ClassifierRoots& roots) noexcept {
    if (path.empty()) {
        return std::nullopt;
    }
    std::string_view rest = path;
    const std::string_view name = pop_component(rest);
    if (name.empty() || name == "." || name == "..") {
        return std::nullopt;
    }

    // Spill files: anything below a pgsql_tmp directory, wherever the
    // tablespace lives (temp_tablespaces may point outside the data directory).
    {
        std::string_view dirs = rest;
        while (!dirs.empty()) {
            const std::string_view dir = pop_component(dirs);
            if (dir == "pgsql_tmp") {
                return Category::Spill;
            }
        }
    }

    // WAL, including a pg_wal relocated by a symlink and named by its target.
    if (!roots.wal_dir.empty() && rest == roots.wal_dir) {
        if (is_wal_file_name(name)) {
            return Category::Wal;
        }
        return std::nullopt;
    }

    std::string_view relative = rest;
    if (!relative_to_data_dir(relative, roots)) {
        // Absolute path outside the data directory: only a tablespace's
        // temp relation can still be ours (<location>/PG_x_y/<db>/t...).
        if (is_temp_relation_name(name)) {
            std::string_view dirs = rest;
            const std::string_view db = pop_component(dirs);
            const std::string_view version = pop_component(dirs);
            if (all_digits(db) && is_tablespace_version_dir(version)) {
                return Category::TempRelation;
            }
        }
        return std::nullopt;
    }

    if (relative == "pg_wal") {
        if (is_wal_file_name(name)) {
            return Category::Wal;
        }
        return std::nullopt;
    }

    if (starts_with(name, "xid-") && ends_with(name, ".spill")) {
        std::string_view dirs = relative;
        pop_component(dirs);  // the slot
        if (dirs == "pg_replslot") {
            return Category::Spill;
        }
        return std::nullopt;
    }

    if (is_temp_relation_name(name)) {
        std::string_view dirs = relative;
        const std::string_view db = pop_component(dirs);
        if (!all_digits(db)) {
            return std::nullopt;
        }
        if (dirs == "base") {
            return Category::TempRelation;
        }
        const std::string_view version = pop_component(dirs);
        const std::string_view spc = pop_component(dirs);
        if (is_tablespace_version_dir(version) && all_digits(spc) && dirs == "pg_tblspc") {
            return Category::TempRelation;
        }
    }
    return std::nullopt;
}

}  // namespace ephemeral_crypt
