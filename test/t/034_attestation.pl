
# Periodic attestation (ephemeral_crypt.attestation_interval): the policy
# worker re-checks what start-up proved, and each kind of fault is found:
#
#  - a clean instance passes the five checks, ready is true, and one LOG
#    line says so;
#  - a plaintext file planted in pgsql_tmp fails data_directory with the
#    file named, turns ready false with the reason, records an
#    attestation_changed event and logs once however many runs see it; it
#    passes again once the file is gone;
#  - a GOT slot written over in the worker (test-hooks build) fails
#    got_slots naming the symbol, and passes once patched again;
#  - the policy file changed on disk (another validly signed policy, then a
#    file that no longer verifies) fails policy_file, and passes once the
#    file in force is back;
#  - the exporter's query reads one row per check;
#  - turning attestation off (interval 0) reports it off and ready again.
#
# Every wait is bounded (poll_query_until); no timing is asserted.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EphemeralCrypt::TestLib;

my $dir = PostgreSQL::Test::Utils::tempdir();
my ($rc, $out, $err) = ec_policy_tool('keygen', '--public', "$dir/pub", '--secret', "$dir/sec");
is($rc, 0, 'keygen') or diag($err);
my $pub = slurp_file("$dir/pub");
$pub =~ s/\s+$//;
my $policy = "$dir/fleet.policy";

sub sign_policy
{
	my ($path, $version, $serial) = @_;
	ec_write_file("$dir/next.policy",
		"version = $version\nserial = $serial\ntemp_relation = on\nspill = on\nwal = off\n");
	my ($rc, undef, $err) = ec_policy_tool('sign', '--secret', "$dir/sec", "$dir/next.policy");
	is($rc, 0, "sign $version") or diag($err);
	rename("$dir/next.policy", $path) or die "rename: $!";
}

sign_policy($policy, 'attested', 1);
my $in_force = slurp_file($policy);

local $ENV{EPHEMERAL_CRYPT_TEST_FAULTS} = '1';
my $node = ec_new_node('attest', extension => 1, encrypt_wal => 0, conf => qq{
ephemeral_crypt.policy_file = '$policy'
ephemeral_crypt.policy_public_key = '$pub'
ephemeral_crypt.require_signed_policy = on
ephemeral_crypt.attestation_interval = '200ms'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');

# Waits until a run that started after now reports `condition` (SQL over
# ephemeral_crypt_attestation() as a).
sub wait_for_run
{
	my ($condition, $what) = @_;
	my $mark = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
	ok( $node->poll_query_until(
			'postgres', qq{SELECT bool_and(a.last_run > '$mark') AND ($condition)
			                 FROM ephemeral_crypt_attestation() a}),
		$what);
}

sub check_row
{
	my ($name) = @_;
	return $node->safe_psql('postgres',
		"SELECT passed, detail FROM ephemeral_crypt_attestation() WHERE check_name = '$name'");
}

sub log_count
{
	my ($re, $offset) = @_;
	my @lines = slurp_file($node->logfile, $offset) =~ /$re/g;
	return scalar @lines;
}

my $pass_line = qr/LOG:  ephemeral_crypt: attestation passes/;
my $fail_line = qr/LOG:  ephemeral_crypt: attestation fails: [^\n]*/;

# A clean instance.
wait_for_run('count(*) = 5 AND bool_and(a.passed)', 'a clean instance passes every check');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(check_name, ',' ORDER BY check_name), bool_and(enabled),
		         bool_and(next_run > last_run), bool_and(cpu_ms >= 0), bool_and(duration_ms >= 0),
		         bool_and(files_scanned >= 0), bool_or(scan_cut_short)
		    FROM ephemeral_crypt_attestation()}),
	'ciphers,data_directory,got_slots,key_memory,policy_file|t|t|t|t|t|f',
	'the five checks, with the next run after the last, CPU time and duration');
is($node->safe_psql('postgres', 'SELECT ready, not_ready_reason FROM ephemeral_crypt_status()'),
	't|', 'ready while every check passes');
like(check_row('got_slots'), qr/^t\|\d+ slot\(s\) in \d+ object\(s\) point at the layer$/,
	'got_slots counts the slots that point at the layer');
like(check_row('policy_file'), qr/^t\|"\Q$policy\E" verifies and holds the digest in force/,
	'policy_file: the file verifies and holds the digest in force');
wait_for_run('bool_and(a.passed)', 'another clean run');
is(log_count($pass_line, 0), 1, 'one LOG line for the first outcome, none for the same again');

# A plaintext file in pgsql_tmp.
my $offset = -s $node->logfile;
my $tmpdir = $node->data_dir . '/base/pgsql_tmp';
mkdir $tmpdir unless -d $tmpdir;
my $planted = 'base/pgsql_tmp/pgsql_tmp99999.0';
ec_write_file($node->data_dir . "/$planted", "plaintext that escaped the layer\n" x 10);
wait_for_run(q{bool_and(a.passed) FILTER (WHERE a.check_name = 'data_directory') = false},
	'the planted plaintext file is found');
