/*
 * engine_api.h
 *		The C interface of the engine room: the only header src/pg includes
 *		from the PostgreSQL-free rooms.
 *
 * Files in src/pg include postgres.h, so they cannot include the C++ headers
 * of src/engine, src/interpose or src/core (core/no_postgres.hpp refuses to
 * compile them there). They see only these plain C declarations. This is
 * also the one header of src/engine that does not include that guard: it
 * includes nothing but C standard headers, so it is safe on both sides.
 *
 * The error boundary. Every entry point that can fail fills an ec_error and
 * runs its body inside the one fence (engine_api_internal.hpp), so no C++
 * exception ever reaches a PostgreSQL frame, and no ereport longjmp ever
 * crosses a C++ frame (src/pg reports only after the call has returned). What went wrong
 * crosses as data: a status, the errno of the system call that failed (0
 * when none did) and a message naming what failed. src/pg sets errno from it
 * and reports with errcode_for_file_access() and %m when a file was involved
 * (pg/engine_errors.cpp). docs/architecture.md explains the whole design.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Categories by index; the header's category byte is the index plus one. */
enum {
    EC_CATEGORY_TEMP_RELATION = 0,
    EC_CATEGORY_SPILL = 1,
    EC_CATEGORY_WAL = 2,
    EC_CATEGORY_COUNT = 3
};

enum ec_degradation { EC_FAIL_CLOSED = 0, EC_FAIL_OPEN_AUDIT = 1 };

/* A category's cipher; the values are the file header's cipher byte. WAL is
 * always AES-256-XTS. */
enum ec_cipher { EC_CIPHER_AES_256_XTS = 1, EC_CIPHER_AES_256_GCM = 2 };

enum ec_event {
    EC_EVENT_IO_FAILURE = 0,
    EC_EVENT_HEADER_REJECTED = 1,
    EC_EVENT_PLAINTEXT_FALLBACK = 2,
    EC_EVENT_BYPASS_REFUSED = 3,
    EC_EVENT_INTEGRITY_FAILURE = 4,       /* data failed authentication; `unit` names it */
    EC_EVENT_LOCKED_MEMORY_EXHAUSTED = 5, /* a file refused: no locked memory for its key */
    EC_EVENT_STAGING_FAILED = 6,          /* archive_command or restore_command: WAL not staged */
};

/* Sizes of the text buffers, NUL included. */
enum {
    EC_KEY_ID_BUFFER = 17,          /* 16 hex digits */
    EC_DIGEST_BUFFER = 65,          /* 64 hex digits */
    EC_POLICY_VERSION_BUFFER = 257, /* up to 256 bytes */
    EC_CIPHER_SUMMARY_BUFFER = 96   /* "AES-256-GCM (temp_relation, spill), AES-256-XTS (wal)" */
};

typedef enum ec_status { EC_OK = 0, EC_FAILED = 1 } ec_status;

typedef struct ec_error {
    ec_status status;
    int saved_errno;   /* errno of the system call that failed; 0 when none did */
    char message[512]; /* what failed, without the errno text: src/pg adds %m */
} ec_error;

/* Called by the layer as a wrapper returns, with no lock held and no C++
 * object alive in the calling frames, so it may ereport(WARNING). `unit` is
 * the data unit concerned, -1 when none. */
typedef void (*ec_event_callback)(int event, int category, const char* path, int64_t unit,
                                  const char* detail);

/* ---- Start-up, in the postmaster (engine/startup.hpp, self_test.hpp) ---- */

typedef struct ec_settings {
    bool encrypt[EC_CATEGORY_COUNT];
    int degradation[EC_CATEGORY_COUNT]; /* ec_degradation */
    int cipher[EC_CATEGORY_COUNT];      /* ec_cipher */
    const char* data_dir;
    const char* wal_staging_dir; /* ephemeral_crypt.wal_staging_directory */
} ec_settings;

