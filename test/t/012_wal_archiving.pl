
# Archiving under WAL encryption, and point-in-time recovery from it.
#
# A primary with encrypt_wal = on archives through an unchanged
# archive_command (cp): the command sees each segment in plaintext under its
# own name, staged in a private directory on tmpfs that is empty again
# afterwards, so the archive holds plaintext WAL (by design), readable by
# pg_waldump and by a server without the extension. A base backup taken
# before the writes and the archive give a point-in-time recovery to a named
# restore point, both on a server that does not load the extension and on
# one that does (with WAL encryption): the latter's restore_command writes
# into memory, and every segment it keeps in pg_wal is encrypted under its
# own key, with no plaintext WAL left there. The archive_library path
# (basic_archive) is 004's.

use strict;
use warnings;

use File::Temp;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
# The Makefile's PROVE_FLAGS (-I test/perl) is reset by PGXS's Makefile.global,
# so find the shared helpers relative to this file.
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EphemeralCrypt::TestLib;

my $archive = PostgreSQL::Test::Utils::tempdir();
# A staging directory of this test's own, on tmpfs, to check it is left empty.
my $staging = ec_staging_directory();
my $primary = ec_start_primary('primary',
	conf => "archive_mode = on\narchive_command = 'test ! -f \"$archive/%f\" && cp %p \"$archive/%f\"'\n"
	  . "ephemeral_crypt.wal_staging_directory = '$staging'\n");
