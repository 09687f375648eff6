// The SQL columns of ephemeral_crypt_encryption_status() and of the
// ephemeral_crypt_counters view against the one counter list
// (EC_CATEGORY_COUNTERS in core/counters.hpp). The SQL scripts of released
// versions never change, so the C++ side has to follow them: the current
// version's script must name every counter, in the list's order, and 1.0's
// a prefix of it.
#include <gtest/gtest.h>

#include <cstddef>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "core/counters.hpp"

namespace ephemeral_crypt {
namespace {

std::string read_source_file(const std::string& relative) {
    std::ifstream in(std::string(EC_SOURCE_DIR) + "/" + relative);
    EXPECT_TRUE(in.good()) << relative;
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string current_version() {
    const std::string control = read_source_file("ephemeral_crypt.control");
    std::smatch match;
    EXPECT_TRUE(std::regex_search(control, match, std::regex("default_version = '([^']+)'")));
    return match.size() > 1 ? match[1].str() : std::string();
}

// The text from `start` to the first `end` after it.
std::string section(const std::string& script, const std::string& start, const std::string& end) {
    const std::size_t from = script.find(start);
    EXPECT_NE(from, std::string::npos) << start;
    if (from == std::string::npos) {
        return {};
    }
    const std::size_t to = script.find(end, from);
    return script.substr(from, to == std::string::npos ? std::string::npos : to - from);
}

// The names of the OUT columns of the function `name` the script creates.
std::vector<std::string> out_columns(const std::string& script, const std::string& name) {
    const std::string definition = section(script, "CREATE FUNCTION " + name + "(", "RETURNS");
    std::vector<std::string> columns;
    const std::regex out_column("OUT ([a-z_]+) ");
    for (std::sregex_iterator it(definition.begin(), definition.end(), out_column), last;
         it != last; ++it) {
        columns.push_back((*it)[1].str());
    }
    return columns;
}

// The counter columns of the counters view: its select list after the label
// columns category and enabled.
std::vector<std::string> view_counter_columns(const std::string& script) {
    const std::string definition =
        section(script, "CREATE VIEW ephemeral_crypt_counters AS", "FROM");
    std::vector<std::string> columns;
    const std::regex column("\\b([a-z_]+),?\\s*\\n");
    for (std::sregex_iterator it(definition.begin(), definition.end(), column), last; it != last;
         ++it) {
        columns.push_back((*it)[1].str());
    }
    EXPECT_GE(columns.size(), 2u);
    if (columns.size() < 2) {
        return {};
    }
    EXPECT_EQ(columns[0], "category");
    EXPECT_EQ(columns[1], "enabled");
    return std::vector<std::string>(columns.begin() + 2, columns.end());
}

std::vector<std::string> counter_names(std::size_t count) {
    return std::vector<std::string>(std::begin(kCounterNames), std::begin(kCounterNames) + count);
}

TEST(CounterList, CurrentSqlColumnsAreTheCounterList) {
    const std::string script =
        read_source_file("sql/ephemeral_crypt--" + current_version() + ".sql");
    const std::vector<std::string> columns =
        out_columns(script, "ephemeral_crypt_encryption_status");
    // category, enabled, degradation, the counters, cipher.
    ASSERT_EQ(columns.size(), 3 + kCounterFieldCount + 1);
    EXPECT_EQ(std::vector<std::string>(columns.begin(), columns.begin() + 3),
              (std::vector<std::string>{"category", "enabled", "degradation"}));
    EXPECT_EQ(std::vector<std::string>(columns.begin() + 3, columns.end() - 1),
              counter_names(kCounterFieldCount));
    EXPECT_EQ(columns.back(), "cipher");
    EXPECT_EQ(view_counter_columns(script), counter_names(kCounterFieldCount));
}

TEST(CounterList, FirstVersionColumnsArePrefixOfTheList) {
    const std::string script = read_source_file("sql/ephemeral_crypt--1.0.sql");
    const std::vector<std::string> columns =
        out_columns(script, "ephemeral_crypt_encryption_status");
    // 1.0 had no integrity_failures and no cipher column.
    ASSERT_EQ(columns.size(), 3 + kCounterFieldCount - 1);
    EXPECT_EQ(std::vector<std::string>(columns.begin() + 3, columns.end()),
              counter_names(kCounterFieldCount - 1));
    EXPECT_EQ(view_counter_columns(script), counter_names(kCounterFieldCount - 1));
}

}  // namespace
}  // namespace ephemeral_crypt