/* Creates the instance key and configures the layer. */
ec_status ec_engine_start(const ec_settings* settings, ec_event_callback callback, ec_error* error);
/* Patches every loaded object and fills the patch figures. With
 * `inject_failure` (the test-only fault switch) it fails instead. */
ec_status ec_engine_install_layer(bool inject_failure, int* objects_patched, int* slots_patched,
                                  ec_error* error);
/* Known answers, then a round trip through the server's own file calls. */
ec_status ec_engine_self_test(ec_error* error);

const char* ec_engine_key_id(void); /* 16 hex digits; static storage */
int64_t ec_engine_key_created_at_unix_ms(void);
const char* ec_engine_category_name(int category);
const char* ec_engine_degradation_name(int degradation);
/* "AES-256-XTS" or "AES-256-GCM"; static storage. */
const char* ec_engine_cipher_name(int cipher);

/* ---- archive_command and restore_command (interpose/wal_staging.hpp) ---- */

/* Whether `path` can stand for %p in a shell command: an absolute path of
 * letters, digits and "/._-" only. */
bool ec_engine_is_shell_safe_path(const char* path);
/* NULL when `directory` can stage WAL (it exists, on tmpfs or ramfs); else
 * why not, naming ephemeral_crypt.wal_staging_directory (static storage),
 * with errno set. */
const char* ec_engine_staging_directory_problem(const char* directory);

/* ---- The policy in force (engine/policy_loading.hpp) ---- */

typedef struct ec_policy {
    char version[EC_POLICY_VERSION_BUFFER];
    bool encrypt[EC_CATEGORY_COUNT];
    int degradation[EC_CATEGORY_COUNT]; /* ec_degradation */
    int cipher[EC_CATEGORY_COUNT];      /* ec_cipher */
} ec_policy;

enum ec_policy_file_status {
    EC_POLICY_OK = 0, /* parsed, and signed by the configured key */
    EC_POLICY_MISSING,
    EC_POLICY_UNREADABLE,
    EC_POLICY_MALFORMED,
    EC_POLICY_UNSIGNED,
    EC_POLICY_BAD_SIGNATURE
};

enum ec_policy_verdict {
    EC_POLICY_ACCEPTED = 0,
    EC_POLICY_SIGNED_BUT_NO_FILE = 1, /* require_signed_policy without a policy file */
    EC_POLICY_FILE_REJECTED = 2,      /* file_status says why; error the detail */
    EC_POLICY_ROLLED_BACK = 3,        /* older than the serial the data directory accepted */
};

typedef struct ec_policy_resolution {
    int verdict;     /* ec_policy_verdict */
    int file_status; /* ec_policy_file_status of a named file */
    bool from_file;
    bool signed_ok;
    ec_policy policy; /* the effective policy, when accepted */
    char digest[EC_DIGEST_BUFFER];
    /* The categories' ciphers in one phrase (ephemeral_crypt_status().cipher). */
    char cipher_summary[EC_CIPHER_SUMMARY_BUFFER];
} ec_policy_resolution;

/* Decides the effective policy from the settings' one and the policy file
 * (NULL or "" when none is named). EC_FAILED when the start must be refused:
 * out->verdict says why, and for a rejected file error holds the loader's
 * explanation and the errno of a failed read. */
ec_status ec_engine_resolve_policy(const ec_policy* from_settings, const char* policy_file,
                                   const char* public_key, bool require_signed,
                                   ec_policy_resolution* out, ec_error* error);

/* ---- The policy's life after start-up (engine/policy_lifecycle.hpp) ---- */

enum { EC_PENDING_DETAIL_BUFFER = 256, EC_STALE_REASON_BUFFER = 160 };

/* The policy in force, as published in shared memory, and its freshness at
 * the time the caller gave. */