like(check_row('data_directory'), qr/^f\|1 plaintext file\(s\) in encrypted categories: \Q$planted\E \(/,
	'data_directory names the plaintext file');
like($node->safe_psql('postgres', 'SELECT ready, not_ready_reason FROM ephemeral_crypt_status()'),
	qr/^f\|attestation check data_directory fails: .*\Q$planted\E/,
	'ready is false with the failing check as the reason');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM ephemeral_crypt_events()
		   WHERE action = 'attestation_changed' AND detail LIKE '%pgsql_tmp99999.0%'
		     AND backend_type = 'ephemeral_crypt policy'}),
	'1', 'the change is an event in the decision trail');
wait_for_run(q{bool_and(a.passed) FILTER (WHERE a.check_name = 'data_directory') = false},
	'a later run still finds it');
is(log_count($fail_line, $offset), 1, 'one LOG line for the change, not one per run');
like(slurp_file($node->logfile, $offset), qr/attestation fails: data_directory: [^\n]*\Q$planted\E/,
	'the LOG line names the check and the file');
unlink $node->data_dir . "/$planted" or die "unlink: $!";
wait_for_run('bool_and(a.passed)', 'every check passes once the file is gone');
is($node->safe_psql('postgres', 'SELECT ready FROM ephemeral_crypt_status()'), 't',
	'ready again');
is(log_count($pass_line, $offset), 1, 'the recovery is logged once');

# A GOT slot written over (the worker's own lseek slot, test-hooks build).
$offset = -s $node->logfile;
$node->safe_psql('postgres',
	'ALTER SYSTEM SET ephemeral_crypt.test_divert_got_slot = on; SELECT pg_reload_conf()');
wait_for_run(q{bool_and(a.passed) FILTER (WHERE a.check_name = 'got_slots') = false},
	'the overwritten GOT slot is found');
like(check_row('got_slots'),
	qr/^f\|\d+ slot\(s\) no longer point at the layer; first: \(main program\): lseek/,
	'got_slots names the object and the symbol');
like($node->safe_psql('postgres', 'SELECT ready, not_ready_reason FROM ephemeral_crypt_status()'),
	qr/^f\|attestation check got_slots fails/, 'ready is false while the slot is diverted');
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET ephemeral_crypt.test_divert_got_slot; SELECT pg_reload_conf()');
wait_for_run('bool_and(a.passed)', 'patched again, every check passes');
is(log_count($fail_line, $offset), 1, 'the slot fault was logged once');
is(log_count($pass_line, $offset), 1, 'and its repair once');

# The policy file changed on disk: another signed policy, not reloaded.
$offset = -s $node->logfile;
sign_policy($policy, 'rolled-out-behind-our-back', 2);
wait_for_run(q{bool_and(a.passed) FILTER (WHERE a.check_name = 'policy_file') = false},
	'a policy file other than the one in force is found');
like(check_row('policy_file'),
	qr/^f\|"\Q$policy\E" holds digest [0-9a-f]{64}, not the digest in force [0-9a-f]{64}$/,
	'policy_file names both digests');
# Then a file that no longer verifies.
my $tampered = $in_force;
$tampered =~ s/spill = on/spill = off/ or die 'no spill line to change';
ec_write_file($policy, $tampered);
wait_for_run(q{bool_and(a.passed) FILTER (WHERE a.check_name = 'policy_file') = false
               AND bool_and(a.detail LIKE '%no longer verifies%')
                   FILTER (WHERE a.check_name = 'policy_file')},
	'a policy file that no longer verifies is found');
like($node->safe_psql('postgres', 'SELECT ready, not_ready_reason FROM ephemeral_crypt_status()'),
	qr/^f\|attestation check policy_file fails: "\Q$policy\E" no longer verifies/,
	'ready is false with the reason');
ec_write_file($policy, $in_force);
wait_for_run('bool_and(a.passed)', 'the file in force is back: every check passes');
is(log_count($fail_line, $offset), 1,
	'one LOG line while policy_file failed (its detail changed, its verdict did not)');
is(log_count($pass_line, $offset), 1, 'the recovery is logged once');
is($node->safe_psql('postgres', 'SELECT policy_version FROM ephemeral_crypt_status()'),
	'attested', 'attestation never applies a policy: the one in force stays');

# The exporter's attestation query reads the result as it is.
my $yaml = slurp_file("$FindBin::RealBin/../../ops/postgres_exporter_queries.yaml");
my ($query) = $yaml =~ /^ephemeral_crypt_attestation:\n  query: >-\n((?:    .*\n)+)/m;
ok(defined $query, 'the exporter file has the attestation query');
$query =~ s/^\s+//mg;
$query =~ s/\n/ /g;
is( $node->safe_psql('postgres',
		"SELECT string_agg(check_name || '=' || passed || '/' || enabled, ',' ORDER BY check_name), "
		  . "bool_and(cpu_ms >= 0 AND last_run_seconds > 0) FROM ($query) q"),
	'ciphers=1/1,data_directory=1/1,got_slots=1/1,key_memory=1/1,policy_file=1/1|t',
	'the exporter query: one passing row per check');

# Off.
$node->safe_psql('postgres',
	q{ALTER SYSTEM SET ephemeral_crypt.attestation_interval = 0; SELECT pg_reload_conf()});
ok( $node->poll_query_until(
		'postgres', q{SELECT bool_and(NOT enabled AND next_run IS NULL) FROM ephemeral_crypt_attestation()}),
	'interval 0 turns attestation off');
is($node->safe_psql('postgres', 'SELECT ready FROM ephemeral_crypt_status()'), 't',
	'ready while off');

$node->stop;
done_testing();
