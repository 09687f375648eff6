
# The operator's view: what the SQL functions, the counters view and the
# startup log line tell someone looking at a running instance, checked
# against what the server itself reports.
#
#  (a) the counters move by the right amounts: spill bytes/files against the
#      sizes PostgreSQL logs with log_temp_files = 0; temp_relation bytes
#      against the size of a temp table bigger than temp_buffers; WAL bytes
#      against the LSN distance of a write workload;
#  (b) key_age grows between two reads;
#  (c) ready is true and instance_key_id is the key id of the LOG line;
#  (d) the policy version and digest are the same in SQL and in the LOG line,
#      with the policy_version setting and with a policy file (whose digest
#      is also what `ephemeral_crypt_policy digest` prints);
#  (e) files_open returns to its baseline once the sessions holding spill
#      files are gone;
#  (f) file_status refuses a symbolic link that leads out of the data
#      directory;
#  (g) on a server that did not preload the library, CREATE EXTENSION works
#      and every function explains that the extension is not active;
#  (h) the postgres_exporter-style view has one numeric row per category.

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

# temp_buffers in ec_common_conf(), in bytes.
my $TEMP_BUFFERS = 800 * 1024;

# Counter deltas per category between two ec_encryption_status() snapshots.
sub delta
{
	my ($before, $after, $category, $column) = @_;
	return $after->{$category}{$column} - $before->{$category}{$column};
}

# ---------------------------------------------------------------------------
# Node with every category encrypted (WAL too), policy from the settings.
my $node = ec_new_node('ops', extension => 1, encrypt_wal => 1);
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');

