
# Unclean end of a WAL-encrypted primary, and the documented way out.
#
# The postmaster and every child die by SIGKILL (a lost host). The local WAL
# was encrypted under a key that died with them, so the data directory must
# not start: the next start is refused with a FATAL that names the previous
# key, says that transactions after the last checkpoint may be missing
# locally, and points to a standby; it never reaches PANIC nor "invalid
# checkpoint record". The standby (synchronous, remote_apply: every commit the
# primary acknowledged is on it) is promoted, and the old primary is
# re-provisioned from it with pg_basebackup as a WAL-encrypted standby of the
# new primary; both hold every row committed before the kill.

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

my $m1 = ec_marker('unclean_1');
my ($primary, $standby) = ec_primary_with_standby(
	slot => 'standby_slot',
	before_backup => sub {
		my ($node) = @_;
		$node->command_ok([ 'pgbench', '-i', '-s', '1', '-q', 'postgres' ], 'pgbench -i -s 1');
		ec_create_marked_table($node, $m1, 5000);
	});
my $key = ec_key_id($primary);
my ($ready) = ec_the_ready_line($primary, 0, 'one ready line');
is($ready->{key}, $key, "the ready line names the primary's key $key");
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

# From now on a commit returns only once the standby has applied it.
$primary->append_conf('postgresql.conf', "synchronous_standby_names = 'standby'\nsynchronous_commit = remote_apply\n");
$primary->reload;
ok($primary->poll_query_until('postgres',
	q{SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'standby'}),
	'the standby is synchronous');

# Writes after the last checkpoint: a pgbench load and marked rows.
$primary->safe_psql('postgres', 'CHECKPOINT');
my $m2 = ec_marker('unclean_2');
$primary->safe_psql('postgres', qq{INSERT INTO t SELECT g, '${m2}_' || g FROM generate_series(5001, 8000) g;});
my ($out, $err) = ('', '');
my $bench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '2', '-j', '2', '-T', '60', '-h', $primary->host, '-p', $primary->port, 'postgres' ],
	'>', \$out, '2>', \$err);
ok($primary->poll_query_until('postgres', 'SELECT count(*) >= 300 FROM pgbench_history'),
	'pgbench committed at least 300 transactions');
my $committed = $primary->safe_psql('postgres', 'SELECT count(*) FROM pgbench_history');
my $t_digest = ec_digest($primary, 't');
my $cd = ec_controldata($primary);
note "last checkpoint before the kill: $cd->{'Latest checkpoint location'}, redo $cd->{q{Latest checkpoint's REDO location}}";

# Lose the host.
my @killed = ec_kill9_all($primary);
note "killed: @killed";
cmp_ok(scalar(@killed), '>', 3, 'SIGKILL reached the postmaster and its children (' . scalar(@killed) . ' processes)');
$bench->finish;
note "pgbench: $out $err";
ok(-e $primary->data_dir . '/postmaster.pid', 'the killed postmaster left its postmaster.pid behind');
is(ec_controldata($primary)->{'Database cluster state'}, 'in production', 'pg_control says the primary was in production');

# The next start is refused, plainly.
my $log = ec_start_refused($primary, 'start after SIGKILL');
like($log, qr/FATAL:  ephemeral_crypt: the local WAL belongs to a previous instance whose key is gone, and that instance did not shut down cleanly/,
	'FATAL: the WAL belongs to a previous instance that did not shut down cleanly');
