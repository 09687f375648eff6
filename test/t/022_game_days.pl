
# Game days for archiving with WAL encryption (issue 22, item 6).
#
# A primary with every category encrypted archives through an unchanged
# archive_command (cp) while:
#  1. the archive target is down for a while: segments pile up .ready, the
#     archiver's failures are counted, and once the target is back every
#     segment is archived, in order, with nothing missing;
#  2. the staging area is unusable (a staging directory the server cannot
#     write): a WARNING names ephemeral_crypt.wal_staging_directory, the
#     segment stays .ready, and it is archived once the directory is fixed;
#  3. the archiver is killed (SIGKILL) while its command runs on a staged
#     segment: the segment is archived afterwards and no staged plaintext is
#     left behind;
#  4. a standby fed only by restore_command (no streaming) catches up from
#     the archive, with nothing in plaintext in its pg_wal;
#  5. the whole instance is killed in the middle of archiving: its next start
#     is refused (by design), and the standby fed by the archive is promoted
#     with every row whose segment reached the archive.

use strict;
use warnings;

use File::Path qw(make_path remove_tree);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EphemeralCrypt::TestLib;
use EphemeralCrypt::Fleet;

my $segsize = 1024 * 1024;
my $scratch = PostgreSQL::Test::Utils::tempdir();
my $archive = "$scratch/archive";
make_path($archive);
# Private staging directories on tmpfs, one per server, so that leftovers
# can be counted; removed at the end.
my $stage = "/dev/shm/ec_gd_$$" . '_' . int(rand(1e6));
my $stage_b = "${stage}_b";
make_path($stage, $stage_b);
chmod 0700, $stage, $stage_b;
END { chmod 0700, $stage_b if defined $stage_b; remove_tree($stage, $stage_b) if defined $stage; }

my $cp = "cp %p $archive/%f";
my $primary = ec_new_node('primary', extension => 1, encrypt_wal => 1, allows_streaming => 1,
	init => { extra => ['--wal-segsize=1'] },
	conf => "archive_mode = on\narchive_command = '$cp'\nephemeral_crypt.wal_staging_directory = '$stage'\n"
	  . "wal_keep_size = 64MB\n"
	  # PostgreSQL's default (the TAP framework turns it off): a killed child,
	  # the archiver included, makes the postmaster reinitialise and run
	  # crash recovery with the key it still holds.
	  . "restart_after_crash = on\n");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
my $key = ec_key_id($primary);
my $marker = ec_marker('gameday');
ec_create_marked_table($primary, $marker, 1000);
$primary->backup('base');

sub archiver
{
	my ($node) = @_;
	my ($a, $f, $last) = split /\|/, $node->safe_psql('postgres',
		q{SELECT archived_count, failed_count, coalesce(last_archived_wal, '') FROM pg_stat_archiver});
	return { archived => $a, failed => $f, last => $last };
}

sub ready_files
{
	my ($node) = @_;
	return sort map { m{/([0-9A-F]{24})\.ready$} ? $1 : () } glob($node->data_dir . '/pg_wal/archive_status/*.ready');
}

# Writes rows $from..$to and ends the segment; returns the segment written.
sub write_segment
{
	my ($node, $from, $to) = @_;
	$node->safe_psql('postgres', "INSERT INTO t SELECT g, '${marker}_' || g FROM generate_series($from, $to) g");
	my $seg = $node->safe_psql('postgres', 'SELECT pg_walfile_name(pg_current_wal_lsn())');
	$node->safe_psql('postgres', 'SELECT pg_switch_wal()');
	return $seg;
}

