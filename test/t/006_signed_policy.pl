
# Signed policy files.
#
# A key pair comes from the signing tool (ephemeral_crypt_policy keygen), a
# policy file is signed with it, and the server is started with
# ephemeral_crypt.policy_file, policy_public_key and require_signed_policy:
#
#  - a good signed policy starts: the LOG line says "signed (policy file)",
#    ephemeral_crypt_status() says policy_signed = t, and the version, the
#    digest and the category states come from the file (not the settings);
#  - a setting changed after signing, a missing file, a tampered signature
#    line, the wrong public key, an unsigned file when a signature is
#    required, require_signed_policy without a policy file, and a malformed
#    file (wal_degradation = fail_open_audit) each stop the server with a
#    FATAL that names the reason;
#  - an unsigned file is accepted when no signature is required, and reported
#    as unsigned.

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

my $dir = PostgreSQL::Test::Utils::tempdir();

# Two key pairs: the control plane's, and another one.
my ($rc, $out, $err) = ec_policy_tool('keygen', '--public', "$dir/pub", '--secret', "$dir/sec");
is($rc, 0, 'keygen succeeds') or diag($err);
my $pub = slurp_file("$dir/pub");
$pub =~ s/\s+$//;
like($pub, qr/^[0-9a-f]{64}$/, 'keygen: the public key is 64 hex digits');
like(slurp_file("$dir/sec"), qr/^[0-9a-f]{128}\s*$/, 'keygen: the secret key is 128 hex digits');
is((stat("$dir/sec"))[2] & 07777, 0600, 'keygen: the secret key file has mode 0600');
($rc) = ec_policy_tool('keygen', '--public', "$dir/pub2", '--secret', "$dir/sec2");
is($rc, 0, 'keygen: a second key pair');
my $pub2 = slurp_file("$dir/pub2");
$pub2 =~ s/\s+$//;
isnt($pub2, $pub, 'the second public key differs');

# The policy the control plane signs. Every category differs from what
# ec_new_node's settings say (all encrypted, fail_closed, version tap-test),
# so the reports show that the file decides.
my $policy_text = <<'EOP';
# ephemeral_crypt policy for the signed-policy test
version = signed-2026.1
temp_relation = on
temp_relation_degradation = fail_open_audit
spill = off
wal = off
EOP
my $good = "$dir/good.policy";
ec_write_file($good, $policy_text);
($rc, $out, $err) = ec_policy_tool('sign', '--secret', "$dir/sec", $good);
is($rc, 0, 'sign succeeds') or diag($err);
my $signed_text = slurp_file($good);
like($signed_text, qr/\nsignature = [A-Za-z0-9+\/]{86}==\n?\z/, 'sign appends a base64 signature line');
($rc, my $digest) = ec_policy_tool('digest', $good);
chomp $digest;
like($digest, qr/^[0-9a-f]{64}$/, "digest of the signed policy: $digest");
($rc, $out) = ec_policy_tool('verify', '--public', "$dir/pub", $good);
is($rc, 0, 'verify accepts the signed file with its key');
like($out, qr/status: ok/, 'verify: status ok');
like($out, qr/digest: $digest/, 'verify: the same digest');

# Variants of the file.
sub variant
{
	my ($name, $text) = @_;
	my $path = "$dir/$name.policy";
	ec_write_file($path, $text);
	return $path;
}
(my $changed_text = $signed_text) =~ s/^spill = off$/spill = on/m;
isnt($changed_text, $signed_text, 'a setting changed after signing');
my $changed = variant('changed', $changed_text);
my ($sig) = $signed_text =~ /^signature = (\S+)$/m;
my $tampered_sig = (substr($sig, 0, 1) eq 'A' ? 'B' : 'A') . substr($sig, 1);
(my $tampered_text = $signed_text) =~ s/^signature = \S+$/signature = $tampered_sig/m;
my $tampered = variant('tampered', $tampered_text);
my $unsigned = variant('unsigned', $policy_text);
my $malformed = variant('malformed', <<'EOP');
version = malformed-1
temp_relation = on
spill = on
wal = on
wal_degradation = fail_open_audit
EOP

