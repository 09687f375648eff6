
# The decision trail: ephemeral_crypt_events() and its LOG lines.
#
#  - the policy worker records the policy in force when it starts, with the
#    identity (key id), the policy (version, digest) and the file;
#  - a burst of refusals (the test-only fault switch makes every spill file
#    fail closed) overflows a ring of 16 events: the ring keeps the 16
#    newest, numbered without gaps, each with its process, backend type,
#    category, file, action, errno, policy and key, and the status counts
#    what was recorded and dropped (the "telemetry degraded during high
#    traffic" drill); every event is also one LOG line with its fields;
#  - a badly signed reload is recorded as the newest event.

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
my $policy = "$dir/fleet.policy";
ec_deploy_policy($dir, $policy, "version = trail-1\nserial = 1\ntemp_relation = on\nspill = on\nwal = off\n", 'trail-1');

my $node = ec_new_node('trail', extension => 1, encrypt_wal => 0, conf => qq{
ephemeral_crypt.policy_file = '$policy'
ephemeral_crypt.policy_public_key = '$pub'
ephemeral_crypt.require_signed_policy = on
ephemeral_crypt.event_ring_size = 16
ephemeral_crypt.test_fault = 'spill'
});
{
	local $ENV{EPHEMERAL_CRYPT_TEST_FAULTS} = '1';
	$node->start;
}
$node->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
my ($key, $digest) = split /\|/,
  $node->safe_psql('postgres', 'SELECT instance_key_id, policy_digest FROM ephemeral_crypt_status()');

# ---------------------------------------------------------------------------
# The worker's first event.
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM ephemeral_crypt_events() WHERE action = 'policy_in_force'}),
	'the policy worker records the policy in force');
is($node->safe_psql('postgres', q{SELECT event_id, backend_type, category IS NULL, file, error_number,
  policy_version, policy_digest, key_id, pid > 0, event_time <= now()
  FROM ephemeral_crypt_events() WHERE action = 'policy_in_force'}),
	"1|ephemeral_crypt policy|t|$policy|0|trail-1|$digest|$key|t|t",
	'policy_in_force: process, file, policy and key');

# ---------------------------------------------------------------------------
# A burst of refusals.
my $failed = 0;
for my $i (1 .. 40)
{
	my ($ret) = $node->psql('postgres', q{SET max_parallel_workers_per_gather = 0;
		SELECT count(*) FROM (SELECT g FROM generate_series(1, 50000) g ORDER BY md5(g::text)) s});
	$failed++ if $ret != 0;
}
is($failed, 40, 'every spilling query of the burst fails closed');

my ($recorded, $dropped, $held, $first, $last) = split /\|/, $node->safe_psql('postgres',
	q{SELECT s.events_recorded, s.events_dropped, e.n, e.first, e.last
	    FROM ephemeral_crypt_status() s,
	         (SELECT count(*) AS n, min(event_id) AS first, max(event_id) AS last
	            FROM ephemeral_crypt_events()) e});
cmp_ok($recorded, '>=', 41, "the burst recorded an event per refusal ($recorded in all)");
is($held, 16, 'the ring holds its 16 events');
is($dropped, $recorded - 16, 'the older events are counted as dropped');
is($last, $recorded, 'the newest event is kept');
is($first, $recorded - 15, 'the 16 newest, without gaps');

is($node->safe_psql('postgres', q{SELECT count(*) FROM ephemeral_crypt_events()
  WHERE action = 'io_failure' AND category = 'spill' AND error_number = 5
    AND backend_type = 'client backend' AND file LIKE 'base/pgsql_tmp/pgsql_tmp%'
    AND key_id = } . "'$key' AND policy_digest = '$digest' AND policy_version = 'trail-1'"),
	'16', 'each refusal: action, category, errno EIO, backend type, file, key and policy');

my $log = slurp_file($node->logfile);
like($log,
	qr/LOG:  ephemeral_crypt: event $last: action io_failure, category spill, file "base\/pgsql_tmp\/pgsql_tmp\d+\.\d+", errno 5, pid \d+ \(client backend\), policy version "trail-1", digest $digest, key $key: /,
	'the newest event is also a LOG line with its fields');
my $lines = () = $log =~ /LOG:  ephemeral_crypt: event \d+: /g;
is($lines, $recorded, 'one LOG line per event, dropped ones included');

# ---------------------------------------------------------------------------
# A badly signed reload.
my $text = slurp_file($policy);
$text =~ s/^spill = on$/spill = off/m;
ec_write_file($policy, $text);
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres',
	q{SELECT action = 'policy_rejected' FROM ephemeral_crypt_events() ORDER BY event_id DESC LIMIT 1}),
	'the badly signed reload is the newest event');
like($node->safe_psql('postgres',
	q{SELECT backend_type || '|' || file || '|' || detail FROM ephemeral_crypt_events()
	  ORDER BY event_id DESC LIMIT 1}),
	qr/^ephemeral_crypt policy\|\Q$policy\E\|line \d+: bad signature/,
	'policy_rejected: the worker, the file, and the reason with its line');

# Revoked from PUBLIC.
$node->safe_psql('postgres', 'CREATE ROLE nobody LOGIN');
my ($ret, undef, $perm) = $node->psql('postgres', 'SELECT count(*) FROM ephemeral_crypt_events()',
	extra_params => [ '-U', 'nobody' ]);
like($perm, qr/permission denied for function ephemeral_crypt_events/, 'events: revoked from PUBLIC');

$node->stop;
done_testing();
