
# Guard rails: settings that must stop the server, and the startup report.
#
#  - ephemeral_crypt.wal_staging_directory that is not an absolute, shell-safe
#    path: refused; one on a disk or missing: the server starts, with a
#    WARNING that names the setting;
#  - encrypt_wal = on with wal_degradation = fail_open_audit: refused;
#  - encrypt_wal = on with archive_library = 'basic_archive': starts, and
#    the archive receives plaintext WAL while pg_wal stays encrypted;
#  - a successful start logs exactly one "ephemeral_crypt: ready:" line with
#    the key id, and "wal: not encrypted" when encrypt_wal is off;
#  - LOAD 'ephemeral_crypt' on a server that did not preload it: ERROR;
#    CREATE EXTENSION installs there, and its functions raise an ERROR;
#  - ephemeral_crypt.test_fault = 'install_layer' (test-only, honoured only
#    with EPHEMERAL_CRYPT_TEST_FAULTS=1 in the postmaster's environment):
#    the layer cannot be installed and the server refuses to start.

use strict;
use warnings;

use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
# The Makefile's PROVE_FLAGS (-I test/perl) is reset by PGXS's Makefile.global,
# so find the shared helpers relative to this file.
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EphemeralCrypt::TestLib;

# ---------------------------------------------------------------------------
# ephemeral_crypt.wal_staging_directory replaces %p in archive_command: a
# value that could change how the shell reads the command is refused.
{
	my $node = ec_new_node('staging_unsafe', extension => 1, encrypt_wal => 1, allows_streaming => 1,
		conf => "archive_mode = on\narchive_command = 'cp %p /nonexistent/%f'\n"
		  . "ephemeral_crypt.wal_staging_directory = '/dev/shm/a b'\n");
	my $log = ec_start_refused($node, 'unsafe staging directory');
	like($log, qr/FATAL:  invalid value for ephemeral_crypt\.wal_staging_directory/,
		'unsafe staging directory: FATAL names the setting');
	like($log, qr/DETAIL:  It must be an absolute path of letters, digits/, 'unsafe staging directory: DETAIL says why');
}

# A staging directory on a disk starts the server (only archiving needs it),
# with a WARNING that names the setting; archiving then fails and is retried.
{
	my $disk = PostgreSQL::Test::Utils::tempdir();
	my $node = ec_new_node('staging_disk', extension => 1, encrypt_wal => 1, allows_streaming => 1,
		conf => "archive_mode = on\narchive_command = 'cp %p /nonexistent/%f'\n"
		  . "ephemeral_crypt.wal_staging_directory = '$disk'\n");
	my $fs = `stat -f -c %T '$disk'`;
	chomp $fs;
	my $warning = qr/WARNING:  ephemeral_crypt: ephemeral_crypt\.wal_staging_directory is not on a memory file system/;
	ok($node->start(fail_ok => 1), "staging directory on $fs: the server starts");
	if ($fs eq 'tmpfs' || $fs eq 'ramfs')
	{
		unlike(slurp_file($node->logfile), $warning, "staging directory on $fs: no WARNING");
	}
	else
	{
		like(slurp_file($node->logfile), $warning, "staging directory on $fs: a WARNING names the setting");
	}
	$node->stop;
}

# encrypt_wal = on + wal_degradation = fail_open_audit
{
	my $node = ec_new_node('fail_open', extension => 1, encrypt_wal => 1,
		conf => "ephemeral_crypt.wal_degradation = fail_open_audit\n");
	my $log = ec_start_refused($node, 'wal fail_open_audit');
	like($log, qr/FATAL:  ephemeral_crypt\.wal_degradation must be fail_closed/,
		'wal fail_open_audit: FATAL explains the refusal');
	like($log, qr/HINT:  Set ephemeral_crypt\.wal_degradation = fail_closed/, 'wal fail_open_audit: HINT');
}

