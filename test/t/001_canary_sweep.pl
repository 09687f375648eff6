
# Canary sweep per category.
#
# Node A preloads ephemeral_crypt with all three categories encrypted
# (temp_relation, spill, wal); node B has the same settings but no extension.
# A's temporary relations and spill files are in AES-256-XTS here;
# 018_canary_sweep_gcm.pl runs this file again with them in AES-256-GCM,
# where every such file must also be format v2.
# Every case pushes unique marker strings through one kind of on-disk
# temporary data, holds the statement still while its files exist (an open
# cursor, or a query blocked inside ec_block() until the test releases it),
# and greps the raw bytes of every file of the category for the markers:
# A must show no marker anywhere and only encrypted files under its own key; B
# must show the markers (which proves that the sweep can find them). Each
# case's output is compared between A and B (md5 of the rows), so the
# extension must not change any result.

use strict;
use warnings;

use Digest::MD5 qw(md5_hex);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
# The Makefile's PROVE_FLAGS (-I test/perl) is reset by PGXS's Makefile.global,
# so find the shared helpers relative to this file.
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EphemeralCrypt::TestLib;

my @ALL = qw(temp_relation spill wal);

# Set by 018_canary_sweep_gcm.pl before it runs this file.
our $canary_cipher;
my $cipher = $canary_cipher // 'aes-256-xts';
my $CIPHER = uc $cipher;
my %format_version = ('aes-256-xts' => 1, 'aes-256-gcm' => 2);
note "A's temporary relations and spill files: $CIPHER";

my $A = ec_new_node('A', extension => 1, encrypt_wal => 1, cipher => $cipher);
my $B = ec_new_node('B', extension => 0);
$A->start;
$B->start;

