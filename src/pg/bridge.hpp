/*
 * bridge.hpp
 *		The C-ABI seam between PostgreSQL-facing code and the C++ engine.
 *
 * PostgreSQL-facing files (which include postgres.h) see only these plain C
 * declarations. The implementation, bridge.cpp, includes src/core and
 * src/interpose and never postgres.h; every entry point catches every C++
 * exception and reports failure through its return value and a message
 * buffer, so no exception ever reaches a PostgreSQL frame and no ereport
 * longjmp ever crosses a C++ destructor.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { EC_CATEGORY_COUNT = 3 }; /* temp_relation, spill, wal: the header's order */

enum ec_degradation { EC_FAIL_CLOSED = 0, EC_FAIL_OPEN_AUDIT = 1 };

enum ec_event {
    EC_EVENT_IO_FAILURE = 0,
    EC_EVENT_HEADER_REJECTED = 1,
    EC_EVENT_PLAINTEXT_FALLBACK = 2,
    EC_EVENT_BYPASS_REFUSED = 3,
};

typedef struct ec_settings {
    bool encrypt[EC_CATEGORY_COUNT];
    int degradation[EC_CATEGORY_COUNT];
    const char* data_dir;
} ec_settings;

typedef struct ec_counter_values {
    uint64_t files_encrypted;
    int64_t files_open;
    uint64_t bytes_encrypted;
    uint64_t bytes_decrypted;
    uint64_t failures;
    uint64_t plaintext_fallbacks;
} ec_counter_values;

typedef void (*ec_event_callback)(int event, int category, const char* path, const char* detail);

/* Creates the instance key and configures the layer. 0 on success. */
int ec_bridge_create_key_and_configure(const ec_settings* settings, ec_event_callback callback,
                                       char* errbuf, size_t errlen);
/* Patches every loaded object. 0 on success; fills the patch figures. With
 * `inject_failure` (the test-only fault switch) it reports failure instead. */
int ec_bridge_install(bool inject_failure, int* objects_patched, int* slots_patched, char* errbuf,
                      size_t errlen);
/* Test-only (built with EPHEMERAL_CRYPT_TEST_HOOKS): writes the instance key,
 * as hex, to `path`, so a test can prove it appears nowhere else. Returns
 * false in builds without the hook. */
bool ec_bridge_expose_key_for_testing(const char* path);
/* Test-only: makes creating encrypted files of `category` fail. */
void ec_bridge_inject_category_fault(int category);
/* Known answers, then a round trip through the installed layer on a real file. */
int ec_bridge_self_test(char* errbuf, size_t errlen);
/* Re-encrypts WAL segments that are still plaintext (written before WAL
 * encryption was turned on). Reports how many were converted. */
int ec_bridge_encrypt_plaintext_wal(int* converted, char* errbuf, size_t errlen);

/* The effective policy: what the settings or a policy file declare. */
typedef struct ec_policy {
    char version[257];
    bool encrypt[EC_CATEGORY_COUNT];
    int degradation[EC_CATEGORY_COUNT];
} ec_policy;

enum ec_policy_file_status {
    EC_POLICY_OK = 0,
    EC_POLICY_MISSING = 1,
    EC_POLICY_UNREADABLE = 2,
    EC_POLICY_MALFORMED = 3,
    EC_POLICY_UNSIGNED = 4,
    EC_POLICY_BAD_SIGNATURE = 5,
};

/* Loads and checks a policy file (signature checked when public_key is not
 * empty). Fills `policy` whenever the file parsed; returns the status and
 * explains anything but EC_POLICY_OK in errbuf. */
int ec_bridge_load_policy_file(const char* path, const char* public_key, ec_policy* policy,
                               char* errbuf, size_t errlen);
/* SHA-256 over the canonical rendering of the policy: 64 hex digits + NUL. */
bool ec_bridge_policy_digest(const ec_policy* policy, char digest[65]);

/* The restart seed: at a clean shutdown whose checkpoint is the first record
 * of its segment, the postmaster (which still holds the key) saves the
 * plaintext of that segment up to the end of the checkpoint record. It holds
 * only a page header and the checkpoint record, the same facts pg_control
 * keeps in plaintext, and lets the next instance rebuild the segment byte for
 * byte under its own key. */
int ec_bridge_save_restart_seed(const char* segment_path, uint64_t checkpoint_offset,
                                uint32_t timeline, uint64_t checkpoint_lsn, char* errbuf,
                                size_t errlen);
void ec_bridge_discard_restart_seed(void);
/* Rebuilds `segment_path` from the seed if the seed describes exactly this
 * checkpoint. Returns 1 when rebuilt, 0 when no matching seed exists, -1 on
 * error. */
int ec_bridge_rebuild_from_seed(const char* segment_path, uint32_t timeline,
                                uint64_t checkpoint_lsn, uint64_t segment_bytes, char* errbuf,
                                size_t errlen);
/* Removes every WAL segment in pg_wal whose header belongs to another
 * instance. Returns how many were removed, -1 on error. */
int ec_bridge_remove_foreign_wal(char* errbuf, size_t errlen);

/* Counts WAL segments in pg_wal that carry an encryption header of another
 * instance (every header at startup is another instance's: the key is new).
 * Copies the key id of the first one found into key_id (17 bytes). */
int ec_bridge_count_foreign_wal(char* key_id, size_t key_id_len);

const char* ec_bridge_key_id(void); /* 16 hex digits; static storage */
int64_t ec_bridge_key_created_at_unix_ms(void);
const char* ec_bridge_category_name(int category);
const char* ec_bridge_cipher_name(void);

size_t ec_bridge_counters_size(void);
/* Moves counting into `shared`; `initialize` zeroes it first; `merge_local`
 * adds what this process counted before shared memory existed. */
void ec_bridge_attach_counters(void* shared, bool initialize, bool merge_local);
void ec_bridge_read_counters(int category, ec_counter_values* out);
/* Back to process-local counters, before shared memory goes away. */
void ec_bridge_detach_counters(void);

/* What file_status and scan report about one file: headers only, never data. */
typedef struct ec_file_report {
    char path[1024];        /* relative to the data directory when inside it */
    int category;           /* -1 when the path is in no category */
    bool has_header;        /* the file carries an ephemeral_crypt header */
    char header_status[32]; /* ok, not_ours, truncated, foreign_instance, ... or "empty" */
    bool encrypted;         /* header present and not a plaintext-audit file */
    bool plaintext_audit;
    char key_id[17]; /* from the header; empty without one */
    bool current_instance;
    int64_t physical_size;
    int64_t logical_size;
} ec_file_report;

enum ec_path_error {
    EC_PATH_OK = 0,
    EC_PATH_EMPTY = 1,
    EC_PATH_TRAVERSAL = 2,
    EC_PATH_OUTSIDE = 3,
    EC_PATH_MISSING = 4,
    EC_PATH_NOT_REGULAR = 5,
    EC_PATH_UNREADABLE = 6,
};

/* Inspects one file named relative to the data directory or absolutely
 * inside it or a tablespace. Returns an ec_path_error; errbuf explains. */
int ec_bridge_inspect_file(const char* path, ec_file_report* out, char* errbuf, size_t errlen);

/* Walks the data directory and tablespaces for every file of the three
 * categories. Returns how many were found; fetch them with
 * ec_bridge_scan_result. The results live until the next scan. */
int ec_bridge_scan(void);
bool ec_bridge_scan_result(int index, ec_file_report* out);

#ifdef __cplusplus
}
#endif
