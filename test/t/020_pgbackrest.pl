
# pgBackRest with WAL encryption (issue 22, items 1, 2 and 6's restore to a
# named restore point).
#
# A primary with every category encrypted, WAL included, archives through
# the operator's unchanged archive_command,
#     pgbackrest --stanza=main archive-push %p
# into a repository in a scratch directory encrypted by pgBackRest itself
# (repo1-cipher-type=aes-256-cbc). stanza-create, check and a full backup
# pass with their default archive checks. The archive holds plaintext WAL
# (pgBackRest's archive-get, run outside the server, gives back segments
# pg_waldump reads), the repository holds no row in plaintext. A restore with
# pgBackRest's own restore_command,
#     pgbackrest --stanza=main archive-get %f "%p"
# to a named restore point into a server that loads the extension gives
# exactly the rows of that point, and leaves no plaintext WAL in its pg_wal:
# every segment there carries the extension's header.
#
# Then pgBackRest's asynchronous archiving (archive-async=y) in its
# configuration: the layer runs archive-push with --no-archive-async, and
# segments are still archived (docs/wal.md).

use strict;
use warnings;

use File::Path qw(make_path);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EphemeralCrypt::TestLib;
use EphemeralCrypt::Fleet;

# scripts/install-deps.sh and the build roots install it: its absence is a
# broken set-up, never a reason to skip.
die 'pgbackrest is not installed (scripts/install-deps.sh installs it)' unless fleet_have('pgbackrest');

my $segsize = 1024 * 1024;
my $scratch = PostgreSQL::Test::Utils::tempdir();
make_path("$scratch/$_") for qw(repo log lock spool);

my $primary = ec_new_node('primary', extension => 1, encrypt_wal => 1, allows_streaming => 1,
	init => { extra => ['--wal-segsize=1'] },
	conf => "archive_mode = on\narchive_command = 'pgbackrest --stanza=main archive-push %p'\n");

# pgBackRest's configuration: the operator's, in a file named by
# PGBACKREST_CONFIG (the server and every command below inherit it), so that
# archive_command is exactly the documented one.
my $conf = "$scratch/pgbackrest.conf";
my $conf_text = <<"EOC";
[global]
repo1-path=$scratch/repo
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=ec-test-repository-passphrase-0123456789
repo1-retention-full=2
log-path=$scratch/log
lock-path=$scratch/lock
spool-path=$scratch/spool
log-level-console=info
log-level-file=detail
start-fast=y
archive-timeout=60
compress-type=gz

[main]
pg1-path=@{[ $primary->data_dir ]}
pg1-port=@{[ $primary->port ]}
pg1-socket-path=@{[ $primary->host ]}
EOC
ec_write_file($conf, $conf_text);
$ENV{PGBACKREST_CONFIG} = $conf;

$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
my $key = ec_key_id($primary);
my ($ready) = ec_the_ready_line($primary, 0, 'the primary logged one ready line');
is($ready->{wal}, 'encrypted with AES-256-XTS (fail_closed)', 'the primary encrypts its WAL');
is($ready->{temp_relation} . '|' . $ready->{spill},
	'encrypted with AES-256-XTS (fail_closed)|encrypted with AES-256-XTS (fail_closed)',
	'temporary relations and spill files are encrypted too');

sub pgbackrest
{
	my (@args) = @_;
	my ($rc, $out, $err) = fleet_run([ 'pgbackrest', @args ], timeout => 240);
	note "pgbackrest @args: exit $rc\n$out$err";
	return ($rc, $out . $err);
}

my ($rc, $out) = pgbackrest('--stanza=main', 'stanza-create');
is($rc, 0, 'pgbackrest stanza-create succeeds') or diag($out);
($rc, $out) = pgbackrest('--stanza=main', 'check');
is($rc, 0, 'pgbackrest check succeeds with its default archive check (a WAL switch archived through the layer)')
  or diag($out);

my $m1 = ec_marker('pgbr_before_backup');
ec_create_marked_table($primary, $m1, 3000);
my $t0 = time;
($rc, $out) = pgbackrest('--stanza=main', '--type=full', 'backup');
is($rc, 0, 'pgbackrest full backup succeeds with its default archive check') or diag($out);
diag(sprintf('pgBackRest full backup: %.1f s', time - $t0));
($rc, $out) = pgbackrest('--stanza=main', 'info');
like($out, qr/full backup/, 'pgbackrest info lists the full backup');