# (c) ready, and the key id of the one LOG line.
my @ready = ec_ready_lines($node);
is(scalar(@ready), 1, 'exactly one ready line in the log');
my $r = ec_parse_ready_line($ready[0]);
ok(defined $r, 'the ready line has the documented shape')
  or diag($ready[0] // '(no ready line)');
$r ||= {};
is($node->safe_psql('postgres', 'SELECT ready FROM ephemeral_crypt_status()'), 't', 'status: ready = t');
my $key = ec_key_id($node);
like($key, qr/^[0-9a-f]{16}$/, "status: instance_key_id $key is a 16-hex-digit fingerprint");
is($key, $r->{key}, 'status: instance_key_id is the key id of the LOG line');
is($node->safe_psql('postgres', 'SELECT layer_objects_patched, layer_slots_patched FROM ephemeral_crypt_status()'),
	"$r->{objects}|$r->{slots}", 'status: layer objects and slots as in the LOG line');

# (d) policy from the settings: version and digest identical in SQL and log.
is($r->{version}, 'tap-test', 'log: policy version from ephemeral_crypt.policy_version');
is($r->{signed}, 0, 'log: the policy from the settings is unsigned');
is($r->{from_file}, 0, 'log: the policy does not come from a file');
is($node->safe_psql('postgres',
	'SELECT policy_version, policy_digest, policy_signed, cipher FROM ephemeral_crypt_status()'),
	"tap-test|$r->{digest}|f|AES-256-XTS",
	'status: policy version, digest and signed = f as in the LOG line; every category in AES-256-XTS');
is($node->safe_psql('postgres', 'SELECT ephemeral_crypt_policy_version()'), 'tap-test',
	'ephemeral_crypt_policy_version() as in the LOG line');
is($r->{temp_relation} . '/' . $r->{spill} . '/' . $r->{wal},
	'encrypted with AES-256-XTS (fail_closed)/encrypted with AES-256-XTS (fail_closed)/encrypted with AES-256-XTS (fail_closed)',
	'log: every category encrypted (fail_closed)');

# (b) key_age grows. Compare the values the server returns, not timings.
{
	my $created1 = $node->safe_psql('postgres', 'SELECT key_created_at FROM ephemeral_crypt_status()');
	my $age1 = $node->safe_psql('postgres', 'SELECT ephemeral_crypt_key_age()');
	my $sage1 = $node->safe_psql('postgres', 'SELECT key_age FROM ephemeral_crypt_status()');
	$node->safe_psql('postgres', 'SELECT pg_sleep(1.1)');
	my $age2 = $node->safe_psql('postgres', 'SELECT ephemeral_crypt_key_age()');
	my $sage2 = $node->safe_psql('postgres', 'SELECT key_age FROM ephemeral_crypt_status()');
	my $created2 = $node->safe_psql('postgres', 'SELECT key_created_at FROM ephemeral_crypt_status()');
	is($node->safe_psql('postgres', "SELECT '$age2'::interval > '$age1'::interval"), 't',
		"ephemeral_crypt_key_age() grows ($age1 -> $age2)");
	is($node->safe_psql('postgres', "SELECT '$age2'::interval - '$age1'::interval >= interval '1 second'"), 't',
		'ephemeral_crypt_key_age() grew by at least the second slept');
	is($node->safe_psql('postgres', "SELECT '$sage2'::interval > '$sage1'::interval"), 't',
		"status key_age grows ($sage1 -> $sage2)");
	is($created2, $created1, 'key_created_at does not move');
}

# (a) spill: counters against the temporary file sizes PostgreSQL logs.
{
	my $offset = -s $node->logfile;
	my $before = ec_encryption_status($node);
	$node->safe_psql('postgres', q{
		SET max_parallel_workers_per_gather = 0;
		SELECT count(*) FROM (SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC) s;
		SELECT count(*) FROM generate_series(1, 100000) a JOIN generate_series(1, 100000) b ON a = b;
		SELECT count(DISTINCT md5(g::text)) FROM generate_series(1, 50000) g;
	});
	my $after = ec_encryption_status($node);
	my $log = ec_log_since($node, $offset);
	my @sizes = $log =~ /LOG:  temporary file: path "[^"]*pgsql_tmp[^"]*", size (\d+)/g;
	my $logged = 0;
	$logged += $_ for @sizes;
	cmp_ok(scalar(@sizes), '>', 0, 'spill: the queries logged ' . scalar(@sizes) . " temporary file(s), $logged bytes");
	cmp_ok($logged, '>', 0, 'spill: the logged sizes add up to more than 0 bytes');
	my $bytes = delta($before, $after, 'spill', 'bytes_encrypted');
	my $files = delta($before, $after, 'spill', 'files_encrypted');
	cmp_ok($bytes, '>=', $logged, "spill: bytes_encrypted grew by $bytes >= the $logged bytes logged");
	cmp_ok($files, '>=', scalar(@sizes), "spill: files_encrypted grew by $files >= the " . scalar(@sizes) . ' files logged');
	cmp_ok(delta($before, $after, 'spill', 'bytes_decrypted'), '>', 0, 'spill: the spilled data was read back (bytes_decrypted grew)');
	is(delta($before, $after, 'spill', 'failures'), 0, 'spill: no failure');
	is(delta($before, $after, 'spill', 'plaintext_fallbacks'), 0, 'spill: no plaintext fallback');
}

# (a) temp_relation: a temp table (with an index) bigger than temp_buffers.
{
	my $before = ec_encryption_status($node);
	my $size = $node->safe_psql('postgres', q{
		CREATE TEMP TABLE tt AS SELECT g, repeat('x', 200) AS s FROM generate_series(1, 20000) g;
		CREATE INDEX tt_g ON tt (g);
		SELECT pg_relation_size('tt') + pg_indexes_size('tt');
	});
	my $after = ec_encryption_status($node);
	cmp_ok($size, '>', 4 * $TEMP_BUFFERS, "temp_relation: the temp table and its index take $size bytes, more than temp_buffers");
	my $bound = $size - $TEMP_BUFFERS;
	my $bytes = delta($before, $after, 'temp_relation', 'bytes_encrypted');
	cmp_ok($bytes, '>', 0, 'temp_relation: bytes_encrypted grew');
	cmp_ok($bytes, '>=', $bound,
		"temp_relation: bytes_encrypted grew by $bytes >= $bound (relation size minus temp_buffers, what the local buffers must have written)");
	cmp_ok(delta($before, $after, 'temp_relation', 'files_encrypted'), '>=', 2,
		'temp_relation: at least two files encrypted (table and index)');
	is(delta($before, $after, 'temp_relation', 'failures'), 0, 'temp_relation: no failure');
}

# (a) WAL: bytes encrypted against the LSN distance of a write workload.
# The counter is read before the first LSN and after the second one, and
# pg_current_wal_lsn() is the write position: every byte between the two LSNs
# was written (so encrypted) between the two counter reads.
{
	$node->safe_psql('postgres', 'SELECT pg_switch_wal(); CHECKPOINT;');
	my $before = ec_encryption_status($node);
	my $lsn1 = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
	$node->safe_psql('postgres', q{
		CREATE TABLE w (id int, s text);
		INSERT INTO w SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 30000) g;
		UPDATE w SET s = upper(s) WHERE id % 3 = 0;
	});
	$node->safe_psql('postgres', 'CHECKPOINT');
	my $lsn2 = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
	my $after = ec_encryption_status($node);
	my $distance = $node->safe_psql('postgres', "SELECT pg_wal_lsn_diff('$lsn2', '$lsn1')::bigint");
	cmp_ok($distance, '>', 1024 * 1024, "wal: the workload wrote $distance bytes of WAL ($lsn1 .. $lsn2)");
	my $bytes = delta($before, $after, 'wal', 'bytes_encrypted');
	cmp_ok($bytes, '>=', $distance, "wal: bytes_encrypted grew by $bytes >= the $distance bytes of WAL");
	is(delta($before, $after, 'wal', 'failures'), 0, 'wal: no failure');
}

