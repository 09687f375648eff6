
# No rollback: an older policy never wins, however well it is signed (the
# "stale cache after a forced rollout" drill).
#
#  - Start-up on a signed policy with serial 5 records 5 as the newest serial
#    the data directory has accepted (ephemeral_crypt.policy_serial).
#  - A reload of a validly signed file with serial 4 is refused: WARNING,
#    the policy in force stays, policy_reloads_rejected counts it.
#  - A start on that file is refused with a FATAL naming both serials; so is
#    a start on an older file without any serial (serial 0).
#  - A reload to serial 7 moves the record to 7, so serial 5 is refused at
#    the next start too; serial 7 starts.
#  - An unsigned file's serial never moves the record.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EphemeralCrypt::TestLib;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pub = ec_policy_keypair($dir);

# A signed policy file with $serial (none when undef), kept under its name.
sub signed_policy
{
	my ($name, $serial) = @_;
	my $path = "$dir/$name.policy";
	ec_deploy_policy($dir, $path,
		"version = $name\n" . (defined $serial ? "serial = $serial\n" : '')
		  . "temp_relation = on\nspill = on\nwal = off\n", $name);
	return $path;
}

my $p5 = signed_policy('serial-5', 5);
my $p4 = signed_policy('serial-4', 4);
my $p0 = signed_policy('no-serial', undef);
my $p7 = signed_policy('serial-7', 7);
my $policy = "$dir/fleet.policy";

sub put
{
	my ($from) = @_;
	ec_write_file($policy, slurp_file($from));
}

put($p5);
my $node = ec_new_node('rollback', extension => 1, encrypt_wal => 0, conf => qq{
ephemeral_crypt.policy_file = '$policy'
ephemeral_crypt.policy_public_key = '$pub'
ephemeral_crypt.require_signed_policy = on
});
my $record = $node->data_dir . '/ephemeral_crypt.policy_serial';
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
my $status_sql = q{SELECT policy_version, policy_serial, policy_reloads_rejected
  FROM ephemeral_crypt_status()};
is($node->safe_psql('postgres', $status_sql), 'serial-5|5|0', 'starts on serial 5');
is(slurp_file($record), "5\n", 'the data directory records serial 5');

# ---------------------------------------------------------------------------
# Rollback at reload.
put($p4);
my $log = ec_reload_refused($node, 1, 'reload of serial 4: refused and counted');
like($log,
	qr/WARNING:  ephemeral_crypt: policy file "\Q$policy\E" not reloaded: it is older than the policy in force; the policy in force stays/,
	'reload of serial 4: WARNING');
like($log,
	qr/DETAIL:  serial 4 is older than serial 5, the newest policy this instance has accepted\./,
	'reload of serial 4: the detail names both serials');
is($node->safe_psql('postgres', $status_sql), 'serial-5|5|1', 'reload of serial 4: serial 5 stays in force');

# ---------------------------------------------------------------------------
# Rollback at start-up.
$node->stop;
for my $case ([ $p4, 'serial 4', 4 ], [ $p0, 'a file without a serial', 0 ])
{
	my ($file, $what, $serial) = @$case;
	put($file);
	my $log = ec_start_refused($node, "start on $what");
	like($log,
		qr/FATAL:  ephemeral_crypt: policy file "\Q$policy\E" rejected: it is older than the newest policy this data directory has accepted/,
		"start on $what: FATAL with the reason");
	like($log, qr/DETAIL:  serial $serial is older than serial 5, the newest policy this data directory has accepted\./,
		"start on $what: the detail names both serials");
	is(slurp_file($record), "5\n", "start on $what: the record is unchanged");
}

# ---------------------------------------------------------------------------
# A newer reload moves the record.
put($p5);
$node->start;
put($p7);
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', q{SELECT policy_serial = 7 FROM ephemeral_crypt_status()}),
	'reload of serial 7 applies');
is(slurp_file($record), "7\n", 'the data directory records serial 7');
$node->stop;
put($p5);
my $refused = ec_start_refused($node, 'start on serial 5 after 7');
like($refused, qr/DETAIL:  serial 5 is older than serial 7/, 'start on serial 5 after 7: names both serials');
put($p7);
$node->start;
is($node->safe_psql('postgres', $status_sql), 'serial-7|7|0', 'serial 7 starts');
$node->stop;

# ---------------------------------------------------------------------------
# An unsigned file (accepted without require_signed_policy) does not move it.
my $unsigned = "$dir/unsigned.policy";
ec_write_file($unsigned, "version = unsigned\nserial = 99\ntemp_relation = on\nspill = on\nwal = off\n");
put($unsigned);
$node->append_conf('postgresql.conf', "ephemeral_crypt.require_signed_policy = off\n");
$node->start;
is($node->safe_psql('postgres', 'SELECT policy_serial, policy_signed FROM ephemeral_crypt_status()'),
	'99|f', 'an unsigned serial 99 starts without require_signed_policy');
is(slurp_file($record), "7\n", 'and the record stays at 7');
$node->stop;

done_testing();