typedef struct ec_policy_state {
    uint64_t generation; /* 1: the start-up policy; +1 per policy applied since */
    ec_policy policy;
    char digest[EC_DIGEST_BUFFER];
    char cipher_summary[EC_CIPHER_SUMMARY_BUFFER];
    bool signed_ok;
    bool from_file;
    int64_t serial;
    bool has_not_after;
    int64_t not_after_unix_ms;
    bool has_max_key_age;
    int64_t max_key_age_seconds;
    int64_t loaded_at_unix_ms;
    bool pending_restart; /* a verified policy file waits for a restart */
    char pending_digest[EC_DIGEST_BUFFER];
    char pending_detail[EC_PENDING_DETAIL_BUFFER];
    uint64_t reloads_rejected;
    bool stale; /* not_after passed, or the key reached max_key_age */
    bool has_deadline;
    int64_t deadline_unix_ms; /* the earlier of the two, when either is set */
    int64_t time_left_ms;     /* deadline - now; negative once passed */
    char stale_reason[EC_STALE_REASON_BUFFER];
} ec_policy_state;

size_t ec_engine_policy_state_size(void);
/* Attaches this process's layer to the block in shared memory; `initialize`
 * lays it out and publishes the start-up policy first (the postmaster). */
void ec_engine_attach_policy_state(void* shared, bool initialize);
/* False before a block is attached. */
bool ec_engine_read_policy_state(int64_t now_unix_ms, ec_policy_state* out);

enum ec_reload_verdict {
    EC_RELOAD_APPLIED = 0,
    EC_RELOAD_UNCHANGED = 1,
    EC_RELOAD_PENDING_RESTART = 2,
    EC_RELOAD_REJECTED = 3,    /* missing, unreadable, malformed or badly signed */
    EC_RELOAD_ROLLED_BACK = 4, /* older than the policy in force */
};

typedef struct ec_reload_report {
    int verdict;     /* ec_reload_verdict */
    int file_status; /* ec_policy_file_status */
    int saved_errno; /* when the file could not be read */
    int64_t serial;  /* the file's, when it parsed */
    char version[EC_POLICY_VERSION_BUFFER];
    char digest[EC_DIGEST_BUFFER];
    char detail[512]; /* why not applied, or what needs the restart */
} ec_reload_report;

/* Reads the policy file again, verifies it and, when it may, publishes it to
 * every process (files created from then on use it). A rejected or rolled
 * back file counts in reloads_rejected. EC_FAILED only when the reload could
 * not be carried out (the accepted serial could not be read or recorded);
 * nothing changed then either. */
ec_status ec_engine_reload_policy(const char* policy_file, const char* public_key,
                                  bool require_signed, int64_t now_unix_ms, ec_reload_report* out,
                                  ec_error* error);

/* ---- The decision trail (core/event_ring.hpp) ---- */

typedef struct ec_event_record {
    uint64_t id;          /* 1 for the first event since start; set when recorded */
    int64_t time_unix_ms; /* set when recorded if 0 */
    int32_t pid;
    int32_t error_number; /* errno, 0 when none */
    int32_t category;     /* -1 for none */
    char backend_type[32];
    char action[32];
    char file[256];
    char detail[256];
    char policy_version[65]; /* the policy in force; filled when recorded */
    char policy_digest[EC_DIGEST_BUFFER];
    char key_id[EC_KEY_ID_BUFFER];
} ec_event_record;

size_t ec_engine_event_ring_size(int capacity);
/* Attaches the ring in shared memory; `initialize` lays it out first. */
void ec_engine_attach_event_ring(void* shared, int capacity, bool initialize);
/* Stamps the event with the time, the policy in force and the key id, and
 * stores it; never blocks. False when no ring is attached. */
bool ec_engine_record_event(ec_event_record* event);
/* Copies the ring (oldest first) for ec_engine_event_at; returns how many
 * events it holds, and sets *dropped to the events lost since start. The
 * copy lives until the next call. */