sub wait_archived
{
	my ($node, $seg, $timeout) = @_;
	return fleet_wait_until($timeout // 120, sub { archiver($node)->{last} ge $seg });
}

my $first_seg = write_segment($primary, 1001, 2000);
ok(wait_archived($primary, $first_seg), "archiving works: $first_seg archived");

# ---- 1. the archive target down for a while ----------------------------------
chmod 0500, $archive;
my $before = archiver($primary);
my @down_segs = map { write_segment($primary, 2001 + $_ * 1000, 2000 + ($_ + 1) * 1000) } 0 .. 3;
ok(fleet_wait_until(60, sub { archiver($primary)->{failed} > $before->{failed} }), 'target down: the archive command fails');
my @piled = ready_files($primary);
cmp_ok(scalar(@piled), '>=', 4, 'target down: segments pile up .ready (' . scalar(@piled) . ')');
is(archiver($primary)->{last}, $first_seg, 'target down: nothing is marked archived');
sleep 3;
my $t_up = time;
chmod 0700, $archive;
# After three failures in a row the archiver sleeps up to 60 s; a new
# segment wakes it, as the next one of a busy server would.
push @down_segs, write_segment($primary, 6001, 7000);
ok(wait_archived($primary, $down_segs[-1]), "target back: archiving catches up to $down_segs[-1]");
diag(sprintf('game day 1 (target down): %d segments piled up .ready, %d failures, caught up %.1f s after the target came back',
	scalar(@piled), archiver($primary)->{failed} - $before->{failed}, time - $t_up));
is_deeply([ ready_files($primary) ], [], 'target back: no segment left .ready');
is_deeply([ ec_staged_files($stage) ], [], 'no staged plaintext left in the staging directory');

# ---- 4 (started here). a standby fed only by restore_command ----------------
my $standby = ec_start_from_archive('archive_standby', $primary, 'base', qq{cp $archive/%f "%p"},
	mode => 'standby', conf => qq{
primary_conninfo = ''
ephemeral_crypt.wal_staging_directory = '$stage'
});
my $skey = ec_key_id($standby);

# ---- 2. the staging area unusable ---------------------------------------------
# A second primary whose staging directory it cannot write (tmpfs, mode
# 0500): a full tmpfs gives the same path through the code (ENOSPC instead
# of EACCES), with "is full" in the WARNING.
chmod 0500, $stage_b;
my $node_b = ec_new_node('staging', extension => 1, encrypt_wal => 1, allows_streaming => 1,
	init => { extra => ['--wal-segsize=1'] },
	conf => "archive_mode = on\narchive_command = 'cp %p $scratch/archive_b/%f'\n"
	  . "ephemeral_crypt.wal_staging_directory = '$stage_b'\n");
make_path("$scratch/archive_b");
$node_b->start;
$node_b->safe_psql('postgres', 'CREATE TABLE t (id int PRIMARY KEY, s text)');
my $b_seg = write_segment($node_b, 1, 1000);
ok(fleet_wait_until(60, sub { archiver($node_b)->{failed} > 0 }), 'staging unusable: the archive attempt fails');
my $b_log = slurp_file($node_b->logfile);
like($b_log, qr/WARNING:  ephemeral_crypt: WAL not staged for a shell command: file "pg_wal\/$b_seg", staging directory "\Q$stage_b\E"\n.*DETAIL:  ephemeral_crypt\.wal_staging_directory is missing or not writable by the server/,
	'staging unusable: a WARNING names ephemeral_crypt.wal_staging_directory');
ok(-e $node_b->data_dir . "/pg_wal/archive_status/$b_seg.ready", "staging unusable: $b_seg stays .ready");
ok(!-e "$scratch/archive_b/$b_seg", 'staging unusable: nothing reached the archive');
my ($wline) = grep { /WAL not staged/ } split /\n/, $b_log;
diag("game day 2 (staging unusable): $wline");
chmod 0700, $stage_b;
ok(wait_archived($node_b, $b_seg), "staging fixed: $b_seg is archived on the next attempt");
ok(ec_is_plain_wal("$scratch/archive_b/$b_seg"), 'the archived segment is plaintext WAL');
is_deeply([ ec_staged_files($stage_b) ], [], 'no staged plaintext left');
$node_b->stop;

# ---- 3. the archiver killed while its command runs ---------------------------
$primary->safe_psql('postgres', "ALTER SYSTEM SET archive_command = 'sleep 4; $cp'");
$primary->reload;
my $k_seg = write_segment($primary, 7001, 8000);
ok(fleet_wait_until(30, sub { scalar ec_staged_files($stage) }), 'the archiver staged a segment and runs its command');
my $archiver_pid = $primary->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'archiver'});
like($archiver_pid, qr/^\d+$/, "archiver pid $archiver_pid");
kill 'KILL', $archiver_pid;
my $t_kill = time;
ok(fleet_wait_until(60, sub {
	my ($o, $e) = ('', '');
	$primary->psql('postgres', 'SELECT 1', stdout => \$o, stderr => \$e) == 0 && $o eq '1' }),
	'the instance answers again after the archiver was killed');
$primary->safe_psql('postgres', "ALTER SYSTEM SET archive_command = '$cp'");
$primary->reload;
ok(wait_archived($primary, $k_seg), "$k_seg is archived after the archiver was killed");
diag(sprintf('game day 3 (archiver SIGKILL): %s archived %.1f s after the kill', $k_seg, time - $t_kill));
my $k_log = slurp_file($primary->logfile);
like($k_log, qr/archiver process \(PID $archiver_pid\) was terminated by signal 9/,
	'the postmaster saw the archiver killed');
