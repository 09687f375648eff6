
# Clean restart of a WAL-encrypted primary.
#
# Contract: a primary with encrypt_wal = on that was stopped cleanly
# (pg_ctl stop -m fast) starts again. Its last WAL segment (holding the
# shutdown checkpoint) is left in plaintext as the instance stops, holding
# only its page header and that checkpoint: the stock pg_waldump reads it on
# the stopped data directory, as HA tools do, and no user data is readable in
# pg_wal. The new instance continues from it under its new key (logged as
# "ephemeral_crypt: continuing from the sealed WAL segment ..."). Nothing committed is lost, the WAL insert position never goes
# backwards, pgbench keeps working (the TPC-B invariant holds), and a
# streaming standby (with its own key) keeps streaming from the restarted
# primary without being rebuilt.

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

my $m1 = ec_marker('clean_restart_before');
my ($primary, $standby) = ec_primary_with_standby(
	before_backup => sub {
		my ($node) = @_;
		$node->command_ok([ 'pgbench', '-i', '-s', '1', '-q', 'postgres' ], 'pgbench -i -s 1');
		ec_create_marked_table($node, $m1, 5000);
	});
my $key1 = ec_key_id($primary);
like($key1, qr/^[0-9a-f]{16}$/, "primary's first key id $key1");
my ($r1) = ec_the_ready_line($primary, 0, 'one ready line at the first start');
is(($r1->{key} // '') . '|' . ($r1->{wal} // ''), "$key1|encrypted with AES-256-XTS (fail_closed)",
	'the first ready line names the key and encrypted WAL');

# The standby, from a base backup, has the extension and its own key.
like(slurp_file($standby->data_dir . '/postgresql.conf'), qr/ephemeral_crypt\.encrypt_wal = on/,
	'the standby encrypts its WAL');
my $standby_key = ec_key_id($standby);
like($standby_key, qr/^[0-9a-f]{16}$/, "standby key id $standby_key");
isnt($standby_key, $key1, 'the standby has its own key');

# A short pgbench run, streamed to the standby.
$primary->command_ok([ 'pgbench', '-n', '-c', '2', '-j', '2', '-t', '200', 'postgres' ],
	'pgbench run before the restart');
$primary->safe_psql('postgres', q{UPDATE t SET s = s || '_u' WHERE id % 7 = 0});
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
is($primary->safe_psql('postgres',
	q{SELECT application_name || '|' || state FROM pg_stat_replication}),
	'standby|streaming', 'before the restart: the standby streams from the primary');

my $sums_before = ec_check_pgbench_invariant($primary, 'before the restart');
is($sums_before->{count}, 400, 'before the restart: 400 pgbench transactions in history');
my %digest_before = map { $_ => ec_digest($primary, $_) }
  qw(t pgbench_accounts pgbench_tellers pgbench_branches pgbench_history);
is(ec_digest($standby, $_), $digest_before{$_}, "before the restart: the standby has the same $_")
  for sort keys %digest_before;
my $insert_before = $primary->lsn('insert');

# Clean stop.
$primary->stop('fast');
my $cd_before = ec_controldata($primary);
is($cd_before->{'Database cluster state'}, 'shut down', 'pg_control says the primary was shut down cleanly');
note "before restart: checkpoint $cd_before->{'Latest checkpoint location'}, "
  . "redo $cd_before->{q{Latest checkpoint's REDO location}}, insert position before the stop $insert_before";
cmp_ok(ec_lsn($cd_before->{'Latest checkpoint location'}), '>=', ec_lsn($insert_before),
	'the shutdown checkpoint is at or after the last insert position seen');

# What the stopped instance leaves readable: the sealed segment, nothing else.
my $sealed = ec_sealed_segment($primary);
isnt($sealed->{magic} // '', $EC_MAGIC, 'the sealed segment carries no encryption header');
is($sealed->{records}, 1, 'pg_waldump on the stopped instance reads exactly one record from the checkpoint on');
my ($record_lsn) = $sealed->{out} =~ m{lsn: ([0-9A-F]+/[0-9A-F]+), prev [0-9A-F]+/[0-9A-F]+, desc: CHECKPOINT_SHUTDOWN};
is(defined $record_lsn ? ec_lsn($record_lsn) : -1, ec_lsn($sealed->{checkpoint}),
	"it is the shutdown checkpoint at $sealed->{checkpoint}");
like($sealed->{err}, qr/invalid record length at [0-9A-F]+\/[0-9A-F]+: (wanted|expected at least) 24, got 0/,
	'and the WAL ends right after it, as pg_waldump reports the end of any WAL');
my $stopped = ec_scan_tree($primary->data_dir . '/pg_wal', [$m1]);
is_deeply($stopped->{hits}, [], 'no marker is readable in the stopped instance\'s pg_wal');

# Start again: the new instance continues from the sealed segment.
my $offset = -s $primary->logfile;
my $started = $primary->start(fail_ok => 1);
ok($started, 'the primary starts again after a clean stop');
my $log = ec_log_since($primary, $offset);
like($log, qr/ephemeral_crypt: continuing from the sealed WAL segment/,
	'the second start logs "ephemeral_crypt: continuing from the sealed WAL segment"');
my ($parsed) = ec_the_ready_line_in($log, 'exactly one ready line for the second start');
my $key2 = $parsed->{key} // '';
like($key2, qr/^[0-9a-f]{16}$/, "the second ready line carries a key id ($key2)");
isnt($key2, $key1, 'the restarted instance has a new key');
is($parsed->{wal} // '', 'encrypted with AES-256-XTS (fail_closed)', 'the restarted instance still encrypts its WAL');
unlike($log, qr/PANIC/, 'no PANIC at the second start');
unlike($log, qr/invalid checkpoint record|invalid primary checkpoint record/, 'no "invalid checkpoint record"');
unlike($log, qr/belongs to a previous instance/, 'the start is not refused as foreign WAL');
unlike($log, qr/WARNING:  ephemeral_crypt:/, 'no layer warning at the second start');

if (!$started)
{
	diag("second start failed; log of the attempt:\n$log");
	$standby->stop;
	done_testing();
	exit;
}

like($log, qr/database system was shut down at/, 'PostgreSQL sees a clean shutdown (no crash recovery)');
unlike($log, qr/database system was not properly shut down|redo starts at/,
	'no crash recovery was needed');
is(ec_key_id($primary), $key2, 'ephemeral_crypt_status() reports the new key');
is($primary->safe_psql('postgres', 'SELECT ready FROM ephemeral_crypt_status()'), 't', 'the restarted instance is ready');

# pg_control and the insert position did not go backwards.
my $cd_after = ec_controldata($primary);
note "after restart: checkpoint $cd_after->{'Latest checkpoint location'}, "
  . "redo $cd_after->{q{Latest checkpoint's REDO location}}";
cmp_ok(ec_lsn($cd_after->{'Latest checkpoint location'}), '>=', ec_lsn($cd_before->{'Latest checkpoint location'}),
	'pg_controldata: checkpoint location after the restart >= before');
cmp_ok(ec_lsn($cd_after->{q{Latest checkpoint's REDO location}}), '>=',
	ec_lsn($cd_before->{q{Latest checkpoint's REDO location}}),
	'pg_controldata: redo location after the restart >= before');
is($cd_after->{q{Latest checkpoint's TimeLineID}}, $cd_before->{q{Latest checkpoint's TimeLineID}},
	'same timeline after the restart');
my $insert_after = $primary->lsn('insert');
cmp_ok(ec_lsn($insert_after), '>=', ec_lsn($cd_before->{'Latest checkpoint location'}),
	"the insert position ($insert_after) is not before the shutdown checkpoint");

# Every committed row is there.
is(ec_digest($primary, $_), $digest_before{$_}, "after the restart: $_ unchanged (count and md5)")
  for sort keys %digest_before;

# The restarted primary keeps working.
$primary->command_ok([ 'pgbench', '-n', '-c', '2', '-j', '2', '-t', '200', 'postgres' ],
	'pgbench runs after the restart');
my $sums_after = ec_check_pgbench_invariant($primary, 'after the restart');
is($sums_after->{count}, 800, 'after the restart: 800 pgbench transactions in history');
my $m2 = ec_marker('clean_restart_after');
$primary->safe_psql('postgres', qq{INSERT INTO t SELECT g, '${m2}_' || g FROM generate_series(5001, 10000) g;});
$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
$primary->safe_psql('postgres', qq{INSERT INTO t SELECT g, '${m2}_' || g FROM generate_series(10001, 12000) g;});
$primary->safe_psql('postgres', 'CHECKPOINT');
my $cd_ckpt = ec_controldata($primary);
cmp_ok(ec_lsn($cd_ckpt->{'Latest checkpoint location'}), '>', ec_lsn($cd_before->{'Latest checkpoint location'}),
	'a checkpoint after the restart lands after the shutdown checkpoint');

# The standby follows without being rebuilt.
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
is($primary->safe_psql('postgres',
	q{SELECT application_name || '|' || state FROM pg_stat_replication}),
	'standby|streaming', 'after the restart: pg_stat_replication shows the standby streaming');
is($standby->safe_psql('postgres', 'SELECT status FROM pg_stat_wal_receiver'), 'streaming',
	'the standby\'s walreceiver is streaming');
for my $table (qw(t pgbench_accounts pgbench_tellers pgbench_branches pgbench_history))
{
	is(ec_digest($standby, $table), ec_digest($primary, $table), "after the restart: the standby has the same $table");
}
like(ec_digest($standby, 't'), qr/^12000\|/, 'the standby has all 12000 rows of t');
ec_check_pgbench_invariant($standby, 'standby after the restart');
is(ec_key_id($standby), $standby_key, 'the standby kept its key (it was not restarted or rebuilt)');
is(scalar(ec_ready_lines($standby)), 1, 'the standby logged a single ready line');
my $standby_log = slurp_file($standby->logfile);
unlike($standby_log, qr/PANIC|FATAL:  .*(timeline|requested starting point)/,
	'the standby logged no PANIC nor timeline/starting point error');

# The primary's WAL is all under the new key: nothing left under the dead one.
my $scan = $primary->safe_psql('postgres',
	q{SELECT count(*) FILTER (WHERE encrypted AND current_instance), count(*) FILTER (WHERE NOT encrypted OR NOT current_instance), count(*) FILTER (WHERE key_id = '} . $key1 . q{')
	  FROM ephemeral_crypt_scan() WHERE category = 'wal'});
my ($cur, $not_cur, $old) = split /\|/, $scan;
cmp_ok($cur, '>', 0, "ephemeral_crypt_scan(): $cur WAL file(s) under the current key");
is($not_cur, '0', 'ephemeral_crypt_scan(): no WAL file that is plaintext or under another key');
is($old, '0', "ephemeral_crypt_scan(): no WAL file under the previous key $key1");
my $raw = ec_scan_markers($primary, 'wal', [ $m1, $m2 ]);
my @wrong = ec_not_encrypted_under($raw, $key2, [ grep { $raw->{sizes}{$_} > 0 } @{ $raw->{files} } ]);
is_deeply(\@wrong, [], "every WAL file of the primary carries the new key $key2 (raw headers)");
is_deeply($raw->{hits}, [], 'no primary WAL file contains a marker in plaintext');
my $st = ec_encryption_status($primary);
is($st->{$_}{failures}, '0', "primary: no $_ failure after the restart") for qw(temp_relation spill wal);

$standby->stop;
$primary->stop;
done_testing();
