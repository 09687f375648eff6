/* ephemeral_crypt--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ephemeral_crypt UPDATE TO '1.1'" to load this file. \quit

-- 1.1: a cipher per category (AES-256-XTS or AES-256-GCM) and the
-- integrity_failures counter of the authenticated mode. Both are new columns
-- of ephemeral_crypt_encryption_status(), after the 1.0 ones, so the library
-- serves a 1.0 and a 1.1 definition alike; the counters view gains the
-- counter. A function's result columns cannot be changed in place, so the
-- function and the view that reads it are made again, with their grants.

DROP VIEW ephemeral_crypt_counters;
DROP FUNCTION ephemeral_crypt_encryption_status();

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

REVOKE ALL ON FUNCTION ephemeral_crypt_encryption_status() FROM PUBLIC;
REVOKE ALL ON ephemeral_crypt_counters FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ephemeral_crypt_encryption_status() TO pg_monitor;
GRANT SELECT ON ephemeral_crypt_counters TO pg_monitor;
