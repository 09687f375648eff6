// The three kinds of transient artifact the extension encrypts. The numeric
// values are written into file headers, so they are part of the on-disk format
// and must never be renumbered.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/enum_names.hpp"

namespace ephemeral_crypt {

enum class Category : std::uint8_t {
    TempRelation = 1,
    Spill = 2,
    Wal = 3,
};

inline constexpr Category kAllCategories[] = {Category::TempRelation, Category::Spill,
                                              Category::Wal};

inline constexpr std::size_t kCategoryCount = sizeof(kAllCategories) / sizeof(kAllCategories[0]);

// The names are the SQL and log interface (docs/sql.md and the README's
// "What is encrypted"); keep them stable.
inline constexpr EnumName<Category> kCategoryNames[] = {
    {Category::TempRelation, "temp_relation"}, {Category::Spill, "spill"}, {Category::Wal, "wal"}};

constexpr std::string_view category_name(Category category) noexcept {
    return name_in(kCategoryNames, category, "unknown");
}

// The category a header's byte names, or nullopt for a byte no category has.
constexpr std::optional<Category> category_from_byte(std::uint8_t value) noexcept {
    for (const Category category : kAllCategories) {
        if (static_cast<std::uint8_t>(category) == value) {
            return category;
        }
    }
    return std::nullopt;
}

constexpr std::size_t category_index(Category category) noexcept {
    return static_cast<std::size_t>(category) - 1;
}

}  // namespace ephemeral_crypt