ec_status ec_engine_snapshot_events(int* count, uint64_t* dropped, ec_error* error);
bool ec_engine_event_at(int index, ec_event_record* out);
/* Events recorded since start and lost since (overwritten by newer ones, or
 * dropped rather than wait for a slot), without copying the ring. */
void ec_engine_event_counts(uint64_t* recorded, uint64_t* dropped);

/* ---- WAL at start-up and shutdown (engine/wal_segments.hpp, sealed_segment.hpp) ---- */

/* Encrypts WAL segments of pg_wal still in plaintext; reports how many. */
ec_status ec_engine_encrypt_plaintext_wal(int* converted, ec_error* error);
/* Counts the segments of pg_wal under another instance's key (every header at
 * start-up is another instance's: the key is new), and copies the key id of
 * the first one found. A pg_wal that cannot be listed counts none. */
ec_status ec_engine_find_foreign_wal(int* segments, char key_id[EC_KEY_ID_BUFFER], ec_error* error);
/* Removes them; reports how many. */
ec_status ec_engine_remove_foreign_wal(int* removed, ec_error* error);

/* The sealed segment (engine/sealed_segment.hpp). At a clean shutdown whose
 * checkpoint is the first record of its segment, the postmaster (which still
 * holds the key) rewrites that segment in plaintext: its page header and the
 * checkpoint record, zeros after, so stock tools read a stopped instance's
 * WAL end truthfully and the next instance can continue from it. Every
 * other segment, readable by no one once the key is gone, is removed, so
 * the sealed one is all the WAL a tool finds. */
ec_status ec_engine_leave_checkpoint_readable(const char* segment_path, uint64_t checkpoint_offset,
                                              uint64_t segment_bytes, ec_error* error);
/* Up to `len` bytes from the start of a plaintext segment; 0 when it is
 * missing, encrypted or unreadable. */
size_t ec_engine_read_plaintext_segment_start(const char* segment_path, uint8_t* buf, size_t len);

/* ---- Counters (engine/counters.hpp); shared memory is src/pg's ---- */

/* One category's counters. This is the C mirror of EC_CATEGORY_COUNTERS
 * (core/counters.hpp), in its order, which is also the order of the SQL
 * columns; engine_api.cpp checks every field against it, as it checks the
 * enums. X(type, name): */
#define EC_COUNTER_VALUES(X)         \
    X(uint64_t, files_encrypted)     \
    X(int64_t, files_open)           \
    X(uint64_t, bytes_encrypted)     \
    X(uint64_t, bytes_decrypted)     \
    X(uint64_t, failures)            \
    X(uint64_t, plaintext_fallbacks) \
    X(uint64_t, integrity_failures)
#define EC_COUNTER_COUNT 7

typedef struct ec_counter_values {
#define EC_COUNTER_VALUE_FIELD(type, name) type name;
    EC_COUNTER_VALUES(EC_COUNTER_VALUE_FIELD)
#undef EC_COUNTER_VALUE_FIELD
} ec_counter_values;

/* The shared block for counting in `processes` per-process slots (more
 * processes than that count into a shared total, correctly but with atomic
 * adds on shared cache lines). */
size_t ec_engine_counters_size(size_t processes);
/* Moves counting into `shared`; `initialize` lays it out first; `merge_local`
 * adds what this process counted before shared memory existed. */
void ec_engine_attach_counters(void* shared, size_t processes, bool initialize, bool merge_local);
/* Back to process-local counters, and to the start-up policy (the policy
 * block of ec_engine_attach_policy_state is detached too), before shared
 * memory goes away. */
void ec_engine_detach_counters(void);
/* False (and *out untouched) for a category outside 0..EC_CATEGORY_COUNT-1. */
bool ec_engine_read_counters(int category, ec_counter_values* out);

/* ---- Inspection for file_status() and scan() (engine/inspection.hpp) ---- */