like($log, qr/DETAIL:  .*instance key \Q$key\E/, "DETAIL names the previous key $key");
like($log, qr/DETAIL:  .*may be missing locally/, 'DETAIL says committed transactions may be missing locally');
like($log, qr/DETAIL:  .*redo at \Q$cd->{q{Latest checkpoint's REDO location}}\E/,
	'DETAIL names the redo location of the last checkpoint');
like($log, qr/HINT:  Promote a standby or re-provision/, 'HINT: promote a standby or re-provision');
unlike($log, qr/PANIC/, 'no PANIC');
unlike($log, qr/invalid checkpoint record|invalid primary checkpoint record/, 'no "invalid checkpoint record"');
unlike($log, qr/redo starts at/, 'no replay was attempted');

# A second attempt is refused the same way (nothing was changed by the first).
$log = ec_start_refused($primary, 'second start after SIGKILL');
like($log, qr/FATAL:  ephemeral_crypt: the local WAL belongs to a previous instance whose key is gone, and that instance did not shut down cleanly/,
	'second attempt: the same FATAL');
unlike($log, qr/PANIC|invalid checkpoint record/, 'second attempt: no PANIC, no invalid checkpoint record');

# The way out: promote the standby.
is(ec_digest($standby, 't'), $t_digest, 'the standby has every row of t committed before the kill');
$standby->promote;
ok($standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'), 'the standby is promoted');
my $sums = ec_check_pgbench_invariant($standby, 'promoted standby');
cmp_ok($sums->{count}, '>=', $committed,
	"the promoted standby has every pgbench transaction seen committed before the kill ($sums->{count} >= $committed)");
is(ec_digest($standby, 't'), $t_digest, 'the promoted standby has t as committed before the kill');
like(ec_digest($standby, 't'), qr/^8000\|/, 't has its 8000 rows');
$standby->command_ok([ 'pgbench', '-n', '-c', '2', '-j', '2', '-t', '100', 'postgres' ], 'pgbench runs on the promoted standby');
ec_check_pgbench_invariant($standby, 'promoted standby after more transactions');

# The promotion wrote a timeline history file; it is not a WAL segment and
# must stay readable as plaintext (PostgreSQL reads it with stdio, ships it
# to standbys and into base backups).
my $tli = substr($standby->safe_psql('postgres', 'SELECT pg_walfile_name(pg_current_wal_lsn())'), 0, 8);
is($tli, '00000002', 'the promoted standby writes on timeline 2');
my $history = $standby->data_dir . "/pg_wal/$tli.history";
ok(-f $history, "the promotion wrote $history");
my $history_text = slurp_file($history);
unlike(substr($history_text, 0, 8), qr/\Q$EC_MAGIC\E/, 'the timeline history file is not encrypted');
like($history_text, qr/^1\t[0-9A-F]+\/[0-9A-F]+\t/, 'the timeline history file reads as a history file (timeline 1 and its switch point)');

# Re-provision the old primary from it: a base backup of the promoted node,
# with the extension and encrypt_wal = on, as its standby.
my $backup_offset = -s $standby->logfile;
my $backup_ok = PostgreSQL::Test::Utils::run_log(
	[ 'pg_basebackup', '-D', $standby->backup_dir . '/rebuild', '-h', $standby->host, '-p', $standby->port,
	  '--checkpoint', 'fast', '--no-sync' ]);
ok($backup_ok, 'pg_basebackup from the promoted standby succeeds');
if (!$backup_ok)
{
	my ($err) = ec_log_since($standby, $backup_offset) =~ /(FATAL:  .*\n(?:.*HINT:  .*)?)/;
	diag('pg_basebackup failed; promoted standby logged: ' . ($err // '(nothing)'));
	$standby->stop;
	done_testing();
	exit;
}
my $rebuilt = PostgreSQL::Test::Cluster->new('rebuilt');
$rebuilt->init_from_backup($standby, 'rebuild', has_streaming => 1);
my $conf = slurp_file($rebuilt->data_dir . '/postgresql.conf');
like($conf, qr/shared_preload_libraries = 'ephemeral_crypt'/, 'the re-provisioned node preloads the extension');
like($conf, qr/ephemeral_crypt\.encrypt_wal = on/, 'the re-provisioned node encrypts its WAL');
$rebuilt->append_conf('postgresql.conf', "primary_slot_name = ''\n");
$rebuilt->start;
my $rlog = slurp_file($rebuilt->logfile);
like($rlog, qr/ephemeral_crypt: encrypted \d+ plaintext WAL segment\(s\)/, 'the re-provisioned node encrypted the WAL of the backup at startup');
my ($rready) = ec_the_ready_line_in($rlog, 'the re-provisioned node logged one ready line');
my $rkey = $rready->{key} // '';
like($rkey, qr/^[0-9a-f]{16}$/, 'the re-provisioned node\'s ready line names its key');
isnt($rkey, $key, 'the re-provisioned node has a key of its own (not the dead one)');
my $m3 = ec_marker('unclean_3');
$standby->safe_psql('postgres', qq{INSERT INTO t SELECT g, '${m3}_' || g FROM generate_series(8001, 9000) g;});
$standby->wait_for_catchup($rebuilt, 'replay', $standby->lsn('insert'));
is($standby->safe_psql('postgres', q{SELECT application_name || '|' || state FROM pg_stat_replication}),
	'rebuilt|streaming', 'the re-provisioned node streams from the new primary');
for my $table (qw(t pgbench_accounts pgbench_tellers pgbench_branches pgbench_history))
{
	is(ec_digest($rebuilt, $table), ec_digest($standby, $table), "the re-provisioned node has the same $table");
}
my $rsums = ec_check_pgbench_invariant($rebuilt, 're-provisioned node');
cmp_ok($rsums->{count}, '>=', $committed, 'the re-provisioned node has every transaction committed before the kill');
is($rebuilt->safe_psql('postgres', q{SELECT count(*) FROM t WHERE s LIKE '} . $m2 . q{%'}), '3000',
	'the rows committed after the last checkpoint of the dead primary are there');
my $scan = ec_scan_markers($rebuilt, 'wal', [ $m1, $m2, $m3 ]);
is_deeply($scan->{hits}, [], 'no marker in the re-provisioned node\'s WAL');

$rebuilt->stop;
$standby->stop;
done_testing();
