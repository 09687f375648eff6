
# Degradation under an encryption failure, and secrecy of the instance key.
#
# With the test-only fault switch (EPHEMERAL_CRYPT_TEST_FAULTS=1 in the
# postmaster's environment, ephemeral_crypt.test_fault = spill) every spill
# file the server creates fails to be encrypted:
#
#  - spill_degradation = fail_open_audit: the query works, its spill files are
#    written in plaintext with a plaintext-audit header (scan() says
#    plaintext_audit = t), a WARNING names the file, the category and the key
#    id, and plaintext_fallbacks goes up;
#  - spill_degradation = fail_closed: the query fails with PostgreSQL's I/O
#    error, a WARNING names the file, the category and the key id, failures
#    goes up, and none of the query's data reaches any file under pgsql_tmp.
#
# Key secrecy: a node with every category encrypted hands its key to the test
# (EPHEMERAL_CRYPT_TEST_KEY_FILE, test builds only); after a workload through
# every category, with errors in the log, neither the server log nor any file
# of the data directory holds the key as raw bytes, lowercase or uppercase
# hex, or base64.

use strict;
use warnings;

use MIME::Base64 qw(encode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
# The Makefile's PROVE_FLAGS (-I test/perl) is reset by PGXS's Makefile.global,
# so find the shared helpers relative to this file.
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EphemeralCrypt::TestLib;

my $warning_re = sub {
	my ($event, $category, $key) = @_;
	return qr/WARNING:  ephemeral_crypt: \Q$event\E: file "([^"]+)", category \Q$category\E, key \Q$key\E/;
};

# ---------------------------------------------------------------------------
# fail_open_audit
my $node = ec_new_node('degrade', extension => 1, encrypt_wal => 0,
	conf => "ephemeral_crypt.test_fault = 'spill'\nephemeral_crypt.spill_degradation = fail_open_audit\n");
{
	local $ENV{EPHEMERAL_CRYPT_TEST_FAULTS} = '1';
	$node->start;
}
$node->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
{
	my $key = ec_key_id($node);
	my ($line) = ec_ready_lines($node);
	like($line, qr/spill: encrypted with AES-256-XTS \(fail_open_audit\)/, 'fail_open_audit: the ready line says so');
	like(slurp_file($node->logfile), qr/WARNING:  ephemeral_crypt: test fault "spill" is active/,
		'fail_open_audit: the test fault is announced');
	my $before = ec_encryption_status($node);
	my $offset = -s $node->logfile;
	my $m = ec_marker('audit');
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	$s->query(qq{
		SET max_parallel_workers_per_gather = 0;
		BEGIN;
		DECLARE c CURSOR FOR SELECT g, '$m' || g AS s FROM generate_series(1, 100000) g ORDER BY g DESC;
	});
	my ($row) = $s->query('FETCH 1 FROM c');
	is($row, "100000|${m}100000", 'fail_open_audit: the spilling query works');
	like($s->{stderr}, qr/WARNING:  ephemeral_crypt: file written in plaintext: file "[^"]+", category spill, key \Q$key\E/,
		'fail_open_audit: the client gets the WARNING too');

	my $scan = $node->safe_psql('postgres', q{
		SELECT file, encrypted, plaintext_audit, header_status, key_id, current_instance, has_header
		  FROM ephemeral_crypt_scan() WHERE category = 'spill' ORDER BY file});
	my @rows = map { [ split /\|/ ] } split /\n/, $scan;
	cmp_ok(scalar(@rows), '>', 0, 'fail_open_audit: scan() lists the spill file(s) of the held query (' . scalar(@rows) . ')');
	is_deeply([ grep { join('|', @$_[ 1 .. 6 ]) ne "f|t|ok|$key|t|t" } @rows ], [],
		'fail_open_audit: each is marked plaintext_audit = t, encrypted = f, header ok, under this key');
	my $first = $rows[0][0] // 'none';
	is($node->safe_psql('postgres', qq{SELECT plaintext_audit, encrypted FROM ephemeral_crypt_file_status('$first')}),
		't|f', "fail_open_audit: file_status($first) agrees");
	ok(scalar(ec_files_holding($node->data_dir, $m, qr{/pgsql_tmp/})),
		'fail_open_audit: the spill file really holds the plaintext');

	my $log = ec_log_since($node, $offset);
	my $audit_re = $warning_re->('file written in plaintext', 'spill', $key);
	my @warned = $log =~ /$audit_re/g;
	cmp_ok(scalar(@warned), '>', 0, 'fail_open_audit: the log has the WARNING naming file, category spill and key ' . $key);
	my %listed = map { $_->[0] => 1 } @rows;
	ok((grep { my $w = $_; grep { $w =~ m{(^|/)\Q$_\E$} } keys %listed } @warned),
		'fail_open_audit: a WARNING names a file that scan() lists (' . join(', ', @warned) . ')');

	my $after = ec_encryption_status($node);
	cmp_ok($after->{spill}{plaintext_fallbacks}, '>', $before->{spill}{plaintext_fallbacks},
		"fail_open_audit: plaintext_fallbacks went up to $after->{spill}{plaintext_fallbacks}");
	cmp_ok($after->{spill}{plaintext_fallbacks} - $before->{spill}{plaintext_fallbacks}, '>=', scalar(@rows),
		'fail_open_audit: one fallback per plaintext file at least');
	my $rest = $s->query('FETCH ALL FROM c');
	my @rest = split /\n/, $rest;
	is(scalar(@rest), 99999, 'fail_open_audit: the rest of the rows read back from the plaintext file');
	is($rest[-1], "1|${m}1", 'fail_open_audit: down to the last row');
	$s->query('COMMIT');
	$s->quit;
	$node->stop;
}