like($k_log, qr/all server processes terminated; reinitializing/, 'the postmaster reinitialised (crash recovery with the key it holds)');
ok(fleet_wait_until(15, sub { !ec_staged_files($stage) }), 'no staged plaintext left after the archiver was killed')
  or diag('left in the staging directory: ' . join(' ', ec_staged_files($stage)));

# ---- 4. the archive-fed standby catches up ------------------------------------
my $c_seg = write_segment($primary, 8001, 9000);
ok(wait_archived($primary, $c_seg), "$c_seg archived");
my $c_count = $primary->safe_psql('postgres', 'SELECT count(*) FROM t');
ok($standby->poll_query_until('postgres', "SELECT count(*) = $c_count FROM t"),
	'the standby replays from the archive up to the last archived segment')
  or diag('standby at ' . $standby->safe_psql('postgres', 'SELECT pg_last_wal_replay_lsn()'));
is(ec_digest($standby, 't', 'x.id'), ec_digest($primary, 't', 'x.id'), 'the standby has the primary\'s rows');
like(slurp_file($standby->logfile), qr/restored log file "[0-9A-F]{24}" from archive/, 'it restores from the archive');
unlike(slurp_file($standby->logfile), qr/started streaming/, 'it never streams');
my $sscan = ec_scan_tree($standby->data_dir . '/pg_wal', [$marker], qr{/pg_wal/[^/]+$});
is_deeply($sscan->{hits}, [], 'no row in plaintext in the standby\'s pg_wal');
my @ssegs = grep { m{/([0-9A-F]{24}|RECOVERYXLOG)$} && $sscan->{sizes}{$_} > 0 } @{ $sscan->{files} };
is_deeply([ ec_not_encrypted_under($sscan, $skey, \@ssegs) ], [],
	'every segment in its pg_wal is encrypted under the standby\'s key (' . scalar(@ssegs) . ')');
is_deeply([ ec_staged_files($stage) ], [], 'no restored plaintext left in the staging directory');

# ---- 5. the whole instance killed in the middle of archiving ----------------
$primary->safe_psql('postgres', "ALTER SYSTEM SET archive_command = 'sleep 4; $cp'");
$primary->reload;
my $last_safe = $primary->safe_psql('postgres', 'SELECT max(id) FROM t');
my $x_seg = write_segment($primary, 9001, 10000);
ok(fleet_wait_until(30, sub { scalar ec_staged_files($stage) }), 'the archiver is in the middle of archiving');
my @killed = ec_kill9_all($primary);
diag('game day 5 (instance SIGKILL mid-archive): killed ' . scalar(@killed) . " processes while archiving $x_seg");
my $refused = ec_start_refused($primary, 'after SIGKILL mid-archive');
like($refused, qr/the local WAL belongs to a previous instance/, 'the refusal says why');
# The command started before the kill may still finish (it is not a
# PostgreSQL process). The killed archiver could not remove its staged copy;
# documented (docs/wal.md, "A process killed during its command"): it stays
# in tmpfs, in a private mode-0700 directory named after the data directory,
# until that data directory's next archive command removes it.
sleep 6;
my @left = ec_staged_files($stage);
diag('game day 5: left in the staging directory after the instance kill: ' . (@left ? join(' ', @left) : 'nothing'));
for my $l (@left)
{
	like($l, qr/^ephemeral_crypt\.[0-9a-f]+\.archive\.\w{6}$/, "leftover $l is named after the data directory and role");
	is((stat("$stage/$l"))[2] & 07777, 0700, "leftover $l is private (mode 0700)");
}
my @archived = map { m{/([^/]+)$} } ec_wal_segments($archive);
my @nos = sort { $a <=> $b } map { fleet_segno($_, $segsize) } @archived;
is_deeply([ fleet_segments_missing(\@archived, $nos[0], $nos[-1], $segsize) ], [],
	'the archive has every segment from its first to its last (' . scalar(@archived) . ')');
is_deeply([ grep { !ec_is_plain_wal("$archive/$_") } @archived ], [], 'every archived segment is plaintext WAL');

# The way out: promote the archive-fed standby.
ok($standby->poll_query_until('postgres', "SELECT count(*) >= $last_safe FROM t"),
	"the standby has every row up to $last_safe from the archive");
$standby->promote;
ok($standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'), 'the standby is promoted');
my $found = $standby->safe_psql('postgres', 'SELECT count(*) FROM t');
my $max_found = $standby->safe_psql('postgres', 'SELECT max(id) FROM t');
diag("game day 5: the promoted archive-fed standby has $found rows (max id $max_found; "
	  . "rows up to $last_safe were archived before the kill, $x_seg was being archived)");
cmp_ok($max_found, '>=', $last_safe, 'no row whose segment was archived is lost');
$standby->stop;

done_testing();
