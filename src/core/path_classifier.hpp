// Decides from a path alone whether a file belongs to one of the encrypted
// categories (the README's "What is encrypted" table). PostgreSQL chdirs to
// the data directory and mostly uses relative paths, but absolute paths into
// the data directory (or to a relocated pg_wal) are recognised too. Pure string work: no system
// calls, so it is cheap on every open and easy to test.
#pragma once

#include "core/no_postgres.hpp"

#include <optional>
#include <string>
#include <string_view>

#include "core/category.hpp"

namespace ephemeral_crypt {

struct ClassifierRoots {
    std::string data_dir;  // absolute, no trailing slash
    std::string wal_dir;   // absolute real path of pg_wal when it is a symlink, else empty
};

std::optional<Category> classify_path(std::string_view path, const ClassifierRoots& roots) noexcept;

// Exposed for tests: the name rules on their own.
bool is_temp_relation_name(std::string_view name) noexcept;
bool is_wal_segment_name(std::string_view name) noexcept;

}  // namespace ephemeral_crypt
