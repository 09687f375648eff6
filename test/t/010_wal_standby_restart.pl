
# Clean restart of a WAL-encrypted standby.
#
# Contract: a streaming standby with encrypt_wal = on, stopped cleanly, starts
# again with a new key. The WAL segments in its pg_wal were encrypted under
# the previous instance's key and cannot be read any more: the standby
# removes them, says so ("ephemeral_crypt: removed N WAL segment(s) ...
# recovery fetches WAL again from X/Y (the last restartpoint)", with a hint
# about what must keep that WAL on the primary), fetches it again by
# streaming, catches up and holds the same data.
#
# The standby replays from its last restartpoint, which can be older than
# what its replication slot keeps (a slot keeps WAL from what the standby had
# flushed), so the primary keeps WAL with wal_keep_size, as the README says.
# Two rounds: the first stops, writes on the primary and starts; the second
# also checkpoints the primary and switches segments while the standby is
# down, which would recycle WAL the standby needs without wal_keep_size.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
# The Makefile's PROVE_FLAGS (-I test/perl) is reset by PGXS's Makefile.global,
# so find the shared helpers relative to this file.
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EphemeralCrypt::TestLib;

my $m0 = ec_marker('standby_restart_0');
my ($primary, $standby) = ec_primary_with_standby(
	primary_conf => "wal_keep_size = '512MB'\n",
	slot => 'standby_slot',
	before_backup => sub {
		my ($node) = @_;
		$node->command_ok([ 'pgbench', '-i', '-s', '1', '-q', 'postgres' ], 'pgbench -i -s 1');
		ec_create_marked_table($node, $m0, 5000);
	});
like(slurp_file($standby->data_dir . '/postgresql.conf'), qr/ephemeral_crypt\.encrypt_wal = on/,
	'the standby encrypts its WAL');

$primary->command_ok([ 'pgbench', '-n', '-c', '2', '-j', '2', '-t', '200', 'postgres' ], 'pgbench before the first stop');
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
is($primary->safe_psql('postgres', q{SELECT active FROM pg_replication_slots WHERE slot_name = 'standby_slot'}),
	't', 'the standby streams through its slot');
my $key = ec_key_id($standby);
like($key, qr/^[0-9a-f]{16}$/, "standby's first key $key");
is(ec_digest($standby, 't'), ec_digest($primary, 't'), 'before the first stop: same t on the standby');

