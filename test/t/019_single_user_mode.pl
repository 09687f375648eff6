
# Single-user mode (postgres --single) with WAL encryption, as Patroni and
# pg_rewind run it for crash recovery, with -c archive_command=false.
#
# After a clean stop, a single-user session behaves like a multi-user start
# and stop: it starts from the sealed segment, its own shutdown is sealed
# (its checkpoint left readable for pg_waldump), it exits 0 without a fault,
# and the next multi-user start is normal with every row there. No setting
# only the archiver uses refuses it. After an unclean end (SIGKILL), it is
# refused at once, exactly like a multi-user start: exit status 1 with a
# FATAL that says why and what to do, no crash, and the data directory is
# left as it was (a multi-user start is refused the same way).

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

# Runs a single-user backend on $node's data directory, as Patroni does
# (stdin closed, archive_command=false); returns (exit status, signal, stderr).
sub single_user
{
	my ($node, $input) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'postgres', '--single', '-D', $node->data_dir,
			'-c', 'archive_mode=on', '-c', 'archive_command=false', 'postgres'
		],
		'<', \$input, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	$h->finish;
	return ($h->full_result(0) >> 8, $h->full_result(0) & 127, $err, $out);
}

my $m = ec_marker('single_user');
my $node = ec_start_primary('single', allows_streaming => 1);
ec_create_marked_table($node, $m, 3000);
my $digest = ec_digest($node, 't');
$node->stop('fast');

# A session after a clean stop, then the next multi-user start.
for my $round (1, 2)
{
	my ($status, $signal, $err, $out) =
	  single_user($node,
		"INSERT INTO t SELECT g, '${m}_single$round' FROM generate_series(${round}0001, ${round}0010) g;\n");
	is($signal, 0, "single-user session $round: no signal (no fault)");
	is($status, 0, "single-user session $round: exit status 0");
	unlike($err, qr/ERROR|FATAL|PANIC|belongs to a previous instance/, "single-user session $round: no ERROR, FATAL nor PANIC");
	like($err, qr/ephemeral_crypt: continuing from the sealed WAL segment/,
		"single-user session $round: it continues from the sealed segment");
	my $sealed = ec_sealed_segment($node);
	like($sealed->{out}, qr/desc: CHECKPOINT_SHUTDOWN/,
		"single-user session $round: its own shutdown was sealed (checkpoint readable by pg_waldump)");
	is(ec_controldata($node)->{'Database cluster state'}, 'shut down', "single-user session $round: pg_control says shut down");
}
my $scan = ec_scan_tree($node->data_dir . '/pg_wal', [$m]);
is_deeply($scan->{hits}, [], 'no marker is readable in pg_wal after the single-user sessions');

my $offset = -s $node->logfile;
ok($node->start(fail_ok => 1), 'the next multi-user start succeeds');
my $log = ec_log_since($node, $offset);
like($log, qr/database system was shut down at/, 'it sees a clean shutdown');
unlike($log, qr/redo starts at|PANIC|FATAL/, 'no crash recovery, no PANIC or FATAL');
is(ec_digest($node, 't') =~ /^(\d+)\|/ ? $1 : '', 3020, 'every row is there, the single-user ones included');

# An unclean end: single-user mode is refused like a multi-user start.
$node->safe_psql('postgres', "INSERT INTO t SELECT g, '${m}_late' FROM generate_series(90001, 90010) g");
ec_kill9_all($node);
my @before = sort glob($node->data_dir . '/pg_wal/0*');
my ($status, $signal, $err) = single_user($node, '');
is($signal, 0, 'after an unclean end: no signal (no fault)');
is($status, 1, 'after an unclean end: the single-user start is refused (exit status 1)');
like($err, qr/FATAL:  ephemeral_crypt: the local WAL belongs to a previous instance whose key is gone, and that instance did not shut down cleanly/,
	'the FATAL says why');
like($err, qr/HINT:  Promote a standby or re-provision this instance from one/, 'the HINT says what to do');
unlike($err, qr/ephemeral_crypt_encrypt_wal cannot be combined|archive_command/,
	'no guard rail refuses it for archive_command');
is_deeply([ sort glob($node->data_dir . '/pg_wal/0*') ], \@before, 'pg_wal is left as it was');
ec_start_refused($node, 'the multi-user start after the refused single-user one');

done_testing();