# (e) files_open returns to its baseline after the sessions holding spill
# files end.
{
	my $baseline = ec_encryption_status($node)->{spill}{files_open};
	my @sessions;
	for my $i (1 .. 2)
	{
		my $s = $node->background_psql('postgres');
		$s->query_safe(q{
			SET max_parallel_workers_per_gather = 0;
			BEGIN;
			DECLARE c CURSOR FOR SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC;
		});
		is($s->query_safe('FETCH 1 FROM c'), '200000', "files_open: session $i holds a spilled sort");
		push @sessions, $s;
	}
	my $held = ec_encryption_status($node)->{spill}{files_open};
	cmp_ok($held, '>=', $baseline + 2, "files_open: $held spill files open while two sessions hold sorts (baseline $baseline)");
	my $on_disk = $node->safe_psql('postgres',
		q{SELECT count(*) FROM ephemeral_crypt_scan() WHERE category = 'spill' AND encrypted AND current_instance});
	cmp_ok($on_disk, '>=', 2, "files_open: scan() shows $on_disk encrypted spill files of this instance");
	# The test library's own path rules (ec_classify, an oracle written
	# independently of src/core/path_classifier.cpp) and the extension's
	# scan agree on every ephemeral file of the data directory, each in its
	# category. Listed twice by the scan, so a file that came or went
	# meanwhile (a WAL segment recycled) cannot make the comparison flaky.
	my $scan_sql = q{SELECT string_agg(category || ' ' || file, E'\n' ORDER BY file) FROM ephemeral_crypt_scan()};
	my ($scanned, $classified, $again);
	for my $try (1 .. 5)
	{
		$scanned = $node->safe_psql('postgres', $scan_sql);
		my $pgdata = $node->data_dir;
		$classified = join("\n",
			map { my $rel = substr($_, length($pgdata) + 1); ec_classify($rel) . ' ' . $rel }
			  ec_category_files($node, [qw(temp_relation spill wal)]));
		$again = $node->safe_psql('postgres', $scan_sql);
		last if $scanned eq $again;
	}
	is($scanned, $again, 'ec_classify oracle: the scan was stable while the data directory was walked');
	my @sorted = sort { (split / /, $a)[1] cmp (split / /, $b)[1] } split /\n/, $classified;
	is(join("\n", @sorted), $scanned, 'ec_classify oracle: it and ephemeral_crypt_scan() list the same files in the same categories');
	$_->quit for @sessions;
	ok($node->poll_query_until('postgres',
		q{SELECT files_open FROM ephemeral_crypt_encryption_status() WHERE category = 'spill'}, $baseline),
		"files_open: back to the baseline $baseline once the sessions are gone");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM ephemeral_crypt_scan() WHERE category = 'spill'}), '0',
		'files_open: no spill file left on disk');
}