# ---------------------------------------------------------------------------
# fail_closed, same fault.
$node->append_conf('postgresql.conf', "ephemeral_crypt.spill_degradation = fail_closed\n");
{
	local $ENV{EPHEMERAL_CRYPT_TEST_FAULTS} = '1';
	$node->start;
}
{
	my $key = ec_key_id($node);
	my @lines = ec_ready_lines($node);
	like($lines[-1], qr/key \Q$key\E, .*spill: encrypted with AES-256-XTS \(fail_closed\)/, 'fail_closed: the ready line says so');
	my $before = ec_encryption_status($node);
	my $offset = -s $node->logfile;
	my $m = ec_marker('closed');
	my ($ret, $out, $err) = $node->psql('postgres', qq{
		SET max_parallel_workers_per_gather = 0;
		SELECT count(*), max(s) FROM (SELECT g, '$m' || g AS s FROM generate_series(1, 100000) g ORDER BY g DESC) x;
	});
	isnt($ret, 0, 'fail_closed: the spilling query fails');
	is($out, '', 'fail_closed: it returns nothing');
	like($err, qr/ERROR:  could not [^\n]*temporary file[^\n]*: Input\/output error/,
		'fail_closed: PostgreSQL raises its I/O error on the temporary file');
	like($err, qr/WARNING:  ephemeral_crypt: encrypted I\/O failed: file "[^"]+", category spill, key \Q$key\E/,
		'fail_closed: the client gets the WARNING');
	my $log = ec_log_since($node, $offset);
	my $closed_re = $warning_re->('encrypted I/O failed', 'spill', $key);
	my @warned = $log =~ /$closed_re/g;
	cmp_ok(scalar(@warned), '>', 0, "fail_closed: the log has the WARNING naming file, category spill and key $key");
	like($warned[0] // '', qr/pgsql_tmp/, "fail_closed: the WARNING names the spill file ($warned[0])");
	like($log, qr/ERROR:  could not [^\n]*temporary file[^\n]*: Input\/output error/, 'fail_closed: the log has the ERROR');
	my $after = ec_encryption_status($node);
	cmp_ok($after->{spill}{failures}, '>', $before->{spill}{failures}, "fail_closed: failures went up to $after->{spill}{failures}");
	is($after->{spill}{plaintext_fallbacks}, 0, 'fail_closed: no plaintext fallback');
	is($after->{spill}{files_encrypted} - $before->{spill}{files_encrypted}, 0, 'fail_closed: no spill file was encrypted');

	my $tmp = ec_scan_tree($node->data_dir, [$m], qr{/pgsql_tmp/});
	is_deeply($tmp->{holding}{$m}, [], 'fail_closed: no file under pgsql_tmp holds the query\'s data (' . scalar(@{ $tmp->{files} }) . ' file(s) scanned)');
	my @nonempty = grep { $tmp->{sizes}{$_} > 0 } @{ $tmp->{files} };
	is_deeply(\@nonempty, [], 'fail_closed: nothing at all was written under pgsql_tmp');
	is_deeply($tmp->{files}, [], 'fail_closed: the failed creation leaves no file behind');
	# Neither does anything else in the data directory.
	is_deeply([ ec_files_holding($node->data_dir, $m) ], [], 'fail_closed: no file of the data directory holds the query\'s data');

	# The server keeps working for what does not spill.
	is($node->safe_psql('postgres', 'SELECT count(*) FROM generate_series(1, 100)'), '100',
		'fail_closed: queries that do not spill still work');
	$node->stop;
}

