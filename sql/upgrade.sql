-- ALTER EXTENSION ephemeral_crypt UPDATE from 1.0 to 1.1, then to 1.2. The
-- older objects keep working with this library before each update (it serves
-- every version); each update adds its columns, keeps the grants, and the
-- result is the list of objects, signatures and grants written out at the
-- end of this file.
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

-- Still revoked from PUBLIC and granted to pg_monitor: the same reads as
-- each role (\gexec echoes each statement), refused for the one and
-- answered for the other.
CREATE ROLE regress_ec_upgrade_nobody;
CREATE ROLE regress_ec_upgrade_monitor IN ROLE pg_monitor;
SELECT CASE WHEN n = 1 THEN format('SET ROLE %I', role) END AS set_role, query
  FROM (VALUES (1, 'regress_ec_upgrade_nobody'), (2, 'regress_ec_upgrade_monitor')) AS roles (r, role)
 CROSS JOIN (VALUES (1, 'SELECT count(*) FROM ephemeral_crypt_status()'),
                    (2, 'SELECT count(*) >= 0 FROM ephemeral_crypt_events()'),
                    (3, 'SELECT count(*) FROM ephemeral_crypt_attestation()'),
                    (4, 'SELECT count(*) FROM ephemeral_crypt_encryption_status()'),
                    (5, 'SELECT count(*) FROM ephemeral_crypt_counters')) AS reads (n, query)
 ORDER BY r, n \gexec
RESET ROLE;

-- The extension's objects, their signatures and grants, after the update,
-- with the grants other than the owner's own (so the listing does not depend
-- on the name of the user running the test). This listing is the oracle: there
-- is no full install script of the default version to compare with, since,
-- as in pg_stat_statements, CREATE EXTENSION at the default version runs
-- 1.0's script and these same updates. (PostgreSQL 17 and later also record
-- the view's row type and its array type as members; they come and go with
-- the view, so they are left out.)
CREATE TEMP VIEW extension_members AS
SELECT pg_describe_object(classid, objid, objsubid) AS object,
       coalesce(pg_get_function_arguments(objid) || ' -> ' || pg_get_function_result(objid),
                (SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute
                  WHERE attrelid = objid AND attnum > 0)) AS shape,
       (SELECT string_agg(CASE WHEN grant_item.grantee = 0 THEN 'PUBLIC'
                               ELSE grant_item.grantee::regrole::text END
                          || ' ' || grant_item.privilege_type, ', '
                          ORDER BY grant_item.grantee::regrole::text, grant_item.privilege_type)
          FROM aclexplode(coalesce((SELECT proacl FROM pg_proc WHERE oid = objid),
                                   (SELECT relacl FROM pg_class WHERE oid = objid))) AS grant_item
         WHERE grant_item.grantee <> grant_item.grantor) AS granted
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND classid <> 'pg_type'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ephemeral_crypt');
SELECT * FROM extension_members ORDER BY object COLLATE "C" \gx
CREATE TEMP TABLE after_update AS SELECT * FROM extension_members;
DROP EXTENSION ephemeral_crypt;
-- CREATE EXTENSION without a version installs the default, 1.2, by that chain,
-- to the same objects.
CREATE EXTENSION ephemeral_crypt;
SELECT extversion FROM pg_extension WHERE extname = 'ephemeral_crypt';
(SELECT * FROM after_update EXCEPT SELECT * FROM extension_members)
UNION ALL
(SELECT * FROM extension_members EXCEPT SELECT * FROM after_update);
DROP EXTENSION ephemeral_crypt;
DROP ROLE regress_ec_upgrade_nobody;
DROP ROLE regress_ec_upgrade_monitor;