typedef struct ec_file_report {
    char path[1024];        /* relative to the data directory when inside it */
    int category;           /* -1 when the path is in no category */
    bool has_header;        /* the file carries an ephemeral_crypt header */
    char header_status[32]; /* ok, not_ours, truncated, foreign_instance, ... or "empty" */
    bool encrypted;         /* header present and not a plaintext-audit file */
    bool plaintext_audit;
    char key_id[EC_KEY_ID_BUFFER]; /* from the header; empty without one */
    bool current_instance;
    int64_t physical_size;
    int64_t logical_size;
} ec_file_report;

enum ec_path_problem {
    EC_PATH_OK = 0,
    EC_PATH_EMPTY,       /* "" or NULL */
    EC_PATH_TRAVERSAL,   /* a ".." component */
    EC_PATH_OUTSIDE,     /* outside the data directory and its tablespaces */
    EC_PATH_MISSING,     /* no such file */
    EC_PATH_NOT_REGULAR, /* a directory, a device... */
    EC_PATH_UNREADABLE   /* the path cannot be resolved: error has the errno */
};

/* Inspects one file named relative to the data directory or absolutely
 * inside it or a tablespace. On EC_FAILED, *problem says what is wrong with
 * the path and error explains it. */
ec_status ec_engine_inspect_file(const char* path, ec_file_report* out, int* problem,
                                 ec_error* error);
/* Walks the data directory and tablespaces for every file of the three
 * categories; fetch them with ec_engine_scan_result. The results live until
 * the next scan. */
ec_status ec_engine_scan(int* found, ec_error* error);
bool ec_engine_scan_result(int index, ec_file_report* out);

/* ---- The periodic attestation (engine/attestation.hpp) ---- */

enum {
    EC_ATTESTATION_CHECKS = 5, /* ciphers, got_slots, key_memory, policy_file, data_directory */
    EC_ATTESTATION_NAME_BUFFER = 32,
    EC_ATTESTATION_DETAIL_BUFFER = 512
};

typedef struct ec_attestation_check {
    char name[EC_ATTESTATION_NAME_BUFFER];
    bool passed;
    char detail[EC_ATTESTATION_DETAIL_BUFFER];
} ec_attestation_check;

typedef struct ec_attestation_report {
    int check_count;
    ec_attestation_check checks[EC_ATTESTATION_CHECKS];
    int files_scanned;
    bool scan_cut_short;
} ec_attestation_report;

/* Runs every check in this process (the policy worker) and fills `out`. The
 * policy file (NULL or "" when none is named) is read again and compared
 * with the policy in force; the scan stops after `scan_budget_ms` (0: no
 * limit). EC_FAILED only when the run could not be carried out at all. */
ec_status ec_engine_attest(const char* policy_file, const char* public_key, bool require_signed,
                           int64_t now_unix_ms, int scan_budget_ms, ec_attestation_report* out,
                           ec_error* error);
/* Whether two runs' outcomes differ (a check's name or verdict; details are
 * not compared). */
bool ec_engine_attestation_changed(const ec_attestation_report* previous,
                                   const ec_attestation_report* next);
/* A delay before the next run: the interval with +/- 10 % jitter; 0 for 0. */
int64_t ec_engine_attestation_delay_ms(int64_t interval_ms);
/* Patches the objects whose slots do not hold the layer (as after dlopen). */
void ec_engine_repatch_slots(void);

/* ---- Test-only switches (engine/test_hooks.hpp) ---- */

/* Makes creating encrypted files of `category` fail. */
void ec_engine_inject_category_fault(int category);
/* Test builds only (EPHEMERAL_CRYPT_TEST_HOOKS): writes the instance key, as
 * hex, to `path`. False in builds without the hook. */
bool ec_engine_expose_key_for_testing(const char* path);
/* Test builds only: overwrites this process's lseek GOT slots with libc's
 * own, as a foreign library would. False in builds without the hook. */
bool ec_engine_divert_slot_for_testing(void);

#ifdef __cplusplus
}
#endif