my $m2 = ec_marker('pgbr_before_rp');
$primary->safe_psql('postgres', qq{
	INSERT INTO t SELECT g, '${m2}_' || g FROM generate_series(3001, 8000) g;
	UPDATE t SET s = s || '_u' WHERE id % 7 = 0;
	DELETE FROM t WHERE id % 101 = 0;});
my $digest_rp = ec_digest($primary, 't', 'x.id');
my $rp_lsn = $primary->safe_psql('postgres', q{SELECT pg_create_restore_point('rp1')});
my $m3 = ec_marker('pgbr_after_rp');
$primary->safe_psql('postgres', qq{
	INSERT INTO t SELECT g, '${m3}_' || g FROM generate_series(8001, 12000) g;
	DELETE FROM t WHERE id BETWEEN 10 AND 20;});
my $end_lsn = $primary->lsn('insert');
my $last_seg = $primary->safe_psql('postgres', "SELECT pg_walfile_name('$end_lsn')");
$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
ok($primary->poll_query_until('postgres', "SELECT last_archived_wal >= '$last_seg' FROM pg_stat_archiver"),
	"the archiver pushed every segment up to $last_seg");
my ($archived, $failed) = split /\|/,
  $primary->safe_psql('postgres', 'SELECT archived_count, failed_count FROM pg_stat_archiver');
is($failed, '0', 'no archiving failure');
diag("pgBackRest archive-push (sync): $archived segments archived, $failed failures, up to $last_seg");
my @ready = glob($primary->data_dir . '/pg_wal/archive_status/*.ready');
is_deeply(\@ready, [], 'no segment left .ready');

# The repository is encrypted by pgBackRest: no row in it in plaintext.
my $repo_scan = ec_scan_tree("$scratch/repo", [ $m1, $m2, $m3 ]);
is_deeply($repo_scan->{hits}, [], 'the encrypted repository holds no row in plaintext ('
	  . scalar(@{ $repo_scan->{files} }) . ' files)');

# What the archive holds is plaintext WAL: fetched by archive-get outside the
# server, pg_waldump reads it and finds the restore point.
my $fetched = "$scratch/fetched";
make_path($fetched);
my $rp_seg = $primary->safe_psql('postgres', "SELECT pg_walfile_name('$rp_lsn')");
($rc, $out) = pgbackrest('--stanza=main', 'archive-get', $rp_seg, "$fetched/$rp_seg");
is($rc, 0, "archive-get $rp_seg outside the server");
ok(ec_is_plain_wal("$fetched/$rp_seg"), 'the archived segment is plaintext WAL of this major');
is(-s "$fetched/$rp_seg", $segsize, 'it has the segment size');
my ($wrc, $wout, $werr) = fleet_run([ 'pg_waldump', "$fetched/$rp_seg" ]);
like($wout, qr/RESTORE_POINT rp1/, 'pg_waldump reads it and shows the restore point');

# pg_wal of the primary stays encrypted.
my $scan = ec_scan_markers($primary, 'wal', [ $m1, $m2, $m3 ]);
is_deeply($scan->{hits}, [], 'no row in the primary\'s pg_wal');
my @nonempty = grep { $scan->{sizes}{$_} > 0 } @{ $scan->{files} };
is_deeply([ ec_not_encrypted_under($scan, $key, \@nonempty) ], [], "every segment in pg_wal is encrypted under $key");

# ---- restore to the named restore point into a server with the extension ----
my $restored = PostgreSQL::Test::Cluster->new('restored');
my $rdir = $restored->data_dir;
make_path($rdir);
chmod 0700, $rdir;
($rc, $out) = pgbackrest('--stanza=main', "--pg1-path=$rdir", '--type=name', '--target=rp1',
	'--target-action=pause', 'restore');
is($rc, 0, 'pgbackrest restore to restore point rp1') or diag($out);
my $auto = slurp_file("$rdir/postgresql.auto.conf");
like($auto, qr/restore_command = '\S*pgbackrest .*--stanza=main archive-get %f "%p"'/,
	'the restore uses pgBackRest\'s own restore_command');
$restored->append_conf('postgresql.conf', "port = " . $restored->port . "\narchive_mode = off\n");
$restored->start;
ok($restored->poll_query_until('postgres', q{SELECT pg_get_wal_replay_pause_state() = 'paused'}),
	'recovery reaches rp1 and pauses');
