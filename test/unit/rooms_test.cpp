// The rooms' import rule (docs/architecture.md, "Rooms"), read from the
// sources themselves: imports flow pg -> engine -> interpose -> core, so a
// file of src/core includes only src/core, a file of src/interpose only
// src/interpose and src/core, a file of src/engine sees the libc boundary
// only through interpose/layer.hpp, and a file of src/pg sees the other
// rooms only through engine/engine_api.h.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

struct Include {
    std::string file;    // the including file, relative to src/
    std::string target;  // what it includes, as written between the quotes
};

// Every #include "..." of every file of `room` (a directory under src/).
std::vector<Include> quoted_includes(const std::string& room, int* files) {
    static const std::regex kInclude(R"re(^\s*#\s*include\s*"([^"]+)")re");
    std::vector<Include> found;
    *files = 0;
    for (const auto& entry : fs::directory_iterator(fs::path(EC_SOURCE_DIR) / "src" / room)) {
        const std::string ext = entry.path().extension().string();
        if (ext != ".cpp" && ext != ".hpp" && ext != ".h") {
            continue;
        }
        ++*files;
        std::ifstream in(entry.path());
        std::string line;
        std::smatch match;
        while (std::getline(in, line)) {
            if (std::regex_search(line, match, kInclude)) {
                found.push_back({room + "/" + entry.path().filename().string(), match[1]});
            }
        }
    }
    return found;
}

std::string room_of(const std::string& target) {
    const auto slash = target.find('/');
    return slash == std::string::npos ? "" : target.substr(0, slash);
}

const std::set<std::string> kRooms = {"core", "interpose", "engine", "pg"};

// Every include of `room` that names one of the rooms must be allowed by
// `allowed`. Returns how many such includes there were.
template <class Allowed>
int expect_includes(const std::string& room, Allowed&& allowed) {
    int files = 0;
    int checked = 0;
    for (const Include& include : quoted_includes(room, &files)) {
        if (kRooms.count(room_of(include.target)) == 0) {
            continue;  // a system or PostgreSQL header
        }
        ++checked;
        EXPECT_TRUE(allowed(include.target))
            << include.file << " includes \"" << include.target << "\"";
    }
    EXPECT_GT(files, 0) << "no sources found in src/" << room;
    return checked;
}

TEST(Rooms, CoreIncludesOnlyCore) {
    EXPECT_GT(expect_includes("core", [](const std::string& t) { return room_of(t) == "core"; }),
              0);
}

TEST(Rooms, InterposeIncludesOnlyInterposeAndCore) {
    EXPECT_GT(expect_includes("interpose",
                              [](const std::string& t) {
                                  return room_of(t) == "interpose" || room_of(t) == "core";
                              }),
              0);
}

TEST(Rooms, EngineSeesTheLibcBoundaryOnlyThroughTheLayer) {
    EXPECT_GT(expect_includes("engine",
                              [](const std::string& t) {
                                  return room_of(t) == "engine" || room_of(t) == "core" ||
                                         t == "interpose/layer.hpp";
                              }),
              0);
}

TEST(Rooms, PgSeesTheOtherRoomsOnlyThroughTheEngineApi) {
    EXPECT_GT(expect_includes("pg",
                              [](const std::string& t) {
                                  return room_of(t) == "pg" || t == "engine/engine_api.h";
                              }),
              0);
}

}  // namespace
