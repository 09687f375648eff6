-- The extension installs, is listed, and drops cleanly.
CREATE EXTENSION ephemeral_crypt;
SELECT extname, extversion FROM pg_extension WHERE extname = 'ephemeral_crypt';
SHOW shared_preload_libraries;
DROP EXTENSION ephemeral_crypt;
SELECT count(*) FROM pg_extension WHERE extname = 'ephemeral_crypt';
