
# Base backups of a WAL-encrypted primary.
#
# pg_basebackup reads the primary's files through its walsender, so the WAL
# it receives (-X stream over the replication protocol, -X fetch from
# pg_wal through the layer) is plaintext: every segment of the backup starts
# with the WAL page magic and is readable by pg_waldump and pg_verifybackup.
# Temporary files and temporary relations that exist on disk while the
# backup runs (a background session holds a temp table and a spilled
# cursor open) are not in the backup, and nothing of them leaks into it. Each
# backup starts alone (with the extension: it encrypts the WAL it brought
# at startup; without it: it just starts) with the committed data, and
# starts as a WAL-encrypted streaming standby of the primary.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
# The Makefile's PROVE_FLAGS (-I test/perl) is reset by PGXS's Makefile.global,
# so find the shared helpers relative to this file.
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EphemeralCrypt::TestLib;

my $primary = ec_start_primary('primary');
my $key = ec_key_id($primary);

my $m_committed = ec_marker('backup_committed');
$primary->safe_psql('postgres', qq{
	CREATE TABLE base (id int PRIMARY KEY, s text);
	INSERT INTO base SELECT g, '${m_committed}_' || g || repeat('x', 50) FROM generate_series(1, 20000) g;});
my $digest = ec_digest($primary, 'base');

# A session holding a temp table (larger than temp_buffers) and an open
# cursor whose sort spilled, while the backups run.
my $m_temp = ec_marker('backup_temp');
my $session = $primary->background_psql('postgres');
$session->query_safe(qq{CREATE TEMP TABLE tt AS SELECT g AS id, '${m_temp}_' || g || repeat('y', 80) AS s FROM generate_series(1, 30000) g});
$session->query_safe(qq{UPDATE tt SET s = s || '_t' WHERE id % 2 = 0});
$session->query_safe('BEGIN');
$session->query_safe(qq{DECLARE c NO SCROLL CURSOR FOR SELECT s FROM tt ORDER BY s DESC});
my $first = $session->query_safe('FETCH 1 FROM c');
like($first, qr/\Q$m_temp\E/, 'the cursor returns temp table rows');
my @temp_rel = ec_wait_for_files($primary, 'temp_relation');
my @spill = ec_wait_for_files($primary, 'spill', qr{/pgsql_tmp/});
cmp_ok(scalar(@temp_rel), '>', 0, 'temp relation files are on disk during the backups (' . scalar(@temp_rel) . ')');
cmp_ok(scalar(@spill), '>', 0, 'spill files of the open cursor are on disk during the backups (' . scalar(@spill) . ')');

my %backup_dir;
for my $mode (qw(stream fetch))
{
	$primary->backup($mode, backup_options => [ '-X', $mode ]);
	$backup_dir{$mode} = $primary->backup_dir . "/$mode";
	ok(-f "$backup_dir{$mode}/backup_manifest", "-X $mode: backup taken");
}
ok(scalar(ec_wait_for_files($primary, 'temp_relation')) > 0 && scalar(ec_wait_for_files($primary, 'spill', qr{/pgsql_tmp/})) > 0,
	'the temp relation and spill files were still there after both backups');
my $rest = $session->query_safe('FETCH ALL FROM c');
is(scalar(split /\n/, $rest), 29999, 'the cursor still returns the rest of its rows');
$session->query_safe('COMMIT');
$session->quit;

for my $mode (qw(stream fetch))
{
	my $dir = $backup_dir{$mode};
	my @segments = ec_wal_segments("$dir/pg_wal");
	cmp_ok(scalar(@segments), '>', 0, "-X $mode: the backup carries WAL segments (" . scalar(@segments) . ')');
	my @not_plain = grep { !ec_is_plain_wal($_) } @segments;
	is_deeply(\@not_plain, [], "-X $mode: every segment starts with the WAL page magic, none with $EC_MAGIC");

	my $manifest = slurp_file("$dir/backup_manifest");
	my ($start, $end) = $manifest =~ /"Start-LSN": "([0-9A-F]+\/[0-9A-F]+)", "End-LSN": "([0-9A-F]+\/[0-9A-F]+)"/;
	ok(defined $end, "-X $mode: the manifest gives the WAL range $start .. $end");
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'pg_waldump', '-p', "$dir/pg_wal", '-s', $start, '-e', $end ], '>', \$out, '2>', \$err);
	ok($ok, "-X $mode: pg_waldump reads the backup's WAL (exit 0)");
	my @records = grep { /^rmgr: / } split /\n/, $out;
	cmp_ok(scalar(@records), '>', 0, "-X $mode: pg_waldump decodes " . scalar(@records) . ' record(s)');
	ok((grep { /desc: CHECKPOINT_ONLINE|desc: BACKUP_END/ } @records), "-X $mode: the records include the backup's checkpoint or end");
	($out, $err) = ('', '');
	$ok = IPC::Run::run([ 'pg_verifybackup', $dir ], '>', \$out, '2>', \$err);
	ok($ok, "-X $mode: pg_verifybackup (checksums and WAL parsing) succeeds");
	note "pg_verifybackup: $out $err";

	my $scan = ec_scan_tree($dir, [$m_temp]);
	my $relative = sub { map { substr($_, length($dir) + 1) } @_ };
	my @files = $relative->(@{ $scan->{files} });
	cmp_ok(scalar(@files), '>', 0, "-X $mode: the backup's files were read (" . scalar(@files) . ')');
	my @tmp_files = grep { m{(^|/)pgsql_tmp} } @files;
	my @temp_rels = grep { m{(^|/)t\d+_\d+(_(fsm|vm|init))?(\.\d+)?$} } @files;
	my @leaks = $relative->(@{ $scan->{holding}{$m_temp} });
	is_deeply(\@tmp_files, [], "-X $mode: no pgsql_tmp file in the backup");
	is_deeply(\@temp_rels, [], "-X $mode: no temp relation file (t<digits>_<digits>) in the backup");
	is_deeply(\@leaks, [], "-X $mode: the temp table's marker is in no file of the backup");
}

