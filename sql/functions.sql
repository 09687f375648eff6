-- Every SQL function and the counters view: columns, types, values that do
-- not depend on the run, bad inputs, and access control.
CREATE EXTENSION ephemeral_crypt;

-- The interface: names, argument and result types.
SELECT p.proname, pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS result
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'ephemeral_crypt'
 ORDER BY p.proname;

SELECT attname, format_type(atttypid, atttypmod) AS type
  FROM pg_attribute
 WHERE attrelid = 'ephemeral_crypt_counters'::regclass AND attnum > 0
 ORDER BY attnum;

-- Status of this instance.
SELECT ready,
       instance_key_id ~ '^[0-9a-f]{16}$' AS key_id_is_a_fingerprint,
       key_created_at <= now() AS created_in_the_past,
       key_age >= interval '0' AS age_is_positive,
       policy_version,
       policy_digest ~ '^[0-9a-f]{64}$' AS digest_is_sha256,
       policy_signed,
       cipher,
       layer_state,
       layer_objects_patched > 0 AS objects_patched,
       layer_slots_patched > 0 AS slots_patched
  FROM ephemeral_crypt_status();
-- 1.2's lifecycle columns, for a policy from the settings: no serial, no
-- deadline, loaded at start-up, nothing waiting, no refused reload.
SELECT not_ready_reason, policy_serial, policy_not_after, policy_time_left, policy_max_key_age,
       policy_loaded_at BETWEEN key_created_at - interval '1 minute' AND now() AS loaded_at_start,
       pending_restart, policy_reloads_rejected
  FROM ephemeral_crypt_status();
-- The decision trail: what the ring holds is what it recorded less what it
-- dropped.
SELECT events_recorded >= events_dropped AS counts_consistent,
       (SELECT count(*) FROM ephemeral_crypt_events()) = events_recorded - events_dropped
         AS ring_holds_the_rest
  FROM ephemeral_crypt_status();
-- The attestation, off by default: one row, no check, no run.
SELECT enabled, last_run, check_name, passed, next_run FROM ephemeral_crypt_attestation();
SELECT ephemeral_crypt_policy_version();
SELECT ephemeral_crypt_key_age() >= interval '0' AS key_age_is_positive;
SELECT ephemeral_crypt_key_age() <= (SELECT key_age FROM ephemeral_crypt_status()) + interval '1 minute'
       AS key_age_agrees;

SELECT category, enabled, degradation, cipher, integrity_failures
  FROM ephemeral_crypt_encryption_status();
SELECT category, enabled, integrity_failures FROM ephemeral_crypt_counters;

-- A spilled sort held open by a cursor is on disk, encrypted, under this key.
SET work_mem = '64kB';
BEGIN;
DECLARE sorted CURSOR FOR SELECT g FROM generate_series(1, 100000) g ORDER BY g DESC;
FETCH 1 FROM sorted;
SELECT count(*) > 0 AS spill_files_exist,
       bool_and(encrypted) AS all_encrypted,
       bool_and(current_instance) AS all_under_this_key,
       bool_and(key_id = (SELECT instance_key_id FROM ephemeral_crypt_status())) AS key_ids_match,
       bool_and(physical_size - logical_size = 65536) AS data_starts_at_64_kib
  FROM ephemeral_crypt_scan() WHERE category = 'spill';
SELECT category, encrypted, header_status, current_instance, plaintext_audit, has_header
  FROM ephemeral_crypt_file_status(
       (SELECT file FROM ephemeral_crypt_scan() WHERE category = 'spill' ORDER BY file LIMIT 1));
COMMIT;
RESET work_mem;

-- A file outside the categories is reported, not judged.
SELECT file, category, encrypted, header_status, key_id, current_instance, has_header,
       logical_size = physical_size AS sizes_equal
  FROM ephemeral_crypt_file_status('global/pg_control');

-- Bad inputs each give a clear error.
SELECT * FROM ephemeral_crypt_file_status(NULL);
SELECT * FROM ephemeral_crypt_file_status('');
SELECT * FROM ephemeral_crypt_file_status('../postgresql.conf');
SELECT * FROM ephemeral_crypt_file_status('base/../global/pg_control');
SELECT * FROM ephemeral_crypt_file_status('/etc/passwd');
SELECT * FROM ephemeral_crypt_file_status('base/999999/nonexistent');
SELECT * FROM ephemeral_crypt_file_status('base');

-- Revoked from PUBLIC, granted to pg_monitor.
CREATE ROLE regress_ec_nobody;
CREATE ROLE regress_ec_monitor IN ROLE pg_monitor;
SET ROLE regress_ec_nobody;
SELECT ready FROM ephemeral_crypt_status();
SELECT ephemeral_crypt_policy_version();
SELECT ephemeral_crypt_key_age();
SELECT count(*) FROM ephemeral_crypt_encryption_status();
SELECT count(*) FROM ephemeral_crypt_file_status('global/pg_control');
SELECT count(*) FROM ephemeral_crypt_scan();
SELECT count(*) FROM ephemeral_crypt_counters;
RESET ROLE;
SET ROLE regress_ec_monitor;
SELECT ready FROM ephemeral_crypt_status();
SELECT ephemeral_crypt_policy_version();
SELECT ephemeral_crypt_key_age() >= interval '0' AS allowed;
SELECT count(*) FROM ephemeral_crypt_encryption_status();
SELECT category FROM ephemeral_crypt_file_status('global/pg_control');
SELECT count(*) >= 0 AS allowed FROM ephemeral_crypt_scan();
SELECT count(*) FROM ephemeral_crypt_counters;
RESET ROLE;
DROP ROLE regress_ec_nobody;
DROP ROLE regress_ec_monitor;
DROP EXTENSION ephemeral_crypt;
