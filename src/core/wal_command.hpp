// Where a shell command the server runs names a WAL file of pg_wal, and the
// same command pointed at a staged copy instead. PostgreSQL expands %p to
// "pg_wal/<segment>" for archive_command (the segment to archive) and to
// "pg_wal/RECOVERYXLOG" for restore_command (where the restored segment must
// land), always relative to the data directory. The system() wrapper
// (wrappers_command.cpp) stages that file in memory and runs the rewritten
// command, so the operator's command sees plaintext under the segment's own
// name and no plaintext WAL touches pg_wal. Pure string work, unit-tested.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ephemeral_crypt {

// The name PostgreSQL restores every WAL segment under before it keeps it.
inline constexpr std::string_view kRestoredSegmentName = "RECOVERYXLOG";

enum class WalCommandKind {
    Archive,  // %p is a segment (or a .partial one) to be read by the command
    Restore,  // %p is RECOVERYXLOG, to be written by the command
};

struct WalCommand {
    WalCommandKind kind;
    std::string name;                  // the file name after "pg_wal/"
    std::vector<std::size_t> offsets;  // where each "pg_wal/<name>" starts in the command
};

// The WAL file the command names, if any. A reference counts only as a whole
// word of the command (not inside a longer path such as /mnt/pg_wal/...);
// references to other names than the first one's are left alone.
std::optional<WalCommand> find_wal_command(std::string_view command);

// The command with every reference to the file replaced by `staged_path`.
// A pgBackRest archive-push or archive-get also gets --no-archive-async:
// pgBackRest's asynchronous mode reads pg_wal/archive_status beside %p
// itself (and refuses a %p outside pg1-path), which the staged copy cannot
// give it, so with WAL encryption each segment is pushed and fetched by the
// command PostgreSQL runs.
std::string rewrite_wal_command(std::string_view command, const WalCommand& found,
                                std::string_view staged_path);

// True when `path` can replace a word of a shell command without quoting:
// an absolute path of letters, digits and "/._-" only.
bool is_shell_safe_path(std::string_view path) noexcept;

}  // namespace ephemeral_crypt
