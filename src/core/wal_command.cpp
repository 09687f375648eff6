// Finding %p's expansion in archive_command and restore_command, and
// pointing it elsewhere (wal_command.hpp says why).
#include "core/wal_command.hpp"

#include "core/path_classifier.hpp"

namespace ephemeral_crypt {

namespace {

constexpr std::string_view kWalDirPrefix = "pg_wal/";

bool is_name_char(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

// A character that may end or start a word of a path: anything a path
// component cannot continue with.
bool continues_path(char c) noexcept {
    return is_name_char(c) || c == '/' || c == '~' || c == '$';
}

bool is_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n';
}

// Where the first word that is the program `name` (bare, or the last
// component of a path) ends, or npos.
std::size_t end_of_program(std::string_view command, std::string_view name) noexcept {
    for (std::size_t at = command.find(name); at != std::string_view::npos;
         at = command.find(name, at + 1)) {
        const std::size_t end = at + name.size();
        const bool starts_word = at == 0 || is_space(command[at - 1]) || command[at - 1] == '/';
        const bool ends_word = end == command.size() || is_space(command[end]);
        if (starts_word && ends_word) {
            return end;
        }
    }
    return std::string_view::npos;
}

bool has_word(std::string_view command, std::string_view word) noexcept {
    for (std::size_t at = command.find(word); at != std::string_view::npos;
         at = command.find(word, at + 1)) {
        const std::size_t end = at + word.size();
        if ((at == 0 || is_space(command[at - 1])) &&
            (end == command.size() || is_space(command[end]))) {
            return true;
        }
    }
    return false;
}

}  // namespace

std::optional<WalCommand> find_wal_command(std::string_view command) {
    std::optional<WalCommand> found;
    for (std::size_t at = command.find(kWalDirPrefix); at != std::string_view::npos;
         at = command.find(kWalDirPrefix, at + 1)) {
        if (at > 0 && continues_path(command[at - 1])) {
            continue;
        }
        std::size_t end = at + kWalDirPrefix.size();
        while (end < command.size() && is_name_char(command[end])) {
            ++end;
        }
        if (end < command.size() && command[end] == '/') {
            continue;  // a directory below pg_wal, such as archive_status
        }
        const std::string_view name =
            command.substr(at + kWalDirPrefix.size(), end - at - kWalDirPrefix.size());
        WalCommandKind kind;
        if (is_wal_segment_name(name)) {
            kind = WalCommandKind::Archive;
        } else if (name == kRestoredSegmentName) {
            kind = WalCommandKind::Restore;
        } else {
            continue;
        }
        if (!found) {
            found = WalCommand{kind, std::string(name), {}};
        } else if (found->name != name) {
            continue;
        }
        found->offsets.push_back(at);
    }
    return found;
}

std::string rewrite_wal_command(std::string_view command, const WalCommand& found,
                                std::string_view staged_path) {
    const std::size_t reference_length = kWalDirPrefix.size() + found.name.size();
    std::string rewritten;
    rewritten.reserve(command.size() + found.offsets.size() * staged_path.size());
    std::size_t copied = 0;
    for (const std::size_t offset : found.offsets) {
        rewritten.append(command.substr(copied, offset - copied));
        rewritten.append(staged_path);
        copied = offset + reference_length;
    }
    rewritten.append(command.substr(copied));
    const std::size_t program_end = end_of_program(rewritten, "pgbackrest");
    if (program_end != std::string::npos &&
        (has_word(rewritten, "archive-push") || has_word(rewritten, "archive-get"))) {
        rewritten.insert(program_end, " --no-archive-async");
    }
    return rewritten;
}

bool is_shell_safe_path(std::string_view path) noexcept {
    if (path.empty() || path.front() != '/') {
        return false;
    }
    for (const char c : path) {
        if (!is_name_char(c) && c != '/') {
            return false;
        }
    }
    return true;
}

}  // namespace ephemeral_crypt
