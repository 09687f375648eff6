/* ephemeral_crypt--1.1--1.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ephemeral_crypt UPDATE TO '1.2'" to load this file. \quit

-- 1.2: the policy's life after start-up. ephemeral_crypt_status() gains, after
-- the 1.0 columns, why ready is false, the policy's serial, not_after, the
-- time left before it or the key goes stale, max_key_age, when the policy in
-- force was loaded, whether a reloaded policy waits for a restart, and how
-- many reloads were refused. A function's result columns cannot be changed
-- in place, so it is made again, with its grants. ephemeral_crypt_events()
-- reads the decision trail, and status counts the events recorded and
-- dropped. ephemeral_crypt_attestation() reads the last attestation run.

DROP FUNCTION ephemeral_crypt_status();

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

-- The decision trail: the non-routine decisions held in shared memory.
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

REVOKE ALL ON FUNCTION ephemeral_crypt_status() FROM PUBLIC;
REVOKE ALL ON FUNCTION ephemeral_crypt_events() FROM PUBLIC;
REVOKE ALL ON FUNCTION ephemeral_crypt_attestation() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ephemeral_crypt_status() TO pg_monitor;
GRANT EXECUTE ON FUNCTION ephemeral_crypt_events() TO pg_monitor;
GRANT EXECUTE ON FUNCTION ephemeral_crypt_attestation() TO pg_monitor;
