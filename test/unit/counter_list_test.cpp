// The SQL columns of ephemeral_crypt_encryption_status() and of the
// ephemeral_crypt_counters view against the one counter list
// (EC_CATEGORY_COUNTERS in core/counters.hpp). The SQL scripts of released
// versions never change, so the C++ side has to follow them. As in
// pg_stat_statements, there is one install script (1.0) and a chain of update
// scripts, which CREATE EXTENSION at the default version runs in turn: the
// columns in force are those of the last script in the chain that creates the
// function or the view. They must name every counter, in the list's order,
// and 1.0's a prefix of it.
#include <gtest/gtest.h>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
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

// The scripts CREATE EXTENSION runs for the default version, in order: the
// one install script, then the update scripts from its version to the default.
std::vector<std::string> install_chain() {
    const std::string target = current_version();
    const std::regex install_name("ephemeral_crypt--([0-9.]+)\\.sql");
    const std::regex update_name("ephemeral_crypt--([0-9.]+)--([0-9.]+)\\.sql");
    std::vector<std::string> installs;
    std::vector<std::pair<std::string, std::string>> updates;  // from, to
    for (const auto& entry :
         std::filesystem::directory_iterator(std::string(EC_SOURCE_DIR) + "/sql")) {
        const std::string name = entry.path().filename().string();
        std::smatch match;
        if (std::regex_match(name, match, install_name)) {
            installs.push_back(match[1].str());
        } else if (std::regex_match(name, match, update_name)) {
            updates.emplace_back(match[1].str(), match[2].str());
        }
    }
    EXPECT_EQ(installs.size(), 1u) << "one install script, the rest updates";
    if (installs.size() != 1) {
        return {};
    }
    std::vector<std::string> chain{
        read_source_file("sql/ephemeral_crypt--" + installs[0] + ".sql")};
    std::string version = installs[0];
    while (version != target) {
        std::vector<std::string> next;
        for (const auto& [from, to] : updates) {
            if (from == version) {
                next.push_back(to);
            }
        }
        EXPECT_EQ(next.size(), 1u) << "one update from " << version;
        if (next.size() != 1 || chain.size() > updates.size()) {
            return {};
        }
        chain.push_back(
            read_source_file("sql/ephemeral_crypt--" + version + "--" + next[0] + ".sql"));
        version = next[0];
    }
    return chain;
}

// The last script of the chain that contains `definition`: the one whose
// definition is in force after CREATE EXTENSION.
std::string latest_with(const std::vector<std::string>& chain, const std::string& definition) {
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        if (it->find(definition) != std::string::npos) {
            return *it;
        }
    }
    ADD_FAILURE() << "no script creates " << definition;
    return {};
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
    const std::vector<std::string> chain = install_chain();
    ASSERT_FALSE(chain.empty());
    const std::vector<std::string> columns =
        out_columns(latest_with(chain, "CREATE FUNCTION ephemeral_crypt_encryption_status("),
                    "ephemeral_crypt_encryption_status");
    // category, enabled, degradation, the counters, cipher.
    ASSERT_EQ(columns.size(), 3 + kCounterFieldCount + 1);
    EXPECT_EQ(std::vector<std::string>(columns.begin(), columns.begin() + 3),
              (std::vector<std::string>{"category", "enabled", "degradation"}));
    EXPECT_EQ(std::vector<std::string>(columns.begin() + 3, columns.end() - 1),
              counter_names(kCounterFieldCount));
    EXPECT_EQ(columns.back(), "cipher");
    EXPECT_EQ(view_counter_columns(latest_with(chain, "CREATE VIEW ephemeral_crypt_counters AS")),
              counter_names(kCounterFieldCount));
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
