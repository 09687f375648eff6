
# Streaming archivers against a WAL-encrypted primary (issue 22, item 7).
#
# Barman archives either through archive_command (barman-wal-archive, which
# always runs "barman put-wal" on the Barman host over ssh, so it cannot run
# here without an ssh server: it is the same archive_command path 020 tests
# with pgBackRest) or by streaming, with pg_receivewal over the replication
# protocol. This test covers the streaming path: pg_receivewal, through a
# physical replication slot as Barman uses it (with --synchronous, so that
# its flush position answers at once), receives plaintext WAL from an
# encrypted primary; the segments are complete, pg_waldump reads every
# record of the range without a gap, and a base backup recovered with
# "cp" from the received WAL into a server that loads the extension gives
# exactly the primary's rows, with no plaintext WAL left in its pg_wal.
# Last, what the cleanly stopped primary leaves for stock tools (item 4):
# pg_waldump reads its sealed last segment, one shutdown checkpoint.

use strict;
use warnings;

use File::Path qw(make_path);
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
my $recv = "$scratch/received";
make_path($recv);

my $primary = ec_start_primary('primary', init => { extra => ['--wal-segsize=1'] });
my $key = ec_key_id($primary);
my ($ready) = ec_the_ready_line($primary, 0, 'the primary logged one ready line');
is($ready->{wal}, 'encrypted with AES-256-XTS (fail_closed)', 'the primary encrypts its WAL');

$primary->safe_psql('postgres', q{SELECT pg_create_physical_replication_slot('barman')});
my $start_lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
my ($rout, $rerr) = ('', '');
my $receiver = IPC::Run::start(
	[ 'pg_receivewal', '-D', $recv, '-h', $primary->host, '-p', $primary->port,
	  '--slot=barman', '--no-loop', '--verbose', '--synchronous' ],
	'<', \undef, '>', \$rout, '2>', \$rerr, IPC::Run::timeout(300));
ok(fleet_wait_until(60, sub {
	$primary->safe_psql('postgres', q{SELECT active FROM pg_replication_slots WHERE slot_name = 'barman'}) eq 't' }),
	'pg_receivewal streams through slot barman');

$primary->backup('base');

my $marker = ec_marker('receivewal');
ec_create_marked_table($primary, $marker, 2000);
for my $round (1 .. 4)
{
	$primary->safe_psql('postgres', qq{
		INSERT INTO t SELECT g, '${marker}_' || g FROM generate_series($round * 10000, $round * 10000 + 3000) g;
		UPDATE t SET s = s || '_r$round' WHERE id % 11 = $round;});
	$primary->safe_psql('postgres', 'SELECT pg_switch_wal()') if $round % 2 == 0;
}
my $digest = ec_digest($primary, 't', 'x.id');
my $end_lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
my $end_seg = $primary->safe_psql('postgres', "SELECT pg_walfile_name('$end_lsn')");
$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
ok(fleet_wait_until(60, sub {
	my $f = $primary->safe_psql('postgres',
		q{SELECT coalesce(flush_lsn::text, '') FROM pg_stat_replication
		  WHERE pid = (SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'barman')});
	return $f ne '' && ec_lsn($f) >= ec_lsn($end_lsn);
}), "pg_receivewal flushed up to $end_lsn");
$receiver->signal('INT');
eval { $receiver->finish; };
note "pg_receivewal stderr:\n$rerr";

my @segments = ec_wal_segments($recv);
my @partial = glob("$recv/*.partial");
diag(sprintf('pg_receivewal: %d complete segments, %d partial, up to %s', scalar(@segments), scalar(@partial), $end_seg));
cmp_ok(scalar(@segments), '>=', 4, 'pg_receivewal received complete segments');
my @not_plain = grep { !ec_is_plain_wal($_) } @segments;
is_deeply(\@not_plain, [], 'every received segment is plaintext WAL of this major (no extension header)');
is_deeply([ grep { -s $_ != $segsize } @segments ], [], 'every received segment has the segment size');
my @names = map { m{/([^/]+)$} } @segments;
my @nos = sort { $a <=> $b } map { fleet_segno($_, $segsize) } @names;
is_deeply([ fleet_segments_missing(\@names, $nos[0], $nos[-1], $segsize) ], [], 'no segment is missing in the received range');
ok(scalar(ec_files_holding($recv, $marker)) > 0, 'the received WAL holds the rows (plaintext, as any archive does)');
my ($rc, $out, $err) = fleet_run([ 'pg_waldump', '-p', $recv, '-s', $start_lsn, '-e', $end_lsn ]);
is($rc, 0, "pg_waldump reads every record from $start_lsn to $end_lsn") or diag($err);
my @records = grep { /^rmgr: / } split /\n/, $out;
cmp_ok(scalar(@records), '>', 5000, 'pg_waldump decodes the records (' . scalar(@records) . ')');
ok((grep { /rmgr: Heap .*INSERT/ } @records), 'heap inserts among them');

