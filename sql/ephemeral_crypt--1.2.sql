/* ephemeral_crypt--1.2.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION ephemeral_crypt" to load this file. \quit

CREATE FUNCTION ephemeral_crypt_status(
    OUT ready boolean,
    OUT instance_key_id text,
    OUT key_created_at timestamptz,
    OUT key_age interval,
    OUT policy_version text,
    OUT policy_digest text,
    OUT policy_signed boolean,
    OUT cipher text,
    OUT layer_state text,
    OUT layer_objects_patched integer,
    OUT layer_slots_patched integer,
    OUT wal_segments_converted integer,
    OUT not_ready_reason text,
    OUT policy_serial bigint,
    OUT policy_not_after timestamptz,
    OUT policy_time_left interval,
    OUT policy_max_key_age interval,
    OUT policy_loaded_at timestamptz,
    OUT pending_restart boolean,
    OUT policy_reloads_rejected bigint,
    OUT events_recorded bigint,
    OUT events_dropped bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'ephemeral_crypt_status'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE FUNCTION ephemeral_crypt_policy_version()
RETURNS text
AS 'MODULE_PATHNAME', 'ephemeral_crypt_policy_version'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

CREATE FUNCTION ephemeral_crypt_key_age()
RETURNS interval
AS 'MODULE_PATHNAME', 'ephemeral_crypt_key_age'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE FUNCTION ephemeral_crypt_encryption_status(
    OUT category text,
    OUT enabled boolean,
    OUT degradation text,
    OUT files_encrypted bigint,
    OUT files_open bigint,
    OUT bytes_encrypted bigint,
    OUT bytes_decrypted bigint,
    OUT failures bigint,
    OUT plaintext_fallbacks bigint,
    OUT integrity_failures bigint,
    OUT cipher text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ephemeral_crypt_encryption_status'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

-- Not STRICT: a NULL path is an error to report, not a NULL result.
CREATE FUNCTION ephemeral_crypt_file_status(
    path text,
    OUT file text,
    OUT category text,
    OUT encrypted boolean,
    OUT header_status text,
    OUT key_id text,
    OUT current_instance boolean,
    OUT plaintext_audit boolean,
    OUT logical_size bigint,
    OUT physical_size bigint,
    OUT has_header boolean)
RETURNS record
AS 'MODULE_PATHNAME', 'ephemeral_crypt_file_status'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL SAFE;

CREATE FUNCTION ephemeral_crypt_scan(
    OUT file text,
    OUT category text,
    OUT encrypted boolean,
    OUT header_status text,
    OUT key_id text,
    OUT current_instance boolean,
    OUT plaintext_audit boolean,
    OUT logical_size bigint,
    OUT physical_size bigint,
    OUT has_header boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ephemeral_crypt_scan'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE FUNCTION ephemeral_crypt_events(
    OUT event_id bigint,
    OUT event_time timestamptz,
    OUT pid integer,
    OUT backend_type text,
    OUT category text,
    OUT file text,
    OUT action text,
    OUT error_number integer,
    OUT policy_version text,
    OUT policy_digest text,
    OUT key_id text,
    OUT detail text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ephemeral_crypt_events'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

-- The last periodic attestation run (ephemeral_crypt.attestation_interval):
-- one row per check, each with the run's figures; one row with a null check
-- while attestation is off or has not run.
CREATE FUNCTION ephemeral_crypt_attestation(
    OUT enabled boolean,
    OUT last_run timestamptz,
    OUT check_name text,
    OUT passed boolean,
    OUT detail text,
    OUT duration_ms double precision,
    OUT cpu_ms double precision,
    OUT next_run timestamptz,
    OUT files_scanned integer,
    OUT scan_cut_short boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ephemeral_crypt_attestation'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

-- One row per category, in the shape a postgres_exporter custom query reads
-- as it is: a label column and counters.
CREATE VIEW ephemeral_crypt_counters AS
    SELECT category,
           enabled::int AS enabled,
           files_encrypted,
           files_open,
           bytes_encrypted,
           bytes_decrypted,
           failures,
           plaintext_fallbacks,
           integrity_failures
      FROM ephemeral_crypt_encryption_status();

REVOKE ALL ON FUNCTION ephemeral_crypt_status() FROM PUBLIC;
REVOKE ALL ON FUNCTION ephemeral_crypt_policy_version() FROM PUBLIC;
REVOKE ALL ON FUNCTION ephemeral_crypt_key_age() FROM PUBLIC;
REVOKE ALL ON FUNCTION ephemeral_crypt_encryption_status() FROM PUBLIC;
REVOKE ALL ON FUNCTION ephemeral_crypt_file_status(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION ephemeral_crypt_scan() FROM PUBLIC;
REVOKE ALL ON FUNCTION ephemeral_crypt_events() FROM PUBLIC;
REVOKE ALL ON FUNCTION ephemeral_crypt_attestation() FROM PUBLIC;
REVOKE ALL ON ephemeral_crypt_counters FROM PUBLIC;

GRANT EXECUTE ON FUNCTION ephemeral_crypt_status() TO pg_monitor;
GRANT EXECUTE ON FUNCTION ephemeral_crypt_policy_version() TO pg_monitor;
GRANT EXECUTE ON FUNCTION ephemeral_crypt_key_age() TO pg_monitor;
GRANT EXECUTE ON FUNCTION ephemeral_crypt_encryption_status() TO pg_monitor;
GRANT EXECUTE ON FUNCTION ephemeral_crypt_file_status(text) TO pg_monitor;
GRANT EXECUTE ON FUNCTION ephemeral_crypt_scan() TO pg_monitor;
GRANT EXECUTE ON FUNCTION ephemeral_crypt_events() TO pg_monitor;
GRANT EXECUTE ON FUNCTION ephemeral_crypt_attestation() TO pg_monitor;
GRANT SELECT ON ephemeral_crypt_counters TO pg_monitor;
