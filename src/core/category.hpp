// The three kinds of transient artifact the extension encrypts. The numeric
// values are written into file headers, so they are part of the on-disk format
// and must never be renumbered.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

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
constexpr std::string_view category_name(Category category) noexcept {
    switch (category) {
        case Category::TempRelation:
            return "temp_relation";
        case Category::Spill:
            return "spill";
        case Category::Wal:
            return "wal";
    }
    return "unknown";
}

constexpr std::optional<Category> category_from_byte(std::uint8_t value) noexcept {
    switch (value) {
        case 1:
            return Category::TempRelation;
        case 2:
            return Category::Spill;
        case 3:
            return Category::Wal;
        default:
            return std::nullopt;
    }
}

constexpr std::size_t category_index(Category category) noexcept {
    return static_cast<std::size_t>(category) - 1;
}

}  // namespace ephemeral_crypt