# Each backup starts alone: the stream backup with the extension, the fetch
# backup without it.
{
	my $node = PostgreSQL::Test::Cluster->new('alone_stream');
	$node->init_from_backup($primary, 'stream');
	$node->start;
	my $log = slurp_file($node->logfile);
	like($log, qr/ephemeral_crypt: encrypted [1-9]\d* plaintext WAL segment\(s\) in pg_wal under the new key/,
		'-X stream, alone with the extension: it encrypted the backup\'s WAL at startup');
	my ($ready) = ec_the_ready_line_in($log, '-X stream, alone: one ready line');
	my $alone_key = $ready->{key} // '';
	like($alone_key, qr/^[0-9a-f]{16}$/, '-X stream, alone: the ready line names its key');
	isnt($alone_key, $key, '-X stream, alone: a key of its own');
	is(ec_digest($node, 'base'), $digest, '-X stream, alone: the committed data is there');
	is($node->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 'f', '-X stream, alone: a primary of its own');
	my $scan = ec_scan_markers($node, 'wal', [$m_committed]);
	my @bad = ec_not_encrypted_under($scan, undef, [ grep { $scan->{sizes}{$_} > 0 } @{ $scan->{files} } ]);
	is_deeply(\@bad, [], '-X stream, alone: every segment in its pg_wal is encrypted');
	is_deeply($scan->{hits}, [], '-X stream, alone: no marker in its pg_wal');
	$node->stop;
}
{
	my $node = PostgreSQL::Test::Cluster->new('alone_fetch');
	$node->init_from_backup($primary, 'fetch');
	$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
	$node->start;
	my $log = slurp_file($node->logfile);
	unlike($log, qr/ephemeral_crypt:/, '-X fetch, alone without the extension: not loaded');
	like($log, qr/database system is ready to accept connections/, '-X fetch, alone without the extension: starts');
	is(ec_digest($node, 'base'), $digest, '-X fetch, alone without the extension: the committed data is there');
	$node->stop;
}

# Each backup starts as a streaming standby of the primary.
my %standby;
for my $mode (qw(stream fetch))
{
	my $node = PostgreSQL::Test::Cluster->new("standby_$mode");
	$node->init_from_backup($primary, $mode, has_streaming => 1);
	$node->start;
	like(slurp_file($node->logfile), qr/ephemeral_crypt: encrypted [1-9]\d* plaintext WAL segment\(s\)/,
		"-X $mode standby: it encrypted the backup's WAL at startup");
	$standby{$mode} = $node;
}
my $m_after = ec_marker('backup_after');
$primary->safe_psql('postgres', qq{INSERT INTO base SELECT g, '${m_after}_' || g FROM generate_series(20001, 25000) g;});
$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
$primary->safe_psql('postgres', qq{UPDATE base SET s = s || '_v' WHERE id % 10 = 0});
my $digest_after = ec_digest($primary, 'base');
for my $mode (qw(stream fetch))
{
	my $node = $standby{$mode};
	$primary->wait_for_catchup($node, 'replay', $primary->lsn('insert'));
	is(ec_digest($node, 'base'), $digest_after, "-X $mode standby: caught up with the same data");
	is($node->safe_psql('postgres', 'SELECT status FROM pg_stat_wal_receiver'), 'streaming', "-X $mode standby: streaming");
	$node->safe_psql('postgres', 'CHECKPOINT');
	my $nkey = ec_key_id($node);
	my $scan = ec_scan_markers($node, 'wal', [ $m_committed, $m_after ]);
	my @bad = ec_not_encrypted_under($scan, $nkey, [ grep { $scan->{sizes}{$_} > 0 } @{ $scan->{files} } ]);
	is_deeply(\@bad, [], "-X $mode standby: every segment in its pg_wal is encrypted under its key $nkey");
	is_deeply($scan->{hits}, [], "-X $mode standby: no marker in its pg_wal");
	unlike(slurp_file($node->logfile), qr/PANIC|WARNING:  ephemeral_crypt:/, "-X $mode standby: no PANIC, no layer warning");
}
is($primary->safe_psql('postgres', q{SELECT string_agg(application_name || ':' || state, ',' ORDER BY application_name) FROM pg_stat_replication}),
	'standby_fetch:streaming,standby_stream:streaming', 'pg_stat_replication shows both standbys streaming');
my $st = ec_encryption_status($primary);
is($st->{$_}{failures}, '0', "primary: no $_ failure") for qw(temp_relation spill wal);
unlike(slurp_file($primary->logfile), qr/WARNING:  ephemeral_crypt:/, 'the primary logged no layer warning');

$standby{$_}->stop for qw(stream fetch);
$primary->stop;
done_testing();