# ---------------------------------------------------------------------------
# Key secrecy.
{
	my $keydir = PostgreSQL::Test::Utils::tempdir();
	my $keyfile = "$keydir/instance.key";
	my $snode = ec_new_node('secret', extension => 1, encrypt_wal => 1,
		conf => "log_statement = 'all'\nlog_min_messages = debug1\nlog_error_verbosity = verbose\n");
	ok(index($keyfile, $snode->data_dir . '/') != 0, 'the key file is outside the data directory');
	{
		local $ENV{EPHEMERAL_CRYPT_TEST_FAULTS} = '1';
		local $ENV{EPHEMERAL_CRYPT_TEST_KEY_FILE} = $keyfile;
		$snode->start;
	}
	$snode->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
	my $key_id = ec_key_id($snode);
	my $key_text = slurp_file($keyfile);
	like($key_text, qr/\A[0-9a-f]{64}\n\z/, 'the key file holds 64 lowercase hex digits and a newline');
	chomp(my $hex = $key_text);
	is(length($hex), 64, 'the key is 32 bytes');
	isnt($hex, $key_id, 'the key differs from the key id');
	ok(index($hex, $key_id) < 0, 'the key id is not a part of the key');
	my $raw = pack('H*', $hex);
	my $b64 = encode_base64($raw, '');
	(my $b64url = $b64) =~ tr{+/}{-_};
	my %forms = (
		'raw bytes' => $raw,
		'lowercase hex' => $hex,
		'uppercase hex' => uc($hex),
		'base64' => substr($b64, 0, 43),    # with or without the padding
		'base64url' => substr($b64url, 0, 43),
	);

	# A workload through every category, with errors in the log; a session
	# keeps a temp table and a spilled sort on disk while the files are read.
	my $s = $snode->background_psql('postgres', on_error_stop => 0);
	$s->query(q{
		SET max_parallel_workers_per_gather = 0;
		CREATE TEMP TABLE secret_tt AS SELECT g, md5(g::text) AS s FROM generate_series(1, 30000) g;
		CREATE INDEX ON secret_tt (s);
		BEGIN;
		DECLARE c CURSOR FOR SELECT s FROM secret_tt ORDER BY md5(s) DESC;
	});
	is($s->query('FETCH 1 FROM c') =~ /^[0-9a-f]{32}$/ ? 1 : 0, 1, 'secrecy: a spilled sort over a temp table is held');
	$snode->safe_psql('postgres', q{
		CREATE TABLE secret_w (id int, s text);
		INSERT INTO secret_w SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 20000) g;
		SELECT count(*) FROM generate_series(1, 100000) a JOIN generate_series(1, 100000) b ON a = b;
		SELECT pg_switch_wal();
		CHECKPOINT;
	});
	for my $bad ('SELECT 1/0', 'SELECT * FROM no_such_table', 'SELEC 1',
		q{SELECT * FROM ephemeral_crypt_file_status('/etc/passwd')},
		q{SELECT * FROM ephemeral_crypt_file_status('../x')})
	{
		my ($ret, $out, $err) = $snode->psql('postgres', $bad);
		like($err, qr/ERROR:/, "secrecy: error produced: $bad");
	}
	my $scan = $snode->safe_psql('postgres', q{
		SELECT category, count(*), bool_and(encrypted AND key_id = (SELECT instance_key_id FROM ephemeral_crypt_status()))
		  FROM ephemeral_crypt_scan() GROUP BY category ORDER BY category});
	like($scan, qr/^spill\|\d+\|t\ntemp_relation\|\d+\|t\nwal\|\d+\|t$/,
		'secrecy: spill, temp_relation and wal files on disk, all encrypted under this key');
	my $status = ec_encryption_status($snode);
	cmp_ok($status->{$_}{bytes_encrypted}, '>', 0, "secrecy: the workload went through $_") for qw(spill temp_relation wal);

	my $check = sub {
		my ($when) = @_;
		my $key_id_raw = pack('H*', $key_id);
		my $tree = ec_scan_tree($snode->data_dir, [ $key_id_raw, values %forms ]);
		my $log = slurp_file($snode->logfile);
		my $read = scalar(@{ $tree->{files} });
		cmp_ok($read, '>', 100, "$when: $read files of the data directory read");
		ok(index($log, $key_id) >= 0, "$when: the key id $key_id is found in the server log (the search sees the log)");
		if ($when =~ /after shutdown/)
		{
			# A sealed stop leaves no encrypted file: only the plaintext sealed
			# WAL segment, which the search must still have read.
			cmp_ok(scalar(grep { m{/pg_wal/[0-9A-F]{24}$} } @{ $tree->{files} }), '>=', 1,
				"$when: the search read the sealed WAL segment the stop left");
		}
		else
		{
			ok(scalar(@{ $tree->{holding}{$key_id_raw} }),
				"$when: the key id is found in file headers (the search sees the encrypted files)");
		}
		for my $form (sort keys %forms)
		{
			ok(index($log, $forms{$form}) < 0, "$when: the key ($form) is not in the server log");
			is_deeply($tree->{holding}{ $forms{$form} }, [], "$when: the key ($form) is in no file of the data directory");
		}
	};
	$check->('while running');
	$s->query('COMMIT');
	$s->quit;
	$snode->stop;
	like(slurp_file($snode->logfile), qr/database system is shut down/, 'secrecy: the node shut down');
	$check->('after shutdown');
}

done_testing();