# encrypt_wal = off: starts; the same archive_command is fine then.
{
	my $node = ec_new_node('wal_off', extension => 1, encrypt_wal => 0, allows_streaming => 1,
		conf => "archive_mode = on\narchive_command = 'true'\nephemeral_crypt.spill_degradation = fail_open_audit\n");
	ok($node->start(fail_ok => 1), 'encrypt_wal = off with archive_command: starts');
	my ($r) = ec_the_ready_line($node, 0, 'exactly one ready line');
	my $key = $r->{key};
	like($key // '', qr/^[0-9a-f]{16}$/, "the ready line carries the key id " . ($key // ''));
	is($r->{version}, 'tap-test', 'the ready line carries the policy version');
	is($r->{temp_relation}, 'encrypted with AES-256-XTS (fail_closed)', 'temp_relation: encrypted (fail_closed)');
	is($r->{spill}, 'encrypted with AES-256-XTS (fail_open_audit)', 'spill: encrypted (fail_open_audit)');
	is($r->{wal}, 'not encrypted', 'wal: not encrypted');
	$node->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
	is(ec_key_id($node), $key, 'ephemeral_crypt_status() reports the logged key id');
	is(defined $r->{signed} ? ($r->{signed} ? 'signed' : 'unsigned') : undef,
		'unsigned', 'the ready line says the policy is unsigned');
	is($node->safe_psql('postgres',
		'SELECT ready, policy_version, policy_digest, policy_signed, cipher FROM ephemeral_crypt_status()'),
		"t|tap-test|" . ($r->{digest} // '') . "|f|AES-256-XTS",
		'status: ready, policy version and digest as logged, and the one cipher every category uses');
	is($node->safe_psql('postgres',
		'SELECT category, enabled, degradation FROM ephemeral_crypt_encryption_status() ORDER BY category'),
		"spill|t|fail_open_audit\ntemp_relation|t|fail_closed\nwal|f|fail_closed",
		'encryption status per category');
	my @wal = grep { -s $_ } ec_category_files($node, 'wal');
	cmp_ok(scalar(@wal), '>', 0, 'WAL segments exist');
	my @enc = grep { my ($mg) = ec_read_header($_); defined $mg && $mg eq $EC_MAGIC } @wal;
	is_deeply(\@enc, [], 'no WAL segment is encrypted when encrypt_wal = off');

	# Without WAL encryption the node can restart: a new key, one more ready line.
	my $offset = -s $node->logfile;
	$node->restart;
	my ($again) = ec_the_ready_line($node, $offset, 'exactly one ready line for the second start');
	my $key2 = $again->{key};
	isnt($key2, $key, "the restarted instance has a new key ($key2)");
	is(ec_key_id($node), $key2, 'ephemeral_crypt_status() reports the new key');
	$node->stop;
}

# encrypt_wal = on + archive_library = 'basic_archive': starts and archives.
{
	my $archive = PostgreSQL::Test::Utils::tempdir();
	my $node = ec_new_node('archive_library', extension => 1, encrypt_wal => 1, allows_streaming => 1,
		conf => "archive_mode = on\narchive_library = 'basic_archive'\nbasic_archive.archive_directory = '$archive'\n");
	ok($node->start(fail_ok => 1), 'archive_library with encrypt_wal = on: starts');
	my ($r) = ec_the_ready_line($node, 0, 'archive_library: exactly one ready line');
	my $key = $r->{key};
	is($r->{wal}, 'encrypted with AES-256-XTS (fail_closed)', 'archive_library: wal: encrypted (fail_closed)');
	$node->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
	is(ec_key_id($node), $key, 'archive_library: status reports the logged key id');

	my $m = ec_marker('archive');
	$node->safe_psql('postgres', qq{CREATE TABLE a (s text); INSERT INTO a SELECT '${m}_' || g FROM generate_series(1, 1000) g;});
	my $segment = $node->safe_psql('postgres', 'SELECT pg_walfile_name(pg_current_wal_lsn())');
	$node->safe_psql('postgres', 'SELECT pg_switch_wal()');
	ok($node->poll_query_until('postgres', "SELECT last_archived_wal >= '$segment' FROM pg_stat_archiver"),
		"archive_library: segment $segment archived");
	is($node->safe_psql('postgres', 'SELECT failed_count FROM pg_stat_archiver'), '0', 'archive_library: no archiving failure');
	my $archived = slurp_file("$archive/$segment");
	is(length($archived), 16 * 1024 * 1024, 'archive_library: the archived segment has the plain segment size');
	isnt(substr($archived, 0, 8), $EC_MAGIC, 'archive_library: the archive holds plaintext WAL');
	is(unpack('v', substr($archived, 0, 2)), ec_wal_page_magic(), 'archive_library: it starts with the WAL page magic of this server');
	ok(index($archived, $m) >= 0, 'archive_library: the archived WAL contains the inserted rows');
	# No checkpoint has run since the switch, so the segment is still in pg_wal.
	my ($magic, $id) = ec_read_header($node->data_dir . "/pg_wal/$segment");
	is($magic, $EC_MAGIC, 'archive_library: the same segment in pg_wal is encrypted');
	is($id, $key, 'archive_library: under the instance key');
	my $scan = ec_scan_markers($node, 'wal', [$m]);
	is_deeply($scan->{hits}, [], 'archive_library: no marker in pg_wal');
	$node->stop;
}

# LOAD on a server that did not preload the library.
{
	my $node = ec_new_node('plain', extension => 0);
	$node->start;
	my ($ret, $out, $err) = $node->psql('postgres', "LOAD 'ephemeral_crypt'");
	isnt($ret, 0, 'LOAD without preloading fails');
	like($err, qr/ERROR:  ephemeral_crypt must be loaded via shared_preload_libraries/, 'LOAD: the ERROR explains why');
	like($err, qr/HINT:  Add ephemeral_crypt to shared_preload_libraries in postgresql\.conf and restart the server\./,
		'LOAD: the HINT says what to do');
	# CREATE EXTENSION installs (its functions must exist everywhere), and
	# each function then explains that nothing is active.
	($ret, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
	is($ret, 0, 'CREATE EXTENSION without preloading installs the functions');
	($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM ephemeral_crypt_status()');
	isnt($ret, 0, 'a function called without preloading fails');
	# A new session loads the library for the call, and _PG_init refuses
	# first; in the session that ran CREATE EXTENSION the function itself does.
	like($err, qr/ERROR:  ephemeral_crypt (must be loaded via shared_preload_libraries|is not active on this server)/,
		'the ERROR says the library is not preloaded');
	like($err, qr/HINT:  Add ephemeral_crypt to shared_preload_libraries/, 'the HINT says how to preload');
	is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server keeps running');
	$node->stop;
}

# Test-only fault: the layer cannot be installed.
{
	my $node = ec_new_node('fault', extension => 1, encrypt_wal => 1,
		conf => "ephemeral_crypt.test_fault = 'install_layer'\n");

	# Without EPHEMERAL_CRYPT_TEST_FAULTS=1 the setting itself is refused.
	{
		local $ENV{EPHEMERAL_CRYPT_TEST_FAULTS};
		delete $ENV{EPHEMERAL_CRYPT_TEST_FAULTS};
		my $log = ec_start_refused($node, 'test_fault without the environment switch');
		unlike($log, qr/unrecognized configuration parameter|invalid value for parameter/,
			'test_fault: the setting is recognised');
		like($log, qr/FATAL:  ephemeral_crypt\.test_fault is a test-only setting/,
			'test_fault without the environment switch: refused as a test-only setting');
	}
	my $log;
	{
		local $ENV{EPHEMERAL_CRYPT_TEST_FAULTS} = '1';
		$log = ec_start_refused($node, 'test_fault = install_layer');
	}
	unlike($log, qr/unrecognized configuration parameter|invalid value for parameter/,
		'test_fault = install_layer: the setting is recognised');
	like($log, qr/FATAL:  ephemeral_crypt: could not install the file-access layer/,
		'test_fault = install_layer: FATAL "could not install the file-access layer"');
	like($log, qr/HINT:  The server was not started, so nothing was written unencrypted/,
		'test_fault = install_layer: HINT says nothing was written unencrypted');
	unlike($log, qr/ephemeral_crypt: ready:|database system is ready to accept connections/,
		'test_fault = install_layer: never ready');
}

done_testing();