# (f) a symbolic link inside the data directory that leads out of it.
{
	my $link = $node->data_dir . '/base/escape_link';
	symlink('/etc/passwd', $link) or die "symlink: $!";
	my ($ret, $out, $err) = $node->psql('postgres', q{SELECT * FROM ephemeral_crypt_file_status('base/escape_link')});
	isnt($ret, 0, 'symlink escape: file_status fails');
	like($err, qr/ERROR:  ephemeral_crypt_file_status: "base\/escape_link": .*outside/,
		'symlink escape: the ERROR says the path leads outside the data directory');
	unlike($out, qr/root:/, 'symlink escape: nothing of the target is returned');
	($ret, $out, $err) = $node->psql('postgres',
		'SELECT * FROM ephemeral_crypt_file_status(' . $node->safe_psql('postgres', "SELECT quote_literal('$link')") . ')');
	like($err, qr/ERROR:  .*outside/, 'symlink escape: refused by its absolute path too');
	unlink $link;
	# A link that stays inside the data directory is inspected normally.
	symlink($node->data_dir . '/global/pg_control', $link) or die "symlink: $!";
	is($node->safe_psql('postgres',
		q{SELECT encrypted, header_status, physical_size > 0 FROM ephemeral_crypt_file_status('base/escape_link')}),
		'f|not_ours|t', 'a link that stays inside the data directory is inspected');
	unlink $link;
}

# (h) the postgres_exporter-style view.
{
	my $rows = $node->safe_psql('postgres', 'SELECT * FROM ephemeral_crypt_counters ORDER BY category');
	my @rows = split /\n/, $rows;
	is(scalar(@rows), 3, 'counters view: 3 rows');
	is(join(',', map { (split /\|/)[0] } @rows), 'spill,temp_relation,wal', 'counters view: one row per category');
	my @bad = grep { my @c = split /\|/, $_, -1; @c != 9 || grep { !/^\d+$/ } @c[ 1 .. 8 ] } @rows;
	is_deeply(\@bad, [], 'counters view: 8 non-negative integer columns after the label')
	  or diag($rows);
	is($node->safe_psql('postgres', q{
		SELECT count(*) FROM pg_attribute
		 WHERE attrelid = 'ephemeral_crypt_counters'::regclass AND attnum > 1
		   AND atttypid NOT IN ('int4'::regtype, 'int8'::regtype)}), '0',
		'counters view: every column after the label has a numeric type');
	is($node->safe_psql('postgres', q{SELECT string_agg(category || '=' || enabled, ',' ORDER BY category) FROM ephemeral_crypt_counters}),
		'spill=1,temp_relation=1,wal=1', 'counters view: enabled is 1 for every category');
	my $status = ec_encryption_status($node);
	cmp_ok($status->{$_}{bytes_encrypted}, '>', 0, "counters: $_ has encrypted bytes") for qw(spill temp_relation wal);
	is($node->safe_psql('postgres', q{
		SELECT count(*) FROM ephemeral_crypt_counters v JOIN ephemeral_crypt_encryption_status() s USING (category)
		 WHERE v.files_encrypted > s.files_encrypted OR v.bytes_encrypted > s.bytes_encrypted}), '0',
		'counters view: agrees with ephemeral_crypt_encryption_status()');
}
$node->stop;

# ---------------------------------------------------------------------------
# (d) policy from a file: version and digest identical in SQL, in the log and
# in the tool's output. WAL stays off so the file decides everything.
{
	my $pnode = ec_new_node('policy_file', extension => 1, encrypt_wal => 0);
	my $file = $pnode->basedir . '/policy.conf';
	ec_write_file($file, <<'EOP');
# policy for the operator-view test
version = ops-file-7
temp_relation = on
spill = on
spill_degradation = fail_open_audit
wal = off
EOP
	my ($rc, $digest, $err) = ec_policy_tool('digest', $file);
	is($rc, 0, 'tool: digest succeeds');
	chomp $digest;
	like($digest, qr/^[0-9a-f]{64}$/, "tool: digest $digest");
	$pnode->append_conf('postgresql.conf', "ephemeral_crypt.policy_file = '$file'\n");
	$pnode->start;
	$pnode->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
	my ($p, $line) = ec_the_ready_line($pnode, 0, 'policy file: exactly one ready line');
	is($p->{version}, 'ops-file-7', 'policy file: log reports the version from the file, not the setting');
	is($p->{digest}, $digest, 'policy file: log digest equals `ephemeral_crypt_policy digest FILE`');
	isnt($p->{digest}, $r->{digest}, 'policy file: a different policy has a different digest');
	is($p->{signed} . $p->{from_file}, '01', 'policy file: log says unsigned (policy file)');
	like($line, qr/, unsigned \(policy file\), temp_relation: /, 'policy file: "unsigned (policy file)" in the line');
	is($p->{spill}, 'encrypted with AES-256-XTS (fail_open_audit)', 'policy file: spill degradation from the file');
	is($p->{wal}, 'not encrypted', 'policy file: wal from the file');
	is($pnode->safe_psql('postgres',
		'SELECT instance_key_id, policy_version, policy_digest, policy_signed FROM ephemeral_crypt_status()'),
		"$p->{key}|ops-file-7|$digest|f", 'policy file: SQL reports the key, version and digest of the log line');
	ec_policy_in_sql($pnode, 'ops-file-7',
		"spill|t|fail_open_audit\ntemp_relation|t|fail_closed\nwal|f|fail_closed",
		'policy file: from the file');

	# Comments do not change the digest; the server reports the same one
	# after a restart with a reformatted file, under a new key.
	ec_write_file($file, "# reformatted\n\nwal=off\nspill  =  on\nspill_degradation = fail_open_audit\n"
		  . "temp_relation = on\nversion = ops-file-7\n");
	($rc, my $digest2) = ec_policy_tool('digest', $file);
	chomp $digest2;
	is($digest2, $digest, 'tool: the digest ignores comments, spacing and order');
	my $offset = -s $pnode->logfile;
	$pnode->restart;
	my ($q) = ec_the_ready_line($pnode, $offset, 'policy file: one ready line after the restart');
	is($q->{digest}, $digest, 'policy file: the same digest after the restart');
	isnt($q->{key}, $p->{key}, 'policy file: a new key after the restart');
	is($pnode->safe_psql('postgres', 'SELECT instance_key_id, policy_digest FROM ephemeral_crypt_status()'),
		"$q->{key}|$digest", 'policy file: SQL agrees after the restart');
	$pnode->stop;
}

