/*-------------------------------------------------------------------------
 *
 * guc.cpp
 *		The ephemeral_crypt.* settings.
 *
 * Every setting is PGC_POSTMASTER: encryption is decided once, in the
 * postmaster, before any child exists. (A signed policy file is read again
 * on reload, policy_lifecycle.cpp.) ephemeral_crypt.stale_policy_action is
 * PGC_SIGHUP: it decides only whether logins are refused while the policy
 * is stale, never what is encrypted; so are the attestation's interval and
 * scan budget (attestation.cpp), which decide only when and how long it
 * checks. The names are an interface ops tooling depends on (the settings
 * table in docs/configuration.md); keep them stable.
 *
 * ephemeral_crypt.temp_relation_cipher and ephemeral_crypt.spill_cipher
 * choose AES-256-XTS (the default, format v1) or AES-256-GCM (format v2,
 * which detects changes to the data). There is no wal_cipher: WAL stays on
 * XTS, because a torn write must damage only what it tore.
 *
 * ephemeral_crypt.wal_degradation accepts only fail_closed: WAL written in
 * plaintext after an encryption failure would silently defeat WAL
 * encryption. Its check hook rejects anything else when the value is parsed
 * (so ALTER SYSTEM and a reload refuse it at once). PostgreSQL turns a
 * check-hook failure into a WARNING while a library defines its settings,
 * and keeps the default, so the hook also records the rejection and
 * ec_check_rejected_settings() refuses the start right after the settings
 * are defined: a server configured to degrade WAL never comes up as if it
 * had not been.
 *
 *-------------------------------------------------------------------------
 */
#include "pg/pg_includes.hpp"

#include "pg/extension.hpp"

/*---- Setting variables ----*/

char* ec_policy_file = nullptr;
char* ec_policy_public_key = nullptr;
bool ec_require_signed_policy = false;
int ec_test_fault = EC_FAULT_NONE;
char* ec_wal_staging_directory = nullptr;
int ec_stale_policy_action = EC_STALE_WARN;
int ec_event_ring_size = 1024;