my $key = ec_key_id($primary);
my $ready = ec_parse_ready_line((ec_ready_lines($primary))[0]) || {};
is(($ready->{key} // '') . '|' . ($ready->{wal} // ''), "$key|encrypted with AES-256-XTS (fail_closed)", 'the primary encrypts its WAL');

# The base backup comes first.
$primary->backup('base');

my $lsn_start = $primary->lsn('insert');
my $m1 = ec_marker('archive_before_rp');
$primary->safe_psql('postgres', qq{
	CREATE TABLE a (id int PRIMARY KEY, s text);
	INSERT INTO a SELECT g, '${m1}_' || g FROM generate_series(1, 3000) g;
	UPDATE a SET s = s || '_u' WHERE id % 5 = 0;
	DELETE FROM a WHERE id % 97 = 0;});
my $digest_rp = ec_digest($primary, 'a');
my $rp_lsn = $primary->safe_psql('postgres', q{SELECT pg_create_restore_point('rp1')});
note "restore point rp1 at $rp_lsn, table a: $digest_rp";

my $m2 = ec_marker('archive_after_rp');
$primary->safe_psql('postgres', qq{
	INSERT INTO a SELECT g, '${m2}_' || g FROM generate_series(3001, 6000) g;
	UPDATE a SET s = s || '_after' WHERE id % 3 = 0;
	DELETE FROM a WHERE id BETWEEN 100 AND 200;});
my $digest_after = ec_digest($primary, 'a');
isnt($digest_after, $digest_rp, 'the table changed after the restore point');
my $lsn_end = $primary->lsn('insert');
my $last_segment = $primary->safe_psql('postgres', "SELECT pg_walfile_name('$lsn_end')");
$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
ok($primary->poll_query_until('postgres', "SELECT last_archived_wal >= '$last_segment' FROM pg_stat_archiver"),
	"segments up to $last_segment archived");
is($primary->safe_psql('postgres', 'SELECT failed_count FROM pg_stat_archiver'), '0', 'no archiving failure');
is_deeply([ ec_staged_files($staging) ], [], 'the staging directory is empty again: no staged copy outlived its command');

# The archive: plaintext segments with the markers, readable by pg_waldump.
my @archived = ec_wal_segments($archive);
cmp_ok(scalar(@archived), '>=', 2, 'the archive holds segments (' . scalar(@archived) . ')');
my @not_plain = grep { !ec_is_plain_wal($_) } @archived;
is_deeply(\@not_plain, [], "every archived segment starts with the WAL page magic (plaintext, no $EC_MAGIC header)");
my @wrong_size = grep { -s $_ != 16 * 1024 * 1024 } @archived;
is_deeply(\@wrong_size, [], 'every archived segment has the plain segment size');
my $archive_scan = ec_scan_files(\@archived, [ $m1, $m2 ]);
my ($hit1, $hit2) = map { scalar @{ $archive_scan->{holding}{$_} } } ($m1, $m2);
cmp_ok($hit1, '>', 0, 'the archive holds the rows written before the restore point in plaintext');
cmp_ok($hit2, '>', 0, 'the archive holds the rows written after the restore point in plaintext');

my ($out, $err) = ('', '');
my $ok = IPC::Run::run([ 'pg_waldump', '-p', $archive, '-s', $lsn_start, '-e', $lsn_end ], '>', \$out, '2>', \$err);
ok($ok, "pg_waldump reads the archived WAL from $lsn_start to $lsn_end (exit 0)");
note "pg_waldump stderr: $err" if $err ne '';
my @records = grep { /^rmgr: / } split /\n/, $out;
cmp_ok(scalar(@records), '>', 1000, 'pg_waldump decodes the records (' . scalar(@records) . ')');
ok((grep { /rmgr: Heap .*desc: INSERT/ } @records), 'pg_waldump shows heap inserts');
ok((grep { /desc: RESTORE_POINT rp1/ } @records), 'pg_waldump shows the restore point rp1');
($out, $err) = ('', '');
$ok = IPC::Run::run([ 'pg_waldump', "$archive/$last_segment", '--stats' ], '>', \$out, '2>', \$err);
like($out, qr/Total\s+\d+/, "pg_waldump --stats on the single archived segment $last_segment");

# pg_wal itself stays encrypted.
my $scan = ec_scan_markers($primary, 'wal', [ $m1, $m2 ]);
my @nonempty = grep { $scan->{sizes}{$_} > 0 } @{ $scan->{files} };
my @enc = grep { !ec_not_encrypted_under($scan, $key, [$_]) } @nonempty;
is(scalar(@enc), scalar(@nonempty), "every segment in pg_wal is encrypted under $key (" . scalar(@enc) . ')');
is_deeply($scan->{hits}, [], 'no marker in pg_wal');

# Point-in-time recovery on a server without the extension.
my $pitr = ec_start_from_archive('pitr', $primary, 'base', qq{cp "$archive/%f" "%p"}, conf => q{
shared_preload_libraries = ''
recovery_target_name = 'rp1'
recovery_target_action = 'pause'
});
ok($pitr->poll_query_until('postgres', q{SELECT pg_get_wal_replay_pause_state() = 'paused'}),
	'recovery reaches the restore point and pauses');
my $plog = slurp_file($pitr->logfile);
# The extension's messages all start "ephemeral_crypt: "; the scratch
# directory's name (restore_command's cp messages) may contain the word.
unlike($plog, qr/ephemeral_crypt: /, 'the recovery server does not load the extension');
like($plog, qr/restored log file "[0-9A-F]{24}" from archive/, 'it restores segments from the archive');
like($plog, qr/recovery stopping at restore point "rp1"/, 'it stops at restore point rp1');
unlike($plog, qr/PANIC|invalid (checkpoint|record|magic)/, 'no PANIC nor invalid record');
is(ec_digest($pitr, 'a'), $digest_rp, 'the recovered table is exactly as at the restore point (count and md5)');
is($pitr->safe_psql('postgres', qq{SELECT count(*) FROM a WHERE s LIKE '${m2}%'}), '0',
	'no row written after the restore point');
$pitr->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
ok($pitr->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'), 'recovery ends, the server is promoted');
is(ec_digest($pitr, 'a'), $digest_rp, 'after promotion the table is still as at the restore point');
$pitr->safe_psql('postgres', q{INSERT INTO a VALUES (100000, 'after pitr')});
is($pitr->safe_psql('postgres', 'SELECT count(*) FROM a WHERE id = 100000'), '1', 'the recovered server accepts writes');
$pitr->stop;

# Point-in-time recovery on a server that loads the extension and encrypts
# its WAL: restore_command writes into memory, and what the startup process
# keeps in pg_wal is encrypted under the new instance's key.
my $pitr2 = ec_start_from_archive('pitr_encrypted', $primary, 'base', qq{cp "$archive/%f" "%p"}, conf => qq{
recovery_target_name = 'rp1'
recovery_target_action = 'promote'
ephemeral_crypt.wal_staging_directory = '$staging'
});
ok($pitr2->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'),
	'the encrypted recovery reaches the restore point and promotes');
my $p2log = slurp_file($pitr2->logfile);
like($p2log, qr/restored log file "[0-9A-F]{24}" from archive/, 'it restores segments from the archive');
like($p2log, qr/recovery stopping at restore point "rp1"/, 'it stops at restore point rp1');
unlike($p2log, qr/WARNING:  ephemeral_crypt:/, 'no warning from the layer during recovery');
is(ec_digest($pitr2, 'a'), $digest_rp, 'the recovered table is exactly as at the restore point (count and md5)');
my $key2 = ec_key_id($pitr2);
isnt($key2, $key, "the recovered server has a key of its own ($key2)");
my $scan2 = ec_scan_markers($pitr2, 'wal', [ $m1, $m2 ]);
my @kept = grep { $scan2->{sizes}{$_} > 0 } @{ $scan2->{files} };
cmp_ok(scalar(@kept), '>', 0, 'the recovered server kept WAL segments in pg_wal (' . scalar(@kept) . ')');
is_deeply([ ec_not_encrypted_under($scan2, $key2, \@kept) ], [],
	"every segment it kept in pg_wal is encrypted under its own key $key2");
is_deeply($scan2->{hits}, [], 'no marker in its pg_wal: no restored segment stayed in plaintext');
ok(!-e $pitr2->data_dir . '/pg_wal/RECOVERYXLOG', 'no RECOVERYXLOG is left behind');
is_deeply([ ec_staged_files($staging) ], [], 'the staging directory is empty after recovery');
$pitr2->stop;

# The primary keeps running and archiving.
is(ec_digest($primary, 'a'), $digest_after, 'the primary still has all its rows');
$primary->stop;

done_testing();