($rc, $out, $err) = ec_policy_tool('verify', '--public', "$dir/pub", $changed);
isnt($rc, 0, 'verify refuses the file changed after signing');
($rc, $out, $err) = ec_policy_tool('verify', '--public', "$dir/pub2", $good);
isnt($rc, 0, 'verify refuses the good file under the wrong key');

my $node = ec_new_node('signed', extension => 1, encrypt_wal => 0);

# Points the node at a policy (the last setting in the file wins).
sub configure
{
	my (%c) = @_;
	$node->append_conf('postgresql.conf', join '',
		map { "ephemeral_crypt.$_ = '$c{$_}'\n" } sort keys %c);
}

# A start that must fail; checks the FATAL and what the log says.
sub refused
{
	my ($what, $fatal_re, @more) = @_;
	my $log = ec_start_refused($node, $what);
	like($log, $fatal_re, "$what: the log has the reason");
	like($log, $_, "$what: the log has $_") for @more;
	return $log;
}

my $rejected = sub { my ($path, $why) = @_; qr/FATAL:  ephemeral_crypt: policy file "\Q$path\E" rejected: \Q$why\E/ };
my $hint = qr/HINT:  Deploy the policy file the control plane signed/;

# ---------------------------------------------------------------------------
# The good signed policy.
configure(policy_file => $good, policy_public_key => $pub, require_signed_policy => 'on');
{
	my $offset = -e $node->logfile ? -s $node->logfile : 0;
	ok($node->start(fail_ok => 1), 'good signed policy: the server starts');
	my ($r, $line) = ec_the_ready_line($node, $offset, 'good signed policy: one ready line');
	like($line // '', qr/, signed \(policy file\), temp_relation: /, 'good signed policy: log says "signed (policy file)"');
	is($r->{version}, 'signed-2026.1', 'good signed policy: log version from the file');
	is($r->{digest}, $digest, 'good signed policy: log digest equals the tool\'s');
	is($r->{temp_relation}, 'encrypted with AES-256-XTS (fail_open_audit)', 'good signed policy: temp_relation from the file');
	is($r->{spill}, 'not encrypted', 'good signed policy: spill from the file');
	is($r->{wal}, 'not encrypted', 'good signed policy: wal from the file');
	$node->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
	is($node->safe_psql('postgres',
		'SELECT ready, instance_key_id, policy_version, policy_digest, policy_signed FROM ephemeral_crypt_status()'),
		"t|$r->{key}|signed-2026.1|$digest|t", 'good signed policy: SQL: ready, key, version, digest, signed = t');
	ec_policy_in_sql($node, 'signed-2026.1',
		"spill|f|fail_closed\ntemp_relation|t|fail_open_audit\nwal|f|fail_closed",
		'good signed policy: from the file');

	# The file's states are in force: a spill file is plaintext, a temp
	# relation file is encrypted under the instance key.
	my $s = $node->background_psql('postgres');
	$s->query_safe(q{
		BEGIN;
		CREATE TEMP TABLE t AS SELECT g, repeat('y', 300) AS s FROM generate_series(1, 10000) g;
		DECLARE c CURSOR FOR SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC;
	});
	is($s->query_safe('FETCH 1 FROM c'), '200000', 'good signed policy: a spilled sort is held');
	my @spill = ec_category_files($node, 'spill');
	cmp_ok(scalar(@spill), '>', 0, 'good signed policy: spill files exist');
	my @spill_enc = grep { my ($m) = ec_read_header($_); defined $m && $m eq $EC_MAGIC } @spill;
	is_deeply(\@spill_enc, [], 'good signed policy: no spill file is encrypted (spill = off in the file)');
	my @temp = grep { -s $_ } ec_category_files($node, 'temp_relation');
	cmp_ok(scalar(@temp), '>', 0, 'good signed policy: temp relation files exist');
	my @temp_bad = grep { my ($m, $id) = ec_read_header($_); !defined $m || $m ne $EC_MAGIC || $id ne $r->{key} } @temp;
	is_deeply(\@temp_bad, [], 'good signed policy: every temp relation file is encrypted under the instance key');
	$s->quit;
	$node->stop;
}

# ---------------------------------------------------------------------------
# Refusals.
configure(policy_file => $changed);
my $bad_sig_detail = qr/DETAIL:  bad signature: it does not verify under the public key given/;
refused('setting changed after signing', $rejected->($changed, "the policy file's signature does not verify"),
	$bad_sig_detail, $hint);

configure(policy_file => "$dir/does-not-exist.policy");
refused('missing file', $rejected->("$dir/does-not-exist.policy", 'the policy file does not exist'),
	qr/DETAIL:  cannot open: No such file or directory/);

configure(policy_file => $tampered);
refused('tampered signature line', $rejected->($tampered, "the policy file's signature does not verify"), $bad_sig_detail);

configure(policy_file => $good, policy_public_key => $pub2);
refused('wrong public key', $rejected->($good, "the policy file's signature does not verify"), $bad_sig_detail);

configure(policy_file => $unsigned, policy_public_key => $pub);
refused('unsigned file with require_signed_policy = on',
	$rejected->($unsigned, 'the policy file is not signed, or no public key is configured to check it'),
	qr/DETAIL:  no signature line/);

configure(policy_file => '');
refused('require_signed_policy = on without a policy file',
	qr/FATAL:  ephemeral_crypt: a signed policy is required but none is configured/,
	qr/HINT:  Set ephemeral_crypt\.policy_file and ephemeral_crypt\.policy_public_key/);

# Malformed is refused whatever require_signed_policy says.
configure(policy_file => $malformed, require_signed_policy => 'off');
refused('malformed file (wal_degradation = fail_open_audit)',
	$rejected->($malformed, 'the policy file is malformed'),
	qr/DETAIL:  line 5: .*wal_degradation/);
($rc, $out, $err) = ec_policy_tool('digest', $malformed);
isnt($rc, 0, 'tool: no digest for the malformed file');
like($err . $out, qr/line 5/, 'tool: it names line 5 too');

# A bad signature is refused even when no signature is required.
configure(policy_file => $changed, require_signed_policy => 'off');
refused('bad signature with require_signed_policy = off', $rejected->($changed, "the policy file's signature does not verify"));

# ---------------------------------------------------------------------------
# Unsigned file, no signature required: starts, and says so.
configure(policy_file => $unsigned, require_signed_policy => 'off');
{
	my $offset = -s $node->logfile;
	ok($node->start(fail_ok => 1), 'unsigned file with require_signed_policy = off: the server starts');
	my ($r, $line) = ec_the_ready_line($node, $offset, 'unsigned: one ready line');
	like($line // '', qr/, unsigned \(policy file\), temp_relation: /, 'unsigned: log says "unsigned (policy file)"');
	is($r->{version}, 'signed-2026.1', 'unsigned: version from the file');
	is($r->{digest}, $digest, 'unsigned: the digest does not depend on the signature');
	is($node->safe_psql('postgres', 'SELECT instance_key_id, policy_version, policy_digest, policy_signed FROM ephemeral_crypt_status()'),
		"$r->{key}|signed-2026.1|$digest|f", 'unsigned: SQL: policy_signed = f, version and digest from the file');
	$node->stop;
}

# The good signed policy still starts after all this.
configure(policy_file => $good, policy_public_key => $pub, require_signed_policy => 'on');
{
	my $offset = -s $node->logfile;
	ok($node->start(fail_ok => 1), 'good signed policy again: the server starts');
	my ($line) = ec_ready_lines($node, $offset);
	like($line // '', qr/, digest \Q$digest\E, signed \(policy file\), /, 'good signed policy again: signed, same digest');
	is($node->safe_psql('postgres', 'SELECT policy_signed FROM ephemeral_crypt_status()'), 't',
		'good signed policy again: SQL policy_signed = t');
	$node->stop;
}

done_testing();
