/* ephemeral_crypt--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION ephemeral_crypt" to load this file. \quit

CREATE FUNCTION ephemeral_crypt_status(
    OUT ready boolean,
    OUT instance_key_id text,
    OUT key_created_at timestamptz,
    OUT key_age interval,
    OUT policy_version text,
    OUT cipher text,
    OUT layer_objects_patched integer,
    OUT layer_slots_patched integer)
RETURNS record
AS 'MODULE_PATHNAME', 'ephemeral_crypt_status'
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
    OUT plaintext_fallbacks bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ephemeral_crypt_encryption_status'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

REVOKE ALL ON FUNCTION ephemeral_crypt_status() FROM PUBLIC;
REVOKE ALL ON FUNCTION ephemeral_crypt_encryption_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ephemeral_crypt_status() TO pg_monitor;
GRANT EXECUTE ON FUNCTION ephemeral_crypt_encryption_status() TO pg_monitor;
