// One table per enum of its values and their stable spellings, and the two
// look-ups over it. A name written once in a table cannot drift between the
// direction that renders it and the direction that parses it, and a new value
// is one row rather than one more case in each switch.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <optional>
#include <string_view>

namespace ephemeral_crypt {

template <typename Enum>
struct EnumName {
    Enum value;
    std::string_view name;
};

// The name `value` has in `table`, or `otherwise` for a value the table
// lacks (a byte read from outside, cast to the enum).
template <typename Enum, std::size_t N>
constexpr std::string_view name_in(const EnumName<Enum> (&table)[N], Enum value,
                                   std::string_view otherwise) noexcept {
    for (const EnumName<Enum>& entry : table) {
        if (entry.value == value) {
            return entry.name;
        }
    }
    return otherwise;
}

// The value named `name` in `table`; nullopt for a name it lacks.
template <typename Enum, std::size_t N>
constexpr std::optional<Enum> value_named(const EnumName<Enum> (&table)[N],
                                          std::string_view name) noexcept {
    for (const EnumName<Enum>& entry : table) {
        if (entry.name == name) {
            return entry.value;
        }
    }
    return std::nullopt;
}

}  // namespace ephemeral_crypt
