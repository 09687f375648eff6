
# Freshness: a signed not_after that has passed, and a max_key_age the key
# has reached, make the policy stale.
#
#  - ready turns false with the reason, the expiry and the time left are in
#    SQL, and one WARNING is logged (not again on a reload that changes
#    nothing);
#  - encryption goes on exactly as before: a spilling query still writes
#    encrypted files;
#  - without enforcement (stale_policy_action = warn, the default) a role
#    that is not a superuser still connects; with refuse_connections it is
#    refused with a message saying why, while a superuser still gets in;
#  - a fresh policy rolled out by reload makes the instance ready again and
#    lets the role in;
#  - a max_key_age of one second goes stale with the reason naming the key.

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

sub deploy
{
	my ($version, $serial, $extra) = @_;
	ec_deploy_policy($dir, $policy,
		"version = $version\nserial = $serial\ntemp_relation = on\nspill = on\nwal = off\n$extra", $version);
}

deploy('expired', 1, "not_after = 2001-01-01T00:00:00Z\n");
my $node = ec_new_node('expiry', extension => 1, encrypt_wal => 0, conf => qq{
ephemeral_crypt.policy_file = '$policy'
ephemeral_crypt.policy_public_key = '$pub'
ephemeral_crypt.require_signed_policy = on
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION ephemeral_crypt;
CREATE ROLE regular LOGIN;
});

my $reason = 'policy expired at 2001-01-01T00:00:00Z (not_after)';
is($node->safe_psql('postgres', q{SET TIME ZONE 'UTC';
  SELECT ready, not_ready_reason, policy_not_after, policy_time_left < interval '0'
    FROM ephemeral_crypt_status()}),
	"f|$reason|2001-01-01 00:00:00+00|t", 'expired: ready is false with the reason, the expiry and a negative time left');
ok($node->wait_for_log(qr/WARNING:  ephemeral_crypt: the policy in force is stale: \Q$reason\E/),
	'expired: a WARNING is logged');

# A reload that changes nothing does not warn again.
my $offset = -s $node->logfile;
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok(ec_wait_for_log_since($node, qr/ephemeral_crypt: policy file "\Q$policy\E" unchanged/, $offset),
	'a reload of the same file is reported unchanged');
my $warnings = () = slurp_file($node->logfile) =~ /the policy in force is stale/g;
is($warnings, 1, 'the stale WARNING was logged once');

# Encryption goes on.
my $before = ec_encryption_status($node)->{spill}{files_encrypted};
$node->safe_psql('postgres',
	'SELECT count(*) FROM (SELECT g FROM generate_series(1, 50000) g ORDER BY md5(g::text)) s');
my $st = ec_encryption_status($node)->{spill};
cmp_ok($st->{files_encrypted}, '>', $before, 'expired: spill files are still encrypted');
is($st->{enabled}, 't', 'expired: spill is still enabled');

# Without enforcement, everyone connects.
$node->connect_ok('dbname=postgres user=regular', 'warn: a role that is not a superuser connects');

# With enforcement, only superusers.
$node->append_conf('postgresql.conf', "ephemeral_crypt.stale_policy_action = refuse_connections\n");
$node->reload;
ok($node->poll_query_until('postgres', q{SELECT current_setting('ephemeral_crypt.stale_policy_action') = 'refuse_connections'}),
	'refuse_connections is set');
$node->connect_fails('dbname=postgres user=regular',
	'refuse_connections: a role that is not a superuser is refused',
	expected_stderr => qr/new connections are refused while the encryption policy is stale.*\Q$reason\E/s);
$node->connect_ok('dbname=postgres', 'refuse_connections: a superuser still connects');

# A fresh policy by reload.
deploy('fresh', 2, "not_after = 2999-01-01T00:00:00Z\n");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', q{SELECT policy_serial = 2 FROM ephemeral_crypt_status()}),
	'the fresh policy is in force');
is($node->safe_psql('postgres', q{SELECT ready, not_ready_reason IS NULL, policy_time_left > interval '0'
    FROM ephemeral_crypt_status()}), 't|t|t', 'fresh: ready again, with time left');
$node->connect_ok('dbname=postgres user=regular', 'fresh: the role connects again');

# The key's age.
deploy('short-key-age', 3, "max_key_age = 1s\n");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', q{SELECT policy_serial = 3 FROM ephemeral_crypt_status()}),
	'the max_key_age policy is in force');
ok($node->poll_query_until('postgres', q{SELECT NOT ready FROM ephemeral_crypt_status()}),
	'max_key_age: the policy goes stale');
is($node->safe_psql('postgres', q{SELECT not_ready_reason, policy_max_key_age FROM ephemeral_crypt_status()}),
	q{the instance key is older than the policy's max_key_age of 1s|00:00:01},
	'max_key_age: the reason names the key');
$node->connect_fails('dbname=postgres user=regular',
	'max_key_age: refuse_connections refuses the role',
	expected_stderr => qr/max_key_age of 1s/);

# The exporter's instance query reads the new figures as they are.
my $yaml = slurp_file("$FindBin::RealBin/../../ops/postgres_exporter_queries.yaml");
my ($query) = $yaml =~ /^ephemeral_crypt_instance:\n  query: >-\n((?:    .*\n)+)/m;
ok(defined $query, 'the exporter file has the instance query');
$query =~ s/^\s+//mg;
$query =~ s/\n/ /g;
like($node->safe_psql('postgres', "SELECT ready, policy_serial, pending_restart, policy_reloads_rejected, "
	  . "policy_time_left_seconds < 0 FROM ($query) q"),
	qr/^0\|3\|0\|0\|t$/, 'the exporter query: not ready, serial 3, nothing pending, time left negative');

$node->stop;
done_testing();