my $scan = ec_scan_markers($primary, 'wal', [$marker]);
is_deeply($scan->{hits}, [], 'the primary\'s pg_wal holds no row in plaintext');

# The received WAL restores a base backup, as Barman's recover does.
my $restored = ec_start_from_archive('restored', $primary, 'base', qq{cp "$recv/%f" "%p"},
	conf => "recovery_target_action = 'promote'\n");
ok($restored->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'),
	'recovery from the received WAL ends and the server is promoted');
my $rlog = slurp_file($restored->logfile);
like($rlog, qr/restored log file "[0-9A-F]{24}" from archive/, 'it restored segments from the received WAL');
is(ec_digest($restored, 't', 'x.id'), $digest, 'the recovered server has exactly the primary\'s rows');
my $rkey = ec_key_id($restored);
$restored->safe_psql('postgres', 'CHECKPOINT');
my $rscan = ec_scan_tree($restored->data_dir . '/pg_wal', [$marker], qr{/pg_wal/[^/]+$});
is_deeply($rscan->{hits}, [], 'no row in plaintext in the recovered server\'s pg_wal');
my @rsegs = grep { m{/[0-9A-F]{24}(\.partial)?$} && $rscan->{sizes}{$_} > 0 } @{ $rscan->{files} };
is_deeply([ ec_not_encrypted_under($rscan, $rkey, \@rsegs) ], [],
	'every segment in its pg_wal is encrypted under its own key (' . scalar(@rsegs) . ')');
$restored->stop;
$primary->stop;

# What a cleanly stopped instance leaves for stock tools (item 4): the
# sealed last segment, in plaintext, holding the page header and the
# shutdown checkpoint only; pg_waldump reads it and finds where the WAL ends.
my $cd = ec_controldata($primary);
is($cd->{'Database cluster state'}, 'shut down', 'the primary is cleanly shut down');
my $redo_file = $cd->{"Latest checkpoint's REDO WAL file"};
my $sealed = $primary->data_dir . "/pg_wal/$redo_file";
ok(ec_is_plain_wal($sealed), "the sealed last segment $redo_file is plaintext WAL");
is_deeply([ ec_files_holding($primary->data_dir . '/pg_wal', $marker) ], [], 'no row in plaintext in the stopped primary\'s pg_wal');
# Exactly as Patroni runs it (patroni/postgresql/__init__.py, waldump():
# PGDATA in the environment, no -p, so pg_waldump finds pg_wal by itself and
# takes the segment size from the first segment file it opens), and as
# rewind.py's _get_checkpoint_end() parses it: one record on stdout naming
# the checkpoint's LSN, and "error in WAL record at <lsn>: invalid record
# length at <end>" on stderr.
my $ckpt = $cd->{'Latest checkpoint location'};
my $tli = $cd->{"Latest checkpoint's TimeLineID"};
($rc, $out, $err) = fleet_run([ 'pg_waldump', '-t', $tli, '-s', $ckpt, '-n', '2' ],
	env => { PGDATA => $primary->data_dir, LANG => 'C', LC_ALL => 'C' });
my @out_lines = grep { $_ ne '' } split /\n/, $out;
my @err_lines = grep { $_ ne '' } split /\n/, $err;
diag("stopped instance, pg_waldump -t $tli -s $ckpt -n 2 as Patroni runs it: exit $rc\n  stdout: $out\n  stderr: $err");
# LSNs print as %X/%X or %X/%08X depending on the major: compared as numbers.
my ($redo) = $out =~ m{desc: CHECKPOINT_SHUTDOWN redo ([0-9A-F]+/[0-9A-F]+)};
is(defined $redo ? ec_lsn($redo) : -1, ec_lsn($ckpt), 'pg_waldump, run as Patroni runs it, reads the shutdown checkpoint');
is(scalar(@out_lines), 1, 'one record: the sealed segment holds only the shutdown checkpoint');
my ($at) = ($err_lines[0] // '') =~ m{error in WAL record at ([0-9A-F]+/[0-9A-F]+): invalid record length at [0-9A-F]+/[0-9A-F]+: (?:wanted|expected at least) \d+, got 0};
is(defined $at ? ec_lsn($at) : -1, ec_lsn($ckpt), 'and then the end of WAL, in the form Patroni parses for the checkpoint\'s end');
my @foreign = grep { $_ ne $sealed && !ec_is_plain_wal($_) } ec_wal_segments($primary->data_dir . '/pg_wal');
is_deeply([ map { m{/([^/]+)$} } @foreign ], [],
	'the sealed segment is the only WAL the stopped primary leaves: no segment under its dead key');

done_testing();
