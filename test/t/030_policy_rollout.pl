
# Signed rollout of the policy on reload (pg_reload_conf()).
#
# The server starts on a signed policy file with serial 1 (spill files in
# AES-256-XTS). Then, each time by replacing the file and reloading:
#
#  - a newer signed policy that puts spill files in AES-256-GCM applies to
#    every process for files created from then on: a spill file created
#    before the reload (held open by a cursor) keeps its format v1 header
#    and is still read in full, a spill file created after it, by another
#    session that was already connected, has a format v2 header; SQL reports
#    the new version, serial, digest and cipher, and the log says so;
#  - a badly signed file leaves the policy in force, with a WARNING naming
#    the reason and the signature's line, and counts in
#    policy_reloads_rejected;
#  - a signed file that turns WAL encryption on leaves the policy in force
#    and is reported as pending a restart; after the restart it is in force.

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

# Signs $text into the policy file the server reads; returns its digest.
my $policy = "$dir/fleet.policy";
sub deploy
{
	my ($text) = @_;
	return ec_deploy_policy($dir, $policy, $text, 'the next policy');
}

sub policy_text
{
	my ($version, $serial, $extra) = @_;
	return "version = $version\nserial = $serial\ntemp_relation = on\nspill = on\nwal = off\n"
	  . ($extra // '');
}

my $digest1 = deploy(policy_text('rollout-1', 1));
my $node = ec_new_node('rollout', extension => 1, encrypt_wal => 0, conf => qq{
ephemeral_crypt.policy_file = '$policy'
ephemeral_crypt.policy_public_key = '$pub'
ephemeral_crypt.require_signed_policy = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');

my $status_sql = q{SELECT policy_version, policy_serial, policy_digest, pending_restart,
  policy_reloads_rejected, ready FROM ephemeral_crypt_status()};
is($node->safe_psql('postgres', $status_sql), "rollout-1|1|$digest1|f|0|t",
	'start-up: version, serial and digest from the file; nothing pending or rejected');
is(ec_encryption_status($node)->{spill}{cipher}, 'AES-256-XTS', 'spill files start in AES-256-XTS');

# ---------------------------------------------------------------------------
# A live rollout: spill files go to AES-256-GCM, for new files only.

my $sort = q{SELECT g, md5(g::text) FROM generate_series(1, 60000) g ORDER BY md5(g::text)};
my $expected = $node->safe_psql('postgres',
	"SELECT count(*), md5(string_agg(md5, ',' ORDER BY md5)) FROM ($sort) s(g, md5)");
my $tmpdir = $node->data_dir . '/base/pgsql_tmp';

# Spill files of backend $pid that exist now.
sub spill_files_of
{
	my ($pid) = @_;
	opendir(my $dh, $tmpdir) or return ();
	my @files = map { "$tmpdir/$_" } grep { /^pgsql_tmp$pid\./ && -s "$tmpdir/$_" } readdir $dh;
	closedir $dh;
	return @files;
}

# Opens $cursor over the sort in $session and fetches one row, so the sort
# has spilled and keeps its tapes open. Asserts ($what) that it wrote spill
# files, all in format $version. Returns them.
sub spill_through_cursor
{
	my ($session, $cursor, $version, $what) = @_;
	my $pid = $session->query_safe('SELECT pg_backend_pid()');
	$session->query_safe("BEGIN; DECLARE $cursor NO SCROLL CURSOR FOR $sort");
	$session->query_safe("FETCH 1 FROM $cursor");
	my @files = spill_files_of($pid);
	ok(@files > 0, $what->[0]);
	is_deeply([ map { ec_header_version($_) } @files ], [ map { $version } @files ], $what->[1]);
	return @files;
}

# The old file: a cursor over a sort that spilled keeps its tapes open.
my $old = $node->background_psql('postgres');
my @old_files = spill_through_cursor($old, 'old_sort', 1,
	[ 'a spill file exists before the rollout', 'it is in format v1 (AES-256-XTS)' ]);

# A session connected before the rollout, to show it follows the new policy
# for the files it creates afterwards.
my $new = $node->background_psql('postgres');

my $digest2 = deploy(policy_text('rollout-2', 2, "spill_cipher = aes-256-gcm\n"));
my $offset = -s $node->logfile;
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres',
	q{SELECT policy_serial = 2 FROM ephemeral_crypt_status()}), 'the reload is in force');
is($node->safe_psql('postgres', $status_sql), "rollout-2|2|$digest2|f|0|t",
	'after the rollout: version, serial and digest of the new file');
like(slurp_file($node->logfile, $offset),
	qr/LOG:  ephemeral_crypt: policy reloaded: version "rollout-2", serial 2, digest $digest2/,
	'the log says the policy was reloaded');
is(ec_encryption_status($node)->{spill}{cipher}, 'AES-256-GCM',
	'encryption_status reports the new spill cipher');
like($node->safe_psql('postgres', 'SELECT cipher FROM ephemeral_crypt_status()'),
	qr/AES-256-GCM \(spill\)/, 'status names the new cipher for spill');

my @new_files = spill_through_cursor($new, 'new_sort', 2,
	[ 'a spill file created after the rollout', 'it is in format v2 (AES-256-GCM)' ]);
is_deeply([ map { ec_header_version($_) } @old_files ], [ map { 1 } @old_files ],
	'the file created before keeps its format v1 header');

# Both files are read to the end, each under the cipher its header names.
my $old_rest = $old->query_safe('FETCH ALL FROM old_sort');
my $new_rest = $new->query_safe('FETCH ALL FROM new_sort');
is(scalar(split /\n/, $old_rest), 59999, 'the old spill file is read in full');
is(scalar(split /\n/, $new_rest), 59999, 'the new spill file is read in full');
$old->query_safe('COMMIT');
$new->query_safe('COMMIT');
$old->quit;
$new->quit;
is($node->safe_psql('postgres',
	"SELECT count(*), md5(string_agg(md5, ',' ORDER BY md5)) FROM ($sort) s(g, md5)"),
	$expected, 'a spilling sort gives the same answer under the new policy');
my $st = ec_encryption_status($node);
is($st->{spill}{failures} + $st->{spill}{integrity_failures}, 0, 'no spill failures');

# ---------------------------------------------------------------------------
# A badly signed reload.

deploy(policy_text('rollout-3', 3, "spill_cipher = aes-256-gcm\n"));
my $good3 = slurp_file($policy);
(my $bad3 = $good3) =~ s/^spill = on$/spill = off/m;
ec_write_file($policy, $bad3);
my @bad_lines = split /\n/, $bad3;
my ($sigline) = grep { $bad_lines[ $_ - 1 ] =~ /^signature = / } 1 .. @bad_lines;
my $log = ec_reload_refused($node, 1, 'bad signature: the reload is counted as rejected');
like($log,
	qr/WARNING:  ephemeral_crypt: policy file "\Q$policy\E" not reloaded: the policy file's signature does not verify; the policy in force stays/,
	'bad signature: WARNING with the reason');
like($log, qr/DETAIL:  line $sigline: bad signature/, "bad signature: the detail names line $sigline");
is($node->safe_psql('postgres', $status_sql), "rollout-2|2|$digest2|f|1|t",
	'bad signature: the policy in force stays');

# ---------------------------------------------------------------------------
# A reload that needs a restart: WAL encryption turned on.

my $policy4 = "version = rollout-4\nserial = 4\ntemp_relation = on\nspill = on\nwal = on\n"
  . "spill_cipher = aes-256-gcm\n";
my $digest4 = deploy($policy4);
$offset = -s $node->logfile;
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres',
	q{SELECT pending_restart FROM ephemeral_crypt_status()}), 'WAL on: pending a restart');
is($node->safe_psql('postgres', $status_sql), "rollout-2|2|$digest2|t|1|t",
	'WAL on: the policy in force stays');
like(slurp_file($node->logfile, $offset),
	qr/ephemeral_crypt: policy file "\Q$policy\E" \(serial 4, digest $digest4\) needs a restart to take effect; the policy in force stays\n.*DETAIL:  Needs a restart: wal encryption turned on\./,
	'WAL on: the log says a restart is needed, and why');
is(ec_encryption_status($node)->{wal}{enabled}, 'f', 'WAL on: WAL is still not encrypted');

$node->restart;
is($node->safe_psql('postgres', $status_sql), "rollout-4|4|$digest4|f|0|t",
	'after the restart the pending policy is in force');
is(ec_encryption_status($node)->{wal}{enabled}, 't', 'after the restart WAL is encrypted');

$node->stop;
done_testing();