my $id = 5000;
for my $round (1, 2)
{
	my $what = "round $round";

	# The standby's restartpoint lags behind what it received: the primary
	# checkpoints only in round 2, after the standby is down.
	$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
	$primary->command_ok([ 'pgbench', '-n', '-c', '2', '-j', '2', '-t', '100', 'postgres' ], "$what: pgbench before the stop");
	$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
	my $standby_segments = scalar(grep { -s $_ } ec_category_files($standby, 'wal'));
	my $standby_cd = ec_controldata($standby);
	note "$what: standby restartpoint redo $standby_cd->{q{Latest checkpoint's REDO location}}, "
	  . "$standby_segments WAL segment(s) in its pg_wal";

	$standby->stop('fast');
	is(ec_controldata($standby)->{'Database cluster state'}, 'shut down in recovery',
		"$what: the standby was shut down cleanly");

	# Writes while the standby is down.
	my $m = ec_marker("standby_restart_$round");
	my ($from, $to) = ($id + 1, $id + 4000);
	$primary->safe_psql('postgres', qq{INSERT INTO t SELECT g, '${m}_' || g FROM generate_series($from, $to) g;});
	$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
	$primary->command_ok([ 'pgbench', '-n', '-c', '2', '-j', '2', '-t', '200', 'postgres' ],
		"$what: pgbench while the standby is down");
	$primary->safe_psql('postgres', qq{UPDATE t SET s = s || '_r$round' WHERE id % 11 = $round});
	if ($round == 2)
	{
		$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
		$primary->safe_psql('postgres', 'CHECKPOINT');
		$primary->safe_psql('postgres', 'CHECKPOINT');
	}
	$id = $to;
	my $restart_lsn = $primary->safe_psql('postgres',
		q{SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'standby_slot'});
	note "$what: slot restart_lsn while the standby is down: $restart_lsn";

	# Start again.
	my $offset = -s $standby->logfile;
	# A standby that cannot reach a consistent state in 30 s here never will
	# (pg_ctl would otherwise wait 60 s).
	my $started;
	{
		local $ENV{PGCTLTIMEOUT} = 30;
		$started = $standby->start(fail_ok => 1);
	}
	ok($started, "$what: the standby starts again after a clean stop");
	my $log_start = ec_log_since($standby, $offset);
	like($log_start, qr/ephemeral_crypt: removed [1-9]\d* WAL segment\(s\) encrypted under the previous instance's key \Q$key\E/,
		"$what: the standby says it removed the WAL segments of the previous instance (key $key)");
	like($log_start, qr/ephemeral_crypt: removed .*recovery fetches WAL again from [0-9A-F]+\/[0-9A-F]+ \(the last restartpoint\)/,
		"$what: and from where it fetches WAL again");
	like($log_start, qr/HINT:  The primary must still hold that WAL: .*wal_keep_size/,
		"$what: the hint names what keeps that WAL on the primary");
	my ($parsed) = ec_the_ready_line_in($log_start, "$what: one ready line");
	my $new_key = $parsed->{key} // '';
	like($new_key, qr/^[0-9a-f]{16}$/, "$what: the standby has a key ($new_key)");
	isnt($new_key, $key, "$what: a new key");

	if (!$started)
	{
		my @removed = $log_start =~ /(requested WAL segment \S+ has already been removed)/g;
		diag("$what: start failed; the primary's slot restart_lsn was $restart_lsn, the standby's restartpoint redo "
			  . $standby_cd->{q{Latest checkpoint's REDO location}} . '; '
			  . (@removed ? scalar(@removed) . " x \"$removed[0]\"" : 'log:' . "\n$log_start"));
		unlike($log_start, qr/requested WAL segment \S+ has already been removed/,
			"$what: the primary still had every segment the standby asked for");
		last;
	}

	# It streams again and catches up.
	my $streaming = ec_wait_for_log_since($standby, qr/started streaming WAL from primary/, $offset, 60);
	ok($streaming, "$what: the standby streams from the primary again");
	my $log = ec_log_since($standby, $offset);
	unlike($log, qr/requested WAL segment \S+ has already been removed/,
		"$what: the primary still had every segment the standby asked for");
	if (!$streaming)
	{
		diag("$what: the standby did not stream again; log:\n$log");
		last;
	}
	$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
	$log = ec_log_since($standby, $offset);
	unlike($log, qr/PANIC|invalid checkpoint record|belongs to a previous instance/,
		"$what: no PANIC, no invalid checkpoint, no refusal");
	unlike($log, qr/WARNING:  ephemeral_crypt:/, "$what: no layer warning");
	is($primary->safe_psql('postgres',
		q{SELECT application_name || '|' || state FROM pg_stat_replication}),
		'standby|streaming', "$what: pg_stat_replication shows the standby streaming");
	is($primary->safe_psql('postgres', q{SELECT active FROM pg_replication_slots WHERE slot_name = 'standby_slot'}),
		't', "$what: through its slot");
	is(ec_key_id($standby), $new_key, "$what: ephemeral_crypt_status() reports the new key");
	is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', "$what: still a standby");

	for my $table (qw(t pgbench_accounts pgbench_tellers pgbench_branches pgbench_history))
	{
		is(ec_digest($standby, $table), ec_digest($primary, $table), "$what: the standby has the same $table");
	}
	like(ec_digest($standby, 't'), qr/^$id\|/, "$what: the standby has all $id rows of t");
	ec_check_pgbench_invariant($standby, "$what: standby");

	# Its WAL is all under the new key, without markers.
	$standby->safe_psql('postgres', 'CHECKPOINT');
	my $scan = ec_scan_markers($standby, 'wal', [ $m0, $m ]);
	my @wrong = ec_not_encrypted_under($scan, $new_key, [ grep { $scan->{sizes}{$_} > 0 } @{ $scan->{files} } ]);
	is_deeply(\@wrong, [], "$what: every WAL file of the standby carries its new key $new_key");
	is_deeply($scan->{hits}, [], "$what: no marker in the standby's WAL");
	is($standby->safe_psql('postgres',
		q{SELECT count(*) FROM ephemeral_crypt_scan() WHERE category = 'wal' AND (NOT encrypted OR NOT current_instance)}),
		'0', "$what: ephemeral_crypt_scan() finds no WAL file outside the current key");
	$key = $new_key;
}

$standby->stop;
$primary->stop;
done_testing();
