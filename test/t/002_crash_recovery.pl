
# Crash recovery under WAL encryption.
#
# With every category encrypted (encrypt_wal = on), a pgbench load runs while
# one of its backends is killed with SIGKILL. The postmaster (which keeps the
# instance key) terminates every backend, reinitialises and replays the
# encrypted WAL. Afterwards the TPC-B invariant must hold (the money in
# accounts, tellers and branches equals the sum of the history), and the
# extension must be ready under the same instance key. The node is never
# restarted: a WAL-encrypted instance cannot read its WAL after a restart.

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
use Time::HiRes qw(usleep);
use EphemeralCrypt::TestLib;

my $node = ec_new_node(
	'crash',
	extension => 1,
	encrypt_wal => 1,
	conf => "restart_after_crash = on\nwork_mem = 4MB\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');

my $key = ec_key_id($node);
like($key, qr/^[0-9a-f]{16}$/, "instance key id before the crash: $key");
my ($r) = ec_the_ready_line($node, 0, 'one ready line at startup');
is(($r->{key} // '') . '|' . ($r->{wal} // ''), "$key|encrypted with AES-256-XTS (fail_closed)", 'the ready line names the key and encrypted WAL');

$node->command_ok([ 'pgbench', '-i', '-s', '1', '-q', 'postgres' ], 'pgbench -i -s 1');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pgbench_accounts'), '100000', '100000 accounts loaded');

sub check_invariant
{
	my ($when) = @_;
	my $r = $node->safe_psql(
		'postgres', q{SELECT (SELECT sum(abalance) FROM pgbench_accounts),
		                     (SELECT sum(tbalance) FROM pgbench_tellers),
		                     (SELECT sum(bbalance) FROM pgbench_branches),
		                     (SELECT coalesce(sum(delta), 0) FROM pgbench_history),
		                     (SELECT count(*) FROM pgbench_history)});
	my ($a, $t, $b, $h, $n) = split /\|/, $r;
	note "$when: accounts $a, tellers $t, branches $b, history $h over $n rows";
	is($a, $h, "$when: sum(abalance) = sum(delta) of pgbench_history ($h)");
	is($t, $h, "$when: sum(tbalance) = sum(delta)");
	is($b, $h, "$when: sum(bbalance) = sum(delta)");
	return $n;
}

# Background load: 4 clients for up to 60 s; the crash ends it much earlier.
my ($out, $err) = ('', '');
my $bench;
{
	local $ENV{PGAPPNAME} = 'ec_bench';
	$bench = IPC::Run::start(
	  [ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', '60', '-h', $node->host, '-p', $node->port, 'postgres' ],
	  '>', \$out, '2>', \$err);
}

# Wait until the clients have committed a good number of transactions.
ok($node->poll_query_until('postgres', 'SELECT count(*) >= 500 FROM pgbench_history'),
	'pgbench committed at least 500 transactions');
my $victim = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE application_name = 'ec_bench' AND backend_type = 'client backend' ORDER BY pid LIMIT 1});
like($victim, qr/^\d+$/, "a pgbench backend to kill: $victim");
my $committed_before = $node->safe_psql('postgres', 'SELECT count(*) FROM pgbench_history');

my $log_offset = -s $node->logfile;
is(kill('KILL', $victim), 1, "SIGKILL sent to backend $victim");

# The postmaster notices, terminates everything and recovers. From
# PostgreSQL 18 on it names the process by its type ("client backend (PID n)")
# where earlier majors say "server process (PID n)".
ok($node->wait_for_log(qr/(?:server process|client backend) \(PID $victim\) was terminated by signal 9/, $log_offset),
	'the postmaster reports the killed backend');
ok($node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset),
	'the postmaster reinitializes');
ok($node->wait_for_log(qr/database system is ready to accept connections/, $log_offset),
	'crash recovery completes');
$bench->finish;
note "pgbench stdout: $out";
note "pgbench stderr: $err";
like($err, qr/server closed the connection|terminating connection|connection to server .* lost|perhaps|aborted/i,
	'pgbench saw its connections end with the crash');

my $log = ec_log_since($node, $log_offset);
like($log, qr/database system was interrupted; last known up at|database system was not properly shut down; automatic recovery in progress/,
	'recovery ran');
like($log, qr/redo starts at [0-9A-F]+\/[0-9A-F]+/, 'WAL replay started (over encrypted WAL)');
like($log, qr/redo done at [0-9A-F]+\/[0-9A-F]+/, 'WAL replay finished');
unlike($log, qr/ephemeral_crypt: (encrypted I\/O failed|file rejected|file written in plaintext|bypass refused)/,
	'no layer event during crash and recovery');
is(scalar(ec_ready_lines_in($log)), 0, 'the extension was not re-initialized (the postmaster kept its key)');

# After recovery.
my $n = check_invariant('after crash recovery');
cmp_ok($n, '>=', $committed_before, "history keeps every transaction committed before the kill ($n >= $committed_before)");
is($node->safe_psql('postgres', 'SELECT ready FROM ephemeral_crypt_status()'), 't', 'ephemeral_crypt still ready');
is(ec_key_id($node), $key, 'same instance key id after crash recovery');
is($node->safe_psql('postgres', q{SELECT enabled FROM ephemeral_crypt_encryption_status() WHERE category = 'wal'}),
	't', 'WAL still encrypted');

# The recovered server keeps working and keeps encrypting.
$node->command_ok([ 'pgbench', '-n', '-c', '2', '-t', '200', 'postgres' ], 'pgbench runs after recovery');
check_invariant('after more transactions');
$node->safe_psql('postgres', 'CHECKPOINT');
my @wal = grep { -s $_ } ec_category_files($node, 'wal');
cmp_ok(scalar(@wal), '>', 0, 'WAL segments on disk');
my @bad;
for my $f (@wal)
{
	my ($magic, $id) = ec_read_header($f);
	push @bad, $f unless defined $magic && $magic eq $EC_MAGIC && $id eq $key;
}
is_deeply(\@bad, [], "every WAL segment starts with $EC_MAGIC and carries key $key");
my $st = ec_encryption_status($node);
cmp_ok($st->{wal}{bytes_encrypted}, '>', 0, 'WAL bytes encrypted since the reinitialization');
is($st->{$_}{failures}, '0', "no $_ failure") for qw(temp_relation spill wal);

$node->stop;
done_testing();