namespace {

char* policy_version = nullptr;
bool encrypt_category[EC_CATEGORY_COUNT] = {true, true, false};
int degradation_setting[EC_CATEGORY_COUNT] = {EC_FAIL_CLOSED, EC_FAIL_CLOSED, EC_FAIL_CLOSED};
int cipher_setting[EC_CATEGORY_COUNT] = {EC_CIPHER_AES_256_XTS, EC_CIPHER_AES_256_XTS,
                                         EC_CIPHER_AES_256_XTS};
bool wal_degradation_rejected = false;
bool wal_staging_directory_rejected = false;

const struct config_enum_entry degradation_options[] = {
    {"fail_closed", EC_FAIL_CLOSED, false},
    {"fail_open_audit", EC_FAIL_OPEN_AUDIT, false},
    {nullptr, 0, false},
};

const struct config_enum_entry cipher_options[] = {
    {"aes-256-xts", EC_CIPHER_AES_256_XTS, false},
    {"aes-256-gcm", EC_CIPHER_AES_256_GCM, false},
    {nullptr, 0, false},
};

const struct config_enum_entry stale_policy_action_options[] = {
    {"warn", EC_STALE_WARN, false},
    {"refuse_connections", EC_STALE_REFUSE_CONNECTIONS, false},
    {nullptr, 0, false},
};

const struct config_enum_entry test_fault_options[] = {
    {"none", EC_FAULT_NONE, false},
    {"install_layer", EC_FAULT_INSTALL_LAYER, false},
    {"temp_relation", EC_CATEGORY_TEMP_RELATION, false},
    {"spill", EC_CATEGORY_SPILL, false},
    {"wal", EC_CATEGORY_WAL, false},
    {nullptr, 0, false},
};

const char* const wal_degradation_detail =
    "WAL written in plaintext after an encryption failure would silently defeat WAL "
    "encryption.";
const char* const wal_degradation_hint =
    "Set ephemeral_crypt.wal_degradation = fail_closed, or remove it.";
const char* const wal_staging_directory_detail =
    "It must be an absolute path of letters, digits and \"/._-\" only, because it replaces %p "
    "in archive_command and restore_command.";

/*---- Function declarations ----*/

void define_setting(const char* name, const char* description, const char* long_description,
                    bool* variable, bool default_value);
void define_setting(const char* name, const char* description, const char* long_description,
                    char** variable, const char* default_value,
                    GucStringCheckHook check_hook = nullptr);
void define_setting(const char* name, const char* description, const char* long_description,
                    int* variable, int default_value, const config_enum_entry* options,
                    int flags = 0, GucEnumCheckHook check_hook = nullptr);
bool check_wal_degradation(int* newval, void** extra, GucSource source);
bool check_wal_staging_directory(char** newval, void** extra, GucSource source);

/*---- The definition helper: every setting is PGC_POSTMASTER ----*/

void define_setting(const char* name, const char* description, const char* long_description,
                    bool* variable, bool default_value) {
    DefineCustomBoolVariable(name, description, long_description, variable, default_value,
                             PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
}

void define_setting(const char* name, const char* description, const char* long_description,
                    char** variable, const char* default_value, GucStringCheckHook check_hook) {
    DefineCustomStringVariable(name, description, long_description, variable, default_value,
                               PGC_POSTMASTER, 0, check_hook, nullptr, nullptr);
}

void define_setting(const char* name, const char* description, const char* long_description,
                    int* variable, int default_value, const config_enum_entry* options, int flags,
                    GucEnumCheckHook check_hook) {
    DefineCustomEnumVariable(name, description, long_description, variable, default_value, options,
                             PGC_POSTMASTER, flags, check_hook, nullptr, nullptr);
}

/*---- Check hooks ----*/

bool check_wal_degradation(int* newval, void**, GucSource) {
    if (*newval == EC_FAIL_CLOSED) {
        return true;
    }
    GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
    GUC_check_errdetail("%s", wal_degradation_detail);
    GUC_check_errhint("%s", wal_degradation_hint);
    wal_degradation_rejected = true;
    return false;
}

bool check_wal_staging_directory(char** newval, void**, GucSource) {
    if (ec_engine_is_shell_safe_path(*newval)) {
        return true;
    }
    GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
    GUC_check_errdetail("%s", wal_staging_directory_detail);
    wal_staging_directory_rejected = true;
    return false;
}

}  // namespace

/*---- Entry points ----*/

void ec_define_settings() {
    define_setting("ephemeral_crypt.encrypt_temp_relations",
                   gettext_noop("Encrypts the files of temporary relations."), nullptr,
                   &encrypt_category[EC_CATEGORY_TEMP_RELATION], true);
    define_setting("ephemeral_crypt.encrypt_spill_files",
                   gettext_noop("Encrypts spill files: work_mem temporary files, shared "
                                "filesets and logical decoding spills."),
                   nullptr, &encrypt_category[EC_CATEGORY_SPILL], true);
    define_setting(
        "ephemeral_crypt.encrypt_wal",
        gettext_noop("Encrypts local WAL segments under the instance key."),
        gettext_noop("Local WAL then survives only as long as the instance: "
                     "durability must come from a standby or the archive (archive_command "
                     "or archive_library)."),
        &encrypt_category[EC_CATEGORY_WAL], false);
    define_setting("ephemeral_crypt.wal_staging_directory",
                   gettext_noop("Memory file system directory where archive_command and "
                                "restore_command see encrypted WAL in plaintext."),
                   gettext_noop("Each command gets a private mode-0700 directory here holding "
                                "one segment, removed after the command. It must be on tmpfs "
                                "or ramfs, so plaintext WAL never reaches a disk."),
                   &ec_wal_staging_directory, "/dev/shm", check_wal_staging_directory);
    define_setting("ephemeral_crypt.policy_version",
                   gettext_noop("Policy version declared by the control plane."), nullptr,
                   &policy_version, "");
    define_setting("ephemeral_crypt.temp_relation_degradation",
                   gettext_noop("What happens when a temporary relation file cannot be "
                                "encrypted."),
                   nullptr, &degradation_setting[EC_CATEGORY_TEMP_RELATION], EC_FAIL_CLOSED,
                   degradation_options);
    define_setting("ephemeral_crypt.spill_degradation",
                   gettext_noop("What happens when a spill file cannot be encrypted."), nullptr,
                   &degradation_setting[EC_CATEGORY_SPILL], EC_FAIL_CLOSED, degradation_options);
    define_setting("ephemeral_crypt.wal_degradation",
                   gettext_noop("What happens when WAL cannot be encrypted; only fail_closed is "
                                "accepted."),
                   nullptr, &degradation_setting[EC_CATEGORY_WAL], EC_FAIL_CLOSED,
                   degradation_options, 0, check_wal_degradation);
    define_setting("ephemeral_crypt.temp_relation_cipher",
                   gettext_noop("Cipher of temporary relation files: aes-256-xts or aes-256-gcm."),
                   gettext_noop("aes-256-gcm also detects changes to the files' data: a read of "
                                "changed data fails instead of returning it."),
                   &cipher_setting[EC_CATEGORY_TEMP_RELATION], EC_CIPHER_AES_256_XTS,
                   cipher_options);
    define_setting("ephemeral_crypt.spill_cipher",
                   gettext_noop("Cipher of spill files: aes-256-xts or aes-256-gcm."),
                   gettext_noop("aes-256-gcm also detects changes to the files' data: a read of "
                                "changed data fails instead of returning it."),
                   &cipher_setting[EC_CATEGORY_SPILL], EC_CIPHER_AES_256_XTS, cipher_options);
    define_setting("ephemeral_crypt.policy_file",
                   gettext_noop("Policy file (version, category settings, Ed25519 signature); "
                                "it overrides the per-category settings."),
                   gettext_noop("Relative paths are taken from the data directory."),
                   &ec_policy_file, "");
    define_setting("ephemeral_crypt.policy_public_key",
                   gettext_noop("Ed25519 public key (hex or base64) that policy files must be "
                                "signed with."),
                   nullptr, &ec_policy_public_key, "");
    define_setting("ephemeral_crypt.require_signed_policy",
                   gettext_noop("Refuses to start unless the policy file is signed by "
                                "ephemeral_crypt.policy_public_key."),
                   nullptr, &ec_require_signed_policy, false);
    DefineCustomEnumVariable("ephemeral_crypt.stale_policy_action",
                             gettext_noop("What a stale policy (past its not_after, or its key "
                                          "older than max_key_age) does besides the WARNING: "
                                          "warn, or refuse_connections."),
                             gettext_noop("refuse_connections refuses new connections of roles "
                                          "that are not superusers while the policy is stale; "
                                          "encryption is never weakened either way."),
                             &ec_stale_policy_action, EC_STALE_WARN, stale_policy_action_options,
                             PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("ephemeral_crypt.event_ring_size",
                            gettext_noop("Events the decision trail keeps in shared memory "
                                         "(ephemeral_crypt_events()); older ones are dropped "
                                         "and counted."),
                            nullptr, &ec_event_ring_size, 1024, 16, 65536, PGC_POSTMASTER, 0,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable("ephemeral_crypt.attestation_interval",
                            gettext_noop("How often the policy worker re-checks what start-up "
                                         "proved (ephemeral_crypt_attestation()); 0 turns it "
                                         "off."),
                            gettext_noop("Each run waits the interval +/- 10 %."),
                            &ec_attestation_interval_ms, 0, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable("ephemeral_crypt.attestation_scan_budget",
                            gettext_noop("The longest an attestation run scans the data "
                                         "directory; a scan cut short says so. 0: no limit."),
                            nullptr, &ec_attestation_scan_budget_ms, 2000, 0, INT_MAX, PGC_SIGHUP,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable("ephemeral_crypt.test_divert_got_slot",
                             gettext_noop("Test only: the policy worker overwrites its own lseek "
                                          "GOT slot (test builds, EPHEMERAL_CRYPT_TEST_FAULTS=1)."),
                             nullptr, &ec_test_divert_got_slot, false, PGC_SIGHUP,
                             GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
    define_setting("ephemeral_crypt.test_fault",
                   gettext_noop("Test only: injects an encryption failure (requires "
                                "EPHEMERAL_CRYPT_TEST_FAULTS=1)."),
                   nullptr, &ec_test_fault, EC_FAULT_NONE, test_fault_options,
                   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE);
    MarkGUCPrefixReserved("ephemeral_crypt");
}

bool ec_test_faults_allowed() {
    const char* allowed = getenv("EPHEMERAL_CRYPT_TEST_FAULTS");
    return allowed != nullptr && strcmp(allowed, "1") == 0;
}

void ec_check_rejected_settings() {
    if (wal_degradation_rejected) {
        ereport(FATAL,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                 errmsg("ephemeral_crypt.wal_degradation must be fail_closed"),
                 errdetail("%s", wal_degradation_detail), errhint("%s", wal_degradation_hint)));
    }
    if (wal_staging_directory_rejected) {
        ereport(FATAL, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid value for ephemeral_crypt.wal_staging_directory"),
                        errdetail("%s", wal_staging_directory_detail)));
    }
    // A stray test-only setting in production stops the server instead of
    // weakening it.
    if (ec_test_fault == EC_FAULT_NONE) {
        return;
    }
    if (!ec_test_faults_allowed()) {
        ereport(FATAL,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                 errmsg("ephemeral_crypt.test_fault is a test-only setting"),
                 errhint("Remove ephemeral_crypt.test_fault from the configuration; tests enable "
                         "it with EPHEMERAL_CRYPT_TEST_FAULTS=1 in the server's environment.")));
    }
    ereport(WARNING, (errcode(ERRCODE_WARNING),
                      errmsg("ephemeral_crypt: test fault \"%s\" is active",
                             GetConfigOption("ephemeral_crypt.test_fault", false, false))));
}

ec_policy ec_policy_from_settings() {
    ec_policy policy = {};
    snprintf(policy.version, sizeof(policy.version), "%s",
             policy_version != nullptr ? policy_version : "");
    for (int category = 0; category < EC_CATEGORY_COUNT; ++category) {
        policy.encrypt[category] = encrypt_category[category];
        policy.degradation[category] = degradation_setting[category];
        policy.cipher[category] = cipher_setting[category];
    }
    return policy;
}