my $readyA = ec_parse_ready_line((ec_ready_lines($A))[0]) || {};
like(($readyA->{key} // '') . '|' . ($readyA->{wal} // ''), qr/^[0-9a-f]{16}\|encrypted with AES-256-XTS \(fail_closed\)$/,
	'A: startup log reports the key and encrypted WAL');
is(($readyA->{temp_relation} // '') . ' / ' . ($readyA->{spill} // ''),
	"encrypted with $CIPHER (fail_closed) / encrypted with $CIPHER (fail_closed)",
	"A: the startup log names $CIPHER for temp_relation and spill");
unlike(slurp_file($B->logfile), qr/ephemeral_crypt: /, 'B: no extension loaded');

$A->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
my $keyA = ec_key_id($A);
like($keyA, qr/^[0-9a-f]{16}$/, "A: instance key id $keyA");
is($readyA->{key}, $keyA, 'A: startup log names the same key id as ephemeral_crypt_status()');
is($A->safe_psql('postgres', 'SELECT ready FROM ephemeral_crypt_status()'), 't', 'A: ready');

for my $node ($A, $B)
{
	$node->safe_psql('postgres', ec_blocking_function_sql());
}

my %markers;          # case => marker
my $status_before = ec_encryption_status($A);

# Scans the files of the case's categories (all categories on A) and checks
# the invariants. $expect_re, if given, must match at least one scanned file
# on both nodes (e.g. a fileset directory).
sub check_scans
{
	my ($case, $cats, $scanA, $scanB, $expect_re) = @_;
	my %want = map { $_ => 1 } @$cats;
	my $in_cats = sub {
		my ($node, $path) = @_;
		my $cat = ec_classify(substr($path, length($node->data_dir) + 1));
		return defined $cat && $want{$cat};
	};
	# Empty files are left out: they hold nothing, and one may be caught
	# between its creation and the header write.
	my @catsA = grep { $in_cats->($A, $_) && $scanA->{sizes}{$_} > 0 } @{ $scanA->{files} };
	my @catsB = grep { $in_cats->($B, $_) && $scanB->{sizes}{$_} > 0 } @{ $scanB->{files} };
	my @hitsB = grep { $in_cats->($B, (split /: /, $_)[0]) } @{ $scanB->{hits} };

	cmp_ok(scalar(@catsA), '>', 0, "$case: A has @$cats file(s) on disk while the statement runs (" . scalar(@catsA) . ')');
	my @bad = ec_not_encrypted_under($scanA, $keyA, \@catsA);
	is_deeply(\@bad, [], "$case: every such file on A starts with $EC_MAGIC and carries key $keyA");
	# WAL is always AES-256-XTS (format v1); the others follow $cipher.
	my @wrong_format = grep {
		my $cat = ec_classify(substr($_, length($A->data_dir) + 1));
		my $want = $cat eq 'wal' ? 1 : $format_version{$cipher};
		($scanA->{versions}{$_} // 0) != $want
	} @catsA;
	is_deeply(\@wrong_format, [], "$case: every such file on A is in the format of its category's cipher");
	is_deeply($scanA->{hits}, [], "$case: no marker in any temp_relation/spill/wal file of A");
	cmp_ok(scalar(@catsB), '>', 0, "$case: B has @$cats file(s) on disk too");
	cmp_ok(scalar(@hitsB), '>', 0, "$case: the markers are found in plaintext in B's @$cats files (" . scalar(@hitsB) . ' hit(s))');
	if ($expect_re)
	{
		ok((grep { $_ =~ $expect_re } @catsA), "$case: A's files include $expect_re");
		ok((grep { $_ =~ $expect_re } @catsB), "$case: B's files include $expect_re");
	}
	note "$case: A files: @catsA";
	note "$case: B hits: @hitsB";
	return;
}

# Runs $query through a cursor on both nodes: declares it, runs the fetch
# commands (the first of which makes it spill), scans while the cursor is
# open, then fetches the rest into a file and compares A and B.
sub cursor_case
{
	my (%c) = @_;
	my $case = $c{case};
	my (%scan, %out);
	for my $node ($A, $B)
	{
		my $s = $node->background_psql('postgres');
		$s->query_safe($c{set}) if $c{set};
		my $declare = 'DECLARE c ' . ($c{scroll} ? 'SCROLL' : 'NO SCROLL') . " CURSOR FOR $c{query}";
		my $plan = $s->query_safe("EXPLAIN (COSTS OFF) $declare");
		like($plan, $c{plan}, "$case: plan on " . $node->name . " uses $c{plan}");
		$s->query_safe('BEGIN');
		$s->query_safe($declare);
		my $output = '';
		$output .= $s->query_safe($_) . "\n" for @{ $c{fetch} || ['FETCH 1 FROM c'] };
		$scan{ $node->name } = ec_scan_markers($node, $node == $A ? \@ALL : $c{cats}, [ $c{marker} ]);
		my $rest = $node->basedir . "/out_$case";
		$s->query_safe("\\o $rest\nFETCH ALL FROM c;\n\\o");
		$output .= slurp_file($rest);
		$s->query_safe('COMMIT');
		$s->quit;
		$out{ $node->name } = $output;
	}
	check_scans($case, $c{cats}, $scan{A}, $scan{B}, $c{expect_files});
	my @lines = split /\n/, $out{A};
	cmp_ok(scalar(@lines), '>=', $c{min_rows}, "$case: A returned at least $c{min_rows} rows");
	like($out{A}, qr/\Q$c{marker}\E/, "$case: the output carries the marker");
	is(md5_hex($out{A}), md5_hex($out{B}), "$case: same result (md5) with and without the extension");
	return;
}

# Runs $sql in a background session on both nodes; it blocks inside
# ec_block() until released. While blocked, waits for $ready (a query on the
# node returning true), scans, then releases and collects the output.
sub blocked_case
{
	my (%c) = @_;
	my $case = $c{case};
	my (%scan, %out, %logoff);
	for my $node ($A, $B)
	{
		my $tag = $case;
		my $path = ec_release_path($node, $tag);
		(my $sql = $c{sql}) =~ s/\@RELEASE\@/$path/g;
		my $s = $node->background_psql('postgres');
		$s->query_safe($c{set}) if $c{set};
		if ($c{plan})
		{
			my $plan = $s->query_safe("EXPLAIN (COSTS OFF) $sql");
			like($plan, $c{plan}, "$case: plan on " . $node->name . " uses $c{plan}");
		}
		$logoff{ $node->name } = -s $node->logfile;
		my $before = $node == $A ? ec_encryption_status($A) : undef;
		my $outfile = $node->basedir . "/out_$case";
		$s->query_until(qr/started/, "\\echo started\n\\o $outfile\n$sql;\n\\o\n");
		ok(ec_wait_for_blocked($node, $c{needle}), "$case: statement on " . $node->name . ' is held inside ec_block()');
		if ($c{ready})
		{
			ok($node->poll_query_until('postgres', $c{ready}), "$case: " . $node->name . ' reached the observation point');
		}
		$scan{ $node->name } = ec_scan_markers($node, $node == $A ? \@ALL : $c{cats}, [ $c{marker} ]);
		ec_release($node, $tag);
		$s->query_safe('SELECT 1');    # waits for the blocked statement to finish
		$s->quit;
		$out{ $node->name } = -e $outfile ? slurp_file($outfile) : '';
		if ($node == $A && $c{temp_file_bytes})
		{
			# log_temp_files = 0 logs every temporary file removed, with its
			# (logical) size: the layer must have encrypted at least that much.
			my $after = ec_encryption_status($A);
			my $log = ec_log_since($A, $logoff{A});
			my $sum = 0;
			my $n = 0;
			while ($log =~ /LOG:  temporary file: path "[^"]*", size (\d+)/g)
			{
				$sum += $1;
				$n++;
			}
			cmp_ok($n, '>', 0, "$case: A logged $n temporary file(s) ($sum bytes)");
			my $delta = $after->{spill}{bytes_encrypted} - $before->{spill}{bytes_encrypted};
			cmp_ok($delta, '>=', $sum, "$case: spill bytes_encrypted grew by $delta >= $sum bytes of temporary files logged");
		}
	}
	check_scans($case, $c{cats}, $scan{A}, $scan{B}, $c{expect_files});
	if (defined $c{compare})
	{
		my @a = sort split /\n/, $out{A};
		my @b = sort split /\n/, $out{B};
		cmp_ok(scalar(@a), '>=', $c{compare}, "$case: A returned at least $c{compare} rows");
		is(md5_hex(join "\n", @a), md5_hex(join "\n", @b), "$case: same result (md5) with and without the extension");
	}
	return;
}

# ---------------------------------------------------------------------------
# 1. A sort that spills (external merge): the tapes stay until CLOSE.
{
	my $m = $markers{sort} = ec_marker('sort');
	cursor_case(
		case => 'sort',
		marker => $m,
		cats => ['spill'],
		query => "SELECT g, '${m}_' || g AS s FROM generate_series(1, 40000) g ORDER BY s DESC",
		plan => qr/Sort/,
		min_rows => 40000);
}

# 2. A hash join whose inner side does not fit: batch files.
{
	my $m = $markers{hashjoin} = ec_marker('hashjoin');
	cursor_case(
		case => 'hashjoin',
		marker => $m,
		cats => ['spill'],
		set => 'SET enable_mergejoin = off; SET enable_nestloop = off; SET enable_sort = off;',
		# OFFSET 0 keeps the subqueries from being pulled up, so that the
		# marker column is computed below the join and lands in its batches.
		query => "SELECT a.g, a.s, b.s FROM (SELECT g, '${m}_a' || g AS s FROM generate_series(1, 30000) g OFFSET 0) a "
		  . "JOIN (SELECT g, '${m}_b' || g AS s FROM generate_series(1, 30000) g OFFSET 0) b ON a.g = b.g",
		plan => qr/Hash Join/,
		min_rows => 30000);
}

# 3. A hash aggregate that spills its partitions.
{
	my $m = $markers{hashagg} = ec_marker('hashagg');
	cursor_case(
		case => 'hashagg',
		marker => $m,
		cats => ['spill'],
		set => 'SET enable_sort = off;',
		query => "SELECT s, count(*) FROM (SELECT '${m}_' || (g % 25000) AS s FROM generate_series(1, 75000) g) x GROUP BY s",
		plan => qr/HashAggregate/,
		min_rows => 25000);
}

# 4. A materialized CTE: the InitPlan reads the whole CTE into its
#    tuplestore before the first row is returned.
{
	my $m = $markers{cte} = ec_marker('cte');
	cursor_case(
		case => 'cte',
		marker => $m,
		cats => ['spill'],
		query => "WITH x AS MATERIALIZED (SELECT g, '${m}_' || g AS s FROM generate_series(1, 40000) g) "
		  . "SELECT * FROM x WHERE g % 2 = (SELECT count(*) FROM x) % 2",
		plan => qr/CTE Scan/,
		min_rows => 20000);
}

# 5. A window function over one big partition: WindowAgg buffers it.
{
	my $m = $markers{window} = ec_marker('window');
	cursor_case(
		case => 'window',
		marker => $m,
		cats => ['spill'],
		query => "SELECT g, s, count(*) OVER () FROM (SELECT g, '${m}_' || g AS s FROM generate_series(1, 40000) g OFFSET 0) x",
		plan => qr/WindowAgg/,
		min_rows => 40000);
}

# 6. A SCROLL cursor over a plan without backward scan (ProjectSet): a
#    Materialize node keeps what was fetched, spilled beyond work_mem, and
#    serves FETCH BACKWARD from it.
{
	my $m = $markers{scroll} = ec_marker('scroll');
	cursor_case(
		case => 'scroll',
		marker => $m,
		cats => ['spill'],
		scroll => 1,
		query => "SELECT generate_series(1, 40000) AS g, '${m}_' || generate_series(1, 40000) AS s",
		plan => qr/Materialize.*ProjectSet/s,
		fetch => [ 'FETCH FORWARD 30000 FROM c', 'FETCH BACKWARD 10000 FROM c', 'FETCH ABSOLUTE 5 FROM c' ],
		min_rows => 40000);
}

# 7. Temporary tables larger than temp_buffers, with indexes: local buffers
#    are evicted to base/<db>/t<backend>_<relfilenode>; indexes are written
#    there too.
{
	my $m = $markers{temptable} = ec_marker('temptable');
	my (%scan, %out, %paths);
	for my $node ($A, $B)
	{
		my $s = $node->background_psql('postgres');
		$s->query_safe("CREATE TEMP TABLE tt (id int PRIMARY KEY, s text)");
		$s->query_safe("INSERT INTO tt SELECT g, '${m}_' || g || repeat('x', 60) FROM generate_series(1, 30000) g");
		$s->query_safe("CREATE INDEX tt_s ON tt (s)");
		$s->query_safe("UPDATE tt SET s = s || '_u' WHERE id % 10 = 0");
		$paths{ $node->name } = [ split /\n/, $s->query_safe(
			"SELECT pg_relation_filepath(c) FROM unnest(ARRAY['tt'::regclass, 'tt_pkey'::regclass, 'tt_s'::regclass]) c") ];
		$scan{ $node->name } = ec_scan_markers($node, $node == $A ? \@ALL : ['temp_relation'], [$m]);
		$s->query_safe('SET enable_seqscan = off; SET enable_bitmapscan = off;');
		like($s->query_safe("EXPLAIN (COSTS OFF) SELECT id, s FROM tt WHERE s > '${m}_2' ORDER BY s"),
			qr/Index Scan using tt_s/, "temptable: index scan on " . $node->name);
		my $rows = $node->basedir . '/out_temptable';
		$s->query_safe("\\o $rows\nSELECT id, s FROM tt WHERE s > '${m}_2' ORDER BY s;\nSELECT s FROM tt WHERE id BETWEEN 100 AND 29000 ORDER BY id;\n\\o");
		$out{ $node->name } = slurp_file($rows);
		$s->quit;
	}
	for my $node ($A, $B)
	{
		for my $rel (@{ $paths{ $node->name } })
		{
			like($rel, qr{^base/\d+/t\d+_\d+$}, "temptable: $rel is a temporary relation path");
			my $scan = $scan{ $node->name };
			ok((grep { $_ eq $node->data_dir . "/$rel" } @{ $scan->{files} }), 'temptable: ' . $node->name . " had $rel on disk");
			if ($node == $A)
			{
				is($scan->{headers}{ $A->data_dir . "/$rel" }, $EC_MAGIC, "temptable: A's $rel starts with $EC_MAGIC");
			}
		}
	}
	check_scans('temptable', ['temp_relation'], $scan{A}, $scan{B});
	ok((grep { index($_, $B->data_dir . '/' . $paths{B}[2]) == 0 } @{ $scan{B}{hits} }),
		'temptable: the markers are in B\'s temporary index file too');
	cmp_ok(length($out{A}), '>', 1_000_000, 'temptable: queries returned data');
	is(md5_hex($out{A}), md5_hex($out{B}), 'temptable: same result (md5) with and without the extension');
}

# After case $case built ${table}_idx on $table (its expression blocking on
# $last): the planner takes the index for a range query over the markers
# $m, and the index gives that query's right answer.
sub check_index_answers
{
	my ($node, $case, $table, $m, $last) = @_;
	my $release = ec_release_path($node, $case);
	my $no_heap_scans = 'SET enable_seqscan = off; SET enable_bitmapscan = off;';
	my $query = "SELECT count(*), min(id), max(id) FROM $table "
	  . "WHERE ec_block(s, '$last', '$release') >= '${m}_050001'";
	like($node->safe_psql('postgres', "$no_heap_scans EXPLAIN (COSTS OFF) $query"),
		qr/Index Scan using ${table}_idx/, "$case: the query below uses the index on " . $node->name);
	is($node->safe_psql('postgres', "$no_heap_scans $query"),
		'10000|50001|60000', "$case: the index built on " . $node->name . ' answers correctly');
	return;
}

# 8. CREATE INDEX, serial: the index expression blocks on the last row of
#    the heap scan, after tuplesort has dumped its first runs.
{
	my $m = $markers{createindex} = ec_marker('createindex');
	my $last = "${m}_060000" . ('y' x 20);
	for my $node ($A, $B)
	{
		$node->safe_psql('postgres', qq{
			CREATE TABLE ci (id int, s text);
			INSERT INTO ci SELECT g, '${m}_' || lpad(g::text, 6, '0') || repeat('y', 20) FROM generate_series(1, 60000) g;
			VACUUM ANALYZE ci;});
	}
	blocked_case(
		case => 'createindex',
		marker => $m,
		cats => ['spill'],
		set => 'SET max_parallel_maintenance_workers = 0; SET synchronize_seqscans = off;',
		sql => "CREATE INDEX ci_idx ON ci (ec_block(s, '$last', '\@RELEASE\@'))",
		needle => 'CREATE INDEX ci_idx',
		temp_file_bytes => 1);
	for my $node ($A, $B)
	{
		check_index_answers($node, 'createindex', 'ci', $m, $last);
	}
}

# 9. Parallel CREATE INDEX: workers write their sorted runs into a shared
#    fileset (pgsql_tmp/*.fileset/). One participant blocks; the others
#    have written their runs and exited or wait for it.
{
	my $m = $markers{parallelindex} = ec_marker('parallelindex');
	my $last = "${m}_060000" . ('z' x 20);
	for my $node ($A, $B)
	{
		$node->safe_psql('postgres', qq{
			CREATE TABLE pci (id int, s text) WITH (parallel_workers = 2);
			INSERT INTO pci SELECT g, '${m}_' || lpad(g::text, 6, '0') || repeat('z', 20) FROM generate_series(1, 60000) g;
			VACUUM ANALYZE pci;});
	}
	blocked_case(
		case => 'parallelindex',
		marker => $m,
		cats => ['spill'],
		set => "SET max_parallel_maintenance_workers = 2; SET maintenance_work_mem = '100MB'; SET synchronize_seqscans = off;",
		sql => "CREATE INDEX pci_idx ON pci (ec_block(s, '$last', '\@RELEASE\@'))",
		needle => 'CREATE INDEX pci_idx',
		# Every participant other than the blocked one has finished: worker
		# runs are then complete in the fileset.
		ready => q{SELECT count(*) FILTER (WHERE wait_event = 'PgSleep') = 1
			AND count(*) FILTER (WHERE coalesce(wait_event, '') NOT IN ('PgSleep', 'ParallelCreateIndexScan')) = 0
			AND count(*) FILTER (WHERE backend_type = 'parallel worker') <= 1
			FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX pci_idx%'},
		expect_files => qr{/pgsql_tmp/pgsql_tmp\d+\.\d+\.fileset/},
		temp_file_bytes => 1);
	for my $node ($A, $B)
	{
		like(slurp_file($node->logfile), qr/temporary file: path "[^"]*\.fileset\/[^"]*", size \d+/,
			'parallelindex: ' . $node->name . ' logged shared fileset files (the build ran in parallel)');
		check_index_answers($node, 'parallelindex', 'pci', $m, $last);
	}
}

# 10. Parallel hash join with batches in a shared fileset: every participant
#     blocks on its first joined row, after the inner side was partitioned.
{
	my $m = $markers{parallelhash} = ec_marker('parallelhash');
	for my $node ($A, $B)
	{
		$node->safe_psql('postgres', qq{
			CREATE TABLE pha (id int, s text) WITH (parallel_workers = 2);
			CREATE TABLE phb (id int, s text) WITH (parallel_workers = 2);
			INSERT INTO pha SELECT g, '${m}_a' || g FROM generate_series(1, 40000) g;
			INSERT INTO phb SELECT g, '${m}_b' || g FROM generate_series(1, 40000) g;
			VACUUM ANALYZE pha, phb;});
	}
	blocked_case(
		case => 'parallelhash',
		marker => $m,
		cats => ['spill'],
		set => 'SET enable_mergejoin = off; SET enable_nestloop = off; SET enable_parallel_hash = on; SET synchronize_seqscans = off;',
		sql => "SELECT a.id, ec_block(a.s, NULL, '\@RELEASE\@'), b.s FROM pha a JOIN phb b ON a.id = b.id",
		plan => qr/Gather.*Workers Planned: 2.*Parallel Hash Join.*Parallel Hash/s,
		needle => 'FROM pha a JOIN phb b',
		expect_files => qr{/pgsql_tmp/pgsql_tmp\d+\.\d+\.fileset/},
		compare => 40000);
}

# 11. Logical decoding spill files: pg_recvlogical streams from a
#     test_decoding slot while a big transaction is still open elsewhere;
#     the walsender decodes its changes as they are flushed and, beyond
#     logical_decoding_work_mem, serializes them to
#     pg_replslot/<slot>/xid-*.spill, which stay until the transaction
#     ends. (pg_logical_slot_peek_changes would remove its spill files
#     before returning, so the files are caught through a walsender.)
{
	my $m = $markers{decoding} = ec_marker('decoding');
	my (%scan, %out, %spill_bytes);
	for my $node ($A, $B)
	{
		$node->safe_psql('postgres', qq{
			CREATE TABLE ld (id int PRIMARY KEY, s text);
			SELECT pg_create_logical_replication_slot('s', 'test_decoding');});
		my $before = $node == $A ? ec_encryption_status($A) : undef;
		my $outfile = $node->basedir . '/decoded.txt';
		my ($stdout, $stderr) = ('', '');
		my $recv = IPC::Run::start(
			[ 'pg_recvlogical', '-d', $node->connstr('postgres'), '-S', 's', '--start', '-f', $outfile,
			  '-F', '1', '-s', '1', '-o', 'include-xids=0', '-o', 'skip-empty-xacts=1', '--no-loop' ],
			'>', \$stdout, '2>', \$stderr);
		ok($node->poll_query_until('postgres', "SELECT active FROM pg_replication_slots WHERE slot_name = 's'"),
			'decoding: pg_recvlogical streams from ' . $node->name);
		my $s = $node->background_psql('postgres');
		$s->query_safe('BEGIN');
		$s->query_safe("INSERT INTO ld SELECT g, '${m}_' || g || repeat('d', 40) FROM generate_series(1, 20000) g");
		$s->query_safe("UPDATE ld SET s = s || '_u' WHERE id % 7 = 0");
		# Push the WAL of the open transaction to disk (a later commit of
		# another transaction flushes everything before it).
		$node->safe_psql('postgres', 'CREATE TABLE ld_flush ()');
		my @spill = ec_wait_for_files($node, ['spill'], qr{/pg_replslot/s/xid-.*\.spill$});
		cmp_ok(scalar(@spill), '>', 0, 'decoding: ' . $node->name . " has .spill files while the transaction is open: @spill");
		$scan{ $node->name } = ec_scan_markers($node, $node == $A ? \@ALL : ['spill'], [$m]);
		$s->query_safe('COMMIT');
		$s->quit;
		my $end = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
		ok($node->poll_query_until('postgres', "SELECT confirmed_flush_lsn >= '$end' FROM pg_replication_slots WHERE slot_name = 's'"),
			'decoding: ' . $node->name . ' decoded past the commit');
		# The spill files are removed once the transaction has been decoded.
		ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM pg_ls_dir('pg_replslot/s') f WHERE f LIKE 'xid-%.spill'}),
			'decoding: ' . $node->name . ' removed the .spill files after the commit');
		$recv->signal('INT');
		$recv->finish;
		$out{ $node->name } = slurp_file($outfile);
		ok($node->poll_query_until('postgres', "SELECT spill_bytes > 0 FROM pg_stat_replication_slots WHERE slot_name = 's'"),
			'decoding: ' . $node->name . ' reports spill_bytes > 0');
		$spill_bytes{ $node->name } = $node->safe_psql('postgres', "SELECT spill_bytes FROM pg_stat_replication_slots WHERE slot_name = 's'");
		if ($node == $A)
		{
			my $after = ec_encryption_status($A);
			my $delta = $after->{spill}{bytes_encrypted} - $before->{spill}{bytes_encrypted};
			cmp_ok($delta, '>=', $spill_bytes{A}, "decoding: A's spill bytes_encrypted grew by $delta >= spill_bytes $spill_bytes{A}");
		}
		$node->safe_psql('postgres', "SELECT pg_drop_replication_slot('s')");
	}
	check_scans('decoding', ['spill'], $scan{A}, $scan{B}, qr{/pg_replslot/s/xid-[^/]*\.spill$});
	my $n = () = $out{A} =~ /^table public\.ld: INSERT: /mg;
	is($n, 20000, 'decoding: A decoded the 20000 inserted rows');
	like($out{A}, qr/\Q$m\E/, 'decoding: the decoded changes carry the marker');
	is(md5_hex($out{A}), md5_hex($out{B}), 'decoding: same decoded output (md5) with and without the extension');
}

# 12. WAL: markers written to a table reach pg_wal; after CHECKPOINT and a
#     segment switch they are in plaintext on B and nowhere on A.
{
	my $m = $markers{wal} = ec_marker('wal');
	my %scan;
	for my $node ($A, $B)
	{
		$node->safe_psql('postgres', qq{
			CREATE TABLE walcase (id int, s text);
			INSERT INTO walcase SELECT g, '${m}_' || g FROM generate_series(1, 2000) g;});
		$node->safe_psql('postgres', 'CHECKPOINT');
		$node->safe_psql('postgres', 'SELECT pg_switch_wal()');
		$node->safe_psql('postgres', 'INSERT INTO walcase VALUES (0, \'after switch\')');
		$node->safe_psql('postgres', 'CHECKPOINT');
		$scan{ $node->name } = ec_scan_markers($node, ['wal'], [$m]);
	}
	check_scans('wal', ['wal'], $scan{A}, $scan{B});
	my @walA = grep { m{/pg_wal/[0-9A-F]{24}$} } @{ $scan{A}{files} };
	cmp_ok(scalar(@walA), '>=', 2, 'wal: A has at least two segments after the switch');
	is($A->safe_psql('postgres', "SELECT md5(string_agg(s, ',' ORDER BY id)) FROM walcase"),
		$B->safe_psql('postgres', "SELECT md5(string_agg(s, ',' ORDER BY id)) FROM walcase"),
		'wal: same table contents with and without the extension');
}

# Final sweep: no marker of any case anywhere in A's three categories, and
# the counters show encryption in every category and no failure.
{
	my $scan = ec_scan_markers($A, \@ALL, [ values %markers ]);
	is_deeply($scan->{hits}, [], 'final sweep: no marker of any case in any temp_relation/spill/wal file of A');
	my @bad = ec_not_encrypted_under($scan, undef, [ grep { $scan->{sizes}{$_} > 0 } @{ $scan->{files} } ]);
	is_deeply(\@bad, [], "final sweep: every non-empty category file of A starts with $EC_MAGIC");
	my $scanB = ec_scan_markers($B, ['wal'], [ values %markers ]);
	cmp_ok(scalar(@{ $scanB->{hits} }), '>', 0, 'final sweep: B\'s WAL holds markers in plaintext');

	my $st = ec_encryption_status($A);
	for my $cat (@ALL)
	{
		is($st->{$cat}{enabled}, 't', "status: $cat enabled");
		is($st->{$cat}{degradation}, 'fail_closed', "status: $cat fail_closed");
		is($st->{$cat}{cipher}, $cat eq 'wal' ? 'AES-256-XTS' : $CIPHER, "status: $cat in its cipher");
		is($st->{$cat}{integrity_failures}, '0', "status: no $cat integrity failure");
		cmp_ok($st->{$cat}{files_encrypted}, '>', $status_before->{$cat}{files_encrypted}, "status: $cat files_encrypted grew ($st->{$cat}{files_encrypted})");
		cmp_ok($st->{$cat}{bytes_encrypted}, '>', $status_before->{$cat}{bytes_encrypted}, "status: $cat bytes_encrypted grew ($st->{$cat}{bytes_encrypted})");
		is($st->{$cat}{failures}, '0', "status: no $cat failure");
		is($st->{$cat}{plaintext_fallbacks}, '0', "status: no $cat plaintext fallback");
	}
	unlike(slurp_file($A->logfile), qr/WARNING:  ephemeral_crypt:/, 'A logged no layer warning');
}

$A->stop;
$B->stop;
done_testing();
