-- ALTER EXTENSION ephemeral_crypt UPDATE from 1.0 to 1.1, then to 1.2. The
-- older objects keep working with this library before each update (it serves
-- every version); each update adds its columns, keeps the grants, and the
-- result has the same objects a fresh installation of the default version,
-- 1.2, has.
CREATE EXTENSION ephemeral_crypt VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'ephemeral_crypt';
SELECT pg_get_function_arguments('ephemeral_crypt_encryption_status'::regproc) AS columns_1_0;
SELECT category, enabled, degradation, failures, plaintext_fallbacks
  FROM ephemeral_crypt_encryption_status();
SELECT string_agg(attname, ', ' ORDER BY attnum) AS counters_columns_1_0
  FROM pg_attribute WHERE attrelid = 'ephemeral_crypt_counters'::regclass AND attnum > 0;

ALTER EXTENSION ephemeral_crypt UPDATE TO '1.1';
SELECT extversion FROM pg_extension WHERE extname = 'ephemeral_crypt';
SELECT pg_get_function_arguments('ephemeral_crypt_encryption_status'::regproc) AS columns_1_1;
SELECT category, enabled, degradation, cipher, integrity_failures
  FROM ephemeral_crypt_encryption_status();
SELECT category, enabled, integrity_failures FROM ephemeral_crypt_counters;
-- 1.1's status, twelve columns, served by the same library.
SELECT ready, policy_version, policy_signed, cipher FROM ephemeral_crypt_status();

ALTER EXTENSION ephemeral_crypt UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'ephemeral_crypt';
SELECT pg_get_function_arguments('ephemeral_crypt_status'::regproc) AS status_columns_1_2;
SELECT ready, not_ready_reason, policy_serial, policy_not_after, policy_time_left,
       policy_max_key_age, policy_loaded_at <= now() AS loaded_before_now, pending_restart,
       policy_reloads_rejected
  FROM ephemeral_crypt_status();

-- Still revoked from PUBLIC and granted to pg_monitor.
CREATE ROLE regress_ec_upgrade_nobody;
CREATE ROLE regress_ec_upgrade_monitor IN ROLE pg_monitor;
SET ROLE regress_ec_upgrade_nobody;
SELECT count(*) FROM ephemeral_crypt_status();
SELECT count(*) >= 0 FROM ephemeral_crypt_events();
SELECT count(*) FROM ephemeral_crypt_attestation();
SELECT count(*) FROM ephemeral_crypt_encryption_status();
SELECT count(*) FROM ephemeral_crypt_counters;
RESET ROLE;
SET ROLE regress_ec_upgrade_monitor;
SELECT count(*) FROM ephemeral_crypt_status();
SELECT count(*) >= 0 FROM ephemeral_crypt_events();
SELECT count(*) FROM ephemeral_crypt_attestation();
SELECT count(*) FROM ephemeral_crypt_encryption_status();
SELECT count(*) FROM ephemeral_crypt_counters;
RESET ROLE;

-- The extension's objects, their signatures and grants, after the update...
-- (PostgreSQL 17 and later also record the view's row type and its array
-- type as members; they come and go with the view, so they are left out.)
CREATE TEMP VIEW extension_members AS
SELECT pg_describe_object(classid, objid, objsubid) AS object,
       coalesce(pg_get_function_arguments(objid) || ' -> ' || pg_get_function_result(objid),
                (SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute
                  WHERE attrelid = objid AND attnum > 0)) AS shape,
       coalesce((SELECT proacl::text FROM pg_proc WHERE oid = objid),
                (SELECT relacl::text FROM pg_class WHERE oid = objid)) AS acl
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND classid <> 'pg_type'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ephemeral_crypt');
CREATE TEMP TABLE after_update AS SELECT * FROM extension_members;
DROP EXTENSION ephemeral_crypt;
-- ...are those of a fresh installation of the default version, 1.2.
CREATE EXTENSION ephemeral_crypt;
SELECT extversion FROM pg_extension WHERE extname = 'ephemeral_crypt';
SELECT count(*) AS objects FROM after_update;
(SELECT * FROM after_update EXCEPT SELECT * FROM extension_members)
UNION ALL
(SELECT * FROM extension_members EXCEPT SELECT * FROM after_update);
DROP EXTENSION ephemeral_crypt;
DROP ROLE regress_ec_upgrade_nobody;
DROP ROLE regress_ec_upgrade_monitor;