# ---------------------------------------------------------------------------
# (g) a server that did not preload the library. Each function is called
# both in the session that ran CREATE EXTENSION (the library is loaded there
# already) and in a new session (the call itself loads the library).
{
	my $plain = ec_new_node('plain', extension => 0);
	$plain->start;
	my @calls = (
		'SELECT * FROM ephemeral_crypt_status()',
		'SELECT ephemeral_crypt_policy_version()',
		'SELECT ephemeral_crypt_key_age()',
		'SELECT * FROM ephemeral_crypt_encryption_status()',
		q{SELECT * FROM ephemeral_crypt_file_status('global/pg_control')},
		'SELECT * FROM ephemeral_crypt_scan()',
		'SELECT * FROM ephemeral_crypt_counters');
	my $not_active = qr/ERROR:  ephemeral_crypt is not active on this server/;
	my $hint = qr/HINT:  Add ephemeral_crypt to shared_preload_libraries in postgresql\.conf and restart the server\./;

	my ($ret, $out, $err) = $plain->psql('postgres',
		join('', map { "$_;\n" } 'CREATE EXTENSION ephemeral_crypt', @calls), on_error_stop => 0);
	unlike($err, qr/psql:<stdin>:1: ERROR/, 'not preloaded: CREATE EXTENSION succeeds');
	is($plain->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'ephemeral_crypt'}),
		ec_extension_version(), 'not preloaded: the extension is installed, at the version debian/changelog sets');
	my @errors = $err =~ /(psql:<stdin>:\d+: ERROR:  [^\n]*)/g;
	is(scalar(@errors), scalar(@calls), 'same session: every function call fails')
	  or diag($err);
	for my $i (0 .. $#calls)
	{
		my $line = $i + 2;
		like($err, qr/psql:<stdin>:$line: $not_active/, "same session: $calls[$i]: ERROR not active");
	}
	my @hints = $err =~ /$hint/g;
	is(scalar(@hints), scalar(@calls), 'same session: each ERROR carries the HINT about shared_preload_libraries');
	is($out, '', 'same session: no result at all');

	for my $sql (@calls)
	{
		($ret, $out, $err) = $plain->psql('postgres', $sql, on_error_stop => 0);
		# A new session loads the library for the call; _PG_init refuses then,
		# with the same hint, before the function body runs.
		like($err, qr/ERROR:  ephemeral_crypt must be loaded via shared_preload_libraries/,
			"new session: $sql: ERROR says it must be preloaded");
		like($err, $hint, "new session: $sql: HINT about shared_preload_libraries");
		is($out, '', "new session: $sql: no result");
	}
	is($plain->safe_psql('postgres', 'SELECT 1'), '1', 'not preloaded: the server keeps running');
	is(scalar(ec_ready_lines($plain)), 0, 'not preloaded: no ready line');
	$plain->stop;
}

done_testing();
