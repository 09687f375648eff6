// The file-access layer's control surface: configuration (key, per-category
// policy, data directory, counters), installation into every loaded object's
// GOT, and the event callback through which src/pg hears about failures.
// Everything here runs in the postmaster before children exist, except the
// callback, which fires in whichever process hit the event. It is also the
// whole of what src/engine sees of this room: the file calls it makes (to
// libc itself, through the wrappers, or through the server's own slots), the
// audit of the slots, and the staging directory's check. The GOT patcher,
// the wrappers and the libc table stay behind it.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/category.hpp"
#include "core/counters.hpp"
#include "core/file_io.hpp"
#include "core/instance_key.hpp"
#include "core/path_classifier.hpp"
#include "core/policy.hpp"
#include "core/shared_policy.hpp"

namespace ephemeral_crypt::interpose {

using ephemeral_crypt::CategoryPolicy;
using ephemeral_crypt::Degradation;

enum class LayerEvent : std::uint8_t {
    IoFailure,              // an encrypted read or write failed closed (EIO)
    HeaderRejected,         // an existing file's header was foreign, corrupt or unsupported
    PlaintextFallback,      // fail_open_audit wrote a file in plaintext
    BypassRefused,          // mmap/copy_file_range/sendfile/splice/fopen on an encrypted file
    IntegrityFailure,       // data of an AES-256-GCM file failed authentication (read as EIO)
    LockedMemoryExhausted,  // a file refused: no locked memory left for its key
    StagingFailed,          // archive_command or restore_command could not stage a WAL file
};

// The detail every LockedMemoryExhausted event carries.
inline constexpr const char* kLockedMemoryDetail =
    "no locked memory is left for the file's key and cipher state (RLIMIT_MEMLOCK is "
    "exhausted); the file was refused and nothing was written in its stead";

// Called without locks held and with no C++ objects alive in the calling
// frames, so the receiver may ereport(WARNING). `unit` is the data unit the
// event concerns, -1 when none; `detail` is a static string.
using EventCallback = void (*)(LayerEvent event, Category category, const char* path,
                               std::int64_t unit, const char* detail);

struct LayerConfig {
    const InstanceKey* key = nullptr;
    CategoryPolicy policy[kCategoryCount];  // indexed by category_index()
    ClassifierRoots roots;
    EventCallback on_event = nullptr;
    // Where archive_command and restore_command see WAL in plaintext: a
    // directory on a memory file system (wrappers_command.cpp).
    std::string wal_staging_dir;
};

struct InstallReport {
    bool ok = false;
    int objects_patched = 0;
    int slots_patched = 0;
    std::string error;  // set when !ok
};

// Sets the configuration. The key must outlive the layer, or retire() must
// be called before it goes.
void configure(const LayerConfig& config);
// At exit, before the key is destroyed: destroys the cipher file of every file
// with a tracked descriptor (which wipes its cipher state), gives back their
// share of the files_open gauge, and fails closed (EIO) any later open, read
// or write of a file of an enabled category, so nothing is served without
// the key and nothing reaches such a file in plaintext.
void retire() noexcept;
bool retired() noexcept;
// Counting (process_counters.cpp). Until shared memory exists, and after it
// is gone, a process counts into a process-local block.
//
// Moves counting into `shared` (shared memory). With `merge_previous`, what
// was counted locally so far is added to its total; without it the previous
// block is not touched, which is required after a crash restart, when the
// old shared memory is already unmapped.
void attach_counters(SharedCounters* shared, bool merge_previous) noexcept;
// Where this process counts: its own slot of the shared block, claimed on
// first use, or the shared total when every slot is taken.
Counters& counters() noexcept;
// Goes back to process-local counting; for a process that is about to lose
// its shared memory (the postmaster's exit callbacks run after the detach).
void detach_counters() noexcept;
// The sum over every process, for one category, in kCounterFields order.
void read_counters(Category category, std::int64_t out[kCounterFieldCount]) noexcept;
// Registers what keeps counting per process across fork (the postmaster,
// once); and folds this process's slot at exit (the exit handler).
void prepare_process_counters() noexcept;
void release_process_counters() noexcept;

// Resolves libc, then patches every loaded object. Fails if any slot could not
// be written or if the main program's file calls were not found.
InstallReport install();
bool installed() noexcept;

// Re-patches objects loaded since the last pass (called after dlopen).
void patch_new_objects() noexcept;

// What audit_patched_slots() found.
struct SlotAudit {
    int objects_scanned = 0;            // objects walked, the skipped ones not counted
    int slots_in_place = 0;             // slots that hold the layer's wrapper
    int slots_not_in_place = 0;         // slots that hold something else
    int unreadable = 0;                 // slots that could not be read
    char first_not_in_place[256] = {};  // object path and symbol of the first such slot
    char first_unreadable[256] = {};    // object path, symbol and reason of the first
};

// What the attestation checks: every slot the layer would patch, in every
// loaded object it does not skip, read without writing. Allocates nothing.
// Empty (all zero) before install().
SlotAudit audit_patched_slots() noexcept;
// Test builds only: writes libc's own lseek back into the main program's
// lseek slots, as another library overwriting the GOT would. False in other
// builds. patch_new_objects() undoes it.
bool divert_slot_for_testing() noexcept;

// Test-only fault injection: makes creating encrypted files of `category`
// fail, which exercises the degradation class.
void set_fault(Category category, bool fail) noexcept;

const LayerConfig& config() noexcept;
bool category_enabled(Category category) noexcept;
// The policy rolled out after start-up (core/shared_policy.hpp). Once a
// block is attached, files created from then on take their category's
// cipher and degradation from what it holds; whether a category is
// encrypted stays what configure() said, since turning it on or off waits
// for a restart. Null detaches. In the postmaster, when shared memory is set.
void attach_shared_policy(const SharedPolicy* shared) noexcept;
// The category's policy for a file opened now: one atomic load when nothing
// was published since this thread last looked, a copy of the block when
// something was. Allocates nothing and takes no lock.
CategoryPolicy live_category_policy(Category category) noexcept;
// True once configure() has given the layer a key; the wrappers pass
// everything through until then.
bool layer_active() noexcept;
bool layer_fault(Category category) noexcept;

// The calls for replace_file_durably and for any file I/O of the engine:
// through the wrappers, so a file of an enabled category is written
// encrypted and read decrypted, or straight to libc, in plaintext, whatever
// the GOTs say.
FileCalls encrypting_file_calls() noexcept;
FileCalls plaintext_file_calls() noexcept;
// What the main program's GOT slots hold for each call (for open, "open";
// for pread, "pread"; and so on), null where it has no slot. Calling
// through these is calling as the server itself does, which proves the
// server's calls reach the layer, not merely that the layer works when
// called directly (the self-test). A lazily bound slot never called yet
// holds its PLT stub, which still reaches whatever the slot will hold.
FileCalls server_file_calls() noexcept;

// Whether `directory` can serve as the WAL staging directory
// (ephemeral_crypt.wal_staging_directory): null when it is a directory on
// tmpfs or ramfs; else the operator's words for why not (a static string),
// with errno set to the reason.
const char* staging_directory_problem(const char* directory) noexcept;

// Whether `fd` is tracked by the layer, and as what (for tests and self-test).
bool fd_is_tracked(int fd, Category* category) noexcept;
std::size_t tracked_fd_count() noexcept;

}  // namespace ephemeral_crypt::interpose