my $rlog = slurp_file($restored->logfile);
like($rlog, qr/ephemeral_crypt: ready: .*wal: encrypted with AES-256-XTS/, 'the restored server loads the extension and encrypts WAL');
like($rlog, qr/restored log file "[0-9A-F]{24}" from archive/, 'it restores segments through restore_command');
like($rlog, qr/recovery stopping at restore point "rp1"/, 'it stops at rp1');
unlike($rlog, qr/PANIC|invalid magic number/, 'no PANIC nor invalid magic number');
is(ec_digest($restored, 't', 'x.id'), $digest_rp, 'the restored table is exactly as at rp1');
is($restored->safe_psql('postgres', qq{SELECT count(*) FROM t WHERE s LIKE '${m3}%'}), '0', 'no row written after rp1');
my $rkey = ec_key_id($restored);

sub no_plaintext_wal
{
	my ($when) = @_;
	my $wal = $rdir . '/pg_wal';
	my $s = ec_scan_tree($wal, [ $m1, $m2, $m3 ], qr{/pg_wal/[^/]+$});
	is_deeply($s->{hits}, [], "$when: no row in plaintext in the restored server's pg_wal ("
		  . scalar(@{ $s->{files} }) . ' files)');
	my @segs = grep { m{/([0-9A-F]{24}(\.partial)?|RECOVERYXLOG)$} && $s->{sizes}{$_} > 0 } @{ $s->{files} };
	cmp_ok(scalar(@segs), '>', 0, "$when: the restored server keeps segments in pg_wal (" . scalar(@segs) . ')');
	is_deeply([ ec_not_encrypted_under($s, $rkey, \@segs) ], [],
		"$when: every segment in pg_wal carries the extension's header under the restored server's key");
}
no_plaintext_wal('paused at rp1');
$restored->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
ok($restored->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'), 'recovery ends, the server is promoted');
$restored->safe_psql('postgres', 'CHECKPOINT');
no_plaintext_wal('after promotion');
is(ec_digest($restored, 't', 'x.id'), $digest_rp, 'after promotion the table is still as at rp1');
$restored->stop;

# ---- asynchronous archiving (archive-async=y) --------------------------------
# pgBackRest's asynchronous archive-push reads pg_wal and
# pg_wal/archive_status beside %p by itself, which nothing without the key
# can do. Documented behaviour (docs/wal.md, "pgBackRest asynchronous
# mode"): the layer adds --no-archive-async to the pgbackrest archive-push
# it runs, so with archive-async=y in pgbackrest.conf each segment is still
# pushed, synchronously, by the command PostgreSQL runs.
my $async_conf_text = $conf_text =~ s/\[global\]\n/[global]\narchive-async=y\n/r;
ec_write_file($conf, $async_conf_text);
my $before_async = $primary->safe_psql('postgres', 'SELECT archived_count || \'|\' || failed_count FROM pg_stat_archiver');
my ($arch_before, $fail_before) = split /\|/, $before_async;
my $m4 = ec_marker('pgbr_async');
my @async_segs;
for my $i (0 .. 2)
{
	$primary->safe_psql('postgres',
		"INSERT INTO t SELECT g, '${m4}_' || g FROM generate_series(20001 + $i * 2000, 22000 + $i * 2000) g");
	push @async_segs, $primary->safe_psql('postgres', 'SELECT pg_walfile_name(pg_current_wal_lsn())');
	$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
}
ok($primary->poll_query_until('postgres', "SELECT last_archived_wal >= '$async_segs[-1]' FROM pg_stat_archiver"),
	"archive-async=y: segments up to $async_segs[-1] are archived");
my ($arch_after, $fail_after) = split /\|/,
  $primary->safe_psql('postgres', 'SELECT archived_count || \'|\' || failed_count FROM pg_stat_archiver');
is($fail_after, $fail_before, 'archive-async=y: no archiving failure');
my @spool_ok = glob("$scratch/spool/archive/main/out/*.ok");
is_deeply(\@spool_ok, [], 'archive-async=y: pgBackRest\'s asynchronous process pushed nothing (no .ok in its spool): each segment went through the synchronous command');
for my $seg (@async_segs)
{
	my ($grc) = pgbackrest('--stanza=main', 'archive-get', $seg, "$fetched/$seg");
	ok($grc == 0 && ec_is_plain_wal("$fetched/$seg"), "archive-async=y: $seg is in the repository as plaintext WAL");
}
diag(sprintf('pgBackRest archive-async=y: %d segments archived synchronously (--no-archive-async added by the layer), %d failures',
	$arch_after - $arch_before, $fail_after - $fail_before));
ec_write_file($conf, $conf_text);
($rc, $out) = pgbackrest('--stanza=main', 'check');
is($rc, 0, 'pgbackrest check passes at the end');

$primary->stop;
done_testing();
