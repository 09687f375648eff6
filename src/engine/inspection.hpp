// What ephemeral_crypt_file_status() and ephemeral_crypt_scan() report: the
// header of a file and its sizes, never its data. A path is inspected only
// if it is inside the data directory or one of its tablespaces, judged by
// its real path (symbolic links resolved) and with any ".." refused
// outright; the scan walks the data directory's ephemeral places.
#pragma once

#include "core/no_postgres.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/category.hpp"
#include "core/instance_key.hpp"
#include "core/path_classifier.hpp"

namespace ephemeral_crypt::engine {

struct FileReport {
    std::string path;  // relative to the data directory when inside it
    std::optional<Category> category;
    bool has_header = false;    // the file carries an ephemeral_crypt header
    std::string header_status;  // ok, not_ours, truncated, ..., or empty / unreadable
    bool encrypted = false;     // a header that is intact and not a plaintext-audit one
    bool plaintext_audit = false;
    std::string key_id;  // from the header; empty without one
    bool current_instance = false;
    std::int64_t physical_size = 0;
    std::int64_t logical_size = 0;
};

enum class PathProblem { None, Empty, Traversal, Outside, Missing, NotRegular, Unreadable };

struct Inspection {
    PathProblem problem = PathProblem::None;
    std::string message;   // says what is wrong with the path
    int error_number = 0;  // errno, for Unreadable
    FileReport report;     // filled when problem is None
};

// Inspects `requested`: relative to the data directory, or absolute inside it
// or one of its tablespaces. `key` may be null (no header is then current).
Inspection inspect_file(const std::string& requested, const ClassifierRoots& roots,
                        const InstanceKey* key);

// Asked before each directory entry; false stops the scan there (the
// attestation's time budget).
using ScanBudgetCheck = std::function<bool()>;

// Every regular file of the three categories below the data directory's
// base, pg_wal, pg_replslot and pg_tblspc (tablespaces through their links),
// sorted by path within each directory; only as far as `keep_going` allows
// when one is given.
std::vector<FileReport> scan_data_directory(const ClassifierRoots& roots, const InstanceKey* key,
                                            const ScanBudgetCheck& keep_going = {});

}  // namespace ephemeral_crypt::engine
