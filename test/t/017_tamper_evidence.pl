
# Tamper evidence: bytes overwritten on disk between two reads by the session
# that owns the data, inside a temporary table's pages and inside a spilled
# sort's tapes.
#
# Three nodes run the same statements: G with temporary relations and spill
# files in AES-256-GCM (and both categories under fail_open_audit, which
# must not apply to a failed authentication), X with the default
# AES-256-XTS, and N without the extension. The bytes overwritten are 16
# bytes of a row's payload: found in N's plaintext, they lie at the same
# logical offset in X's and G's files (the same statements lay the files out
# the same way, which the test checks by their logical sizes), where 16
# aligned bytes are one AES block. Data checksums are off on every node (the
# default before PostgreSQL 18): they cover temporary tables' pages but not
# spill files, anyone who can change a plaintext page can recompute its
# checksum, and the test shows what the cipher itself detects.
#
#  - N and X return other rows with no error: the silent change the
#    authenticated mode exists for, which also proves the test can fail;
#  - G returns, read after read, either the right rows or an ERROR; the
#    ERROR comes, integrity_failures grows, a WARNING names the file, the
#    category, the unit and the key id, and no file falls back to plaintext.

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

my %no_checksums = (init => { no_data_checksums => 1 });
my $G = ec_new_node('G', extension => 1, encrypt_wal => 0, cipher => 'aes-256-gcm', %no_checksums,
	conf => "ephemeral_crypt.temp_relation_degradation = fail_open_audit\n"
	  . "ephemeral_crypt.spill_degradation = fail_open_audit\n");
my $X = ec_new_node('X', extension => 1, encrypt_wal => 0, %no_checksums);
my $N = ec_new_node('N', extension => 0, %no_checksums);
$_->start for ($G, $X, $N);
$_->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt') for ($G, $X);

my ($readyG) = ec_the_ready_line($G, 0, 'G: one ready line');
is($readyG->{temp_relation} . ' / ' . $readyG->{spill},
	'encrypted with AES-256-GCM (fail_open_audit) / encrypted with AES-256-GCM (fail_open_audit)',
	'G: the ready line names AES-256-GCM for temp_relation and spill');
is($G->safe_psql('postgres', 'SELECT cipher FROM ephemeral_crypt_status()'),
	'AES-256-GCM (temp_relation, spill), AES-256-XTS (wal)', 'G: status names each category\'s cipher');
is($G->safe_psql('postgres',
	q{SELECT string_agg(category || ':' || cipher, ',' ORDER BY category) FROM ephemeral_crypt_encryption_status()}),
	'spill:AES-256-GCM,temp_relation:AES-256-GCM,wal:AES-256-XTS', 'G: the cipher column per category');
my $keyG = ec_key_id($G);

# A 16-byte-aligned offset, inside [$from, $to) of N's plaintext file, of 16
# bytes that are all $fill (the middle of a row's payload), and after the
# first occurrence of $after there when it is given (that row's payload).
sub payload_offset
{
	my ($path, $from, $to, $fill, $after) = @_;
	open(my $fh, '<:raw', $path) or die "cannot read $path: $!";
	local $/;
	my $raw = <$fh>;
	close $fh;
	if (defined $after)
	{
		$from = index($raw, $after, $from);
		return undef if $from < 0;
	}
	my $at = index($raw, $fill x 48, $from);
	return undef if $at < 0 || $at + 48 > $to;
	return ($at + 15) & ~15;
}

# The rows of a query's output (psql's unaligned output, one per line, each
# starting with the row's number; a changed payload may hold a newline, and
# the line it starts is not a row).
sub rows_of
{
	my ($out) = @_;
	return grep { /^\d+\|/ } split /\n/, $out;
}

# Overwrites 16 bytes at logical offset $logical of the node's file: with
# another payload character on N, with arbitrary bytes (a changed AES block)
# on X and G.
sub tamper
{
	my ($node, $path, $logical) = @_;
	my $version = ec_header_version($path);
	my $bytes = $node == $N ? ('#' x 16) : pack('C*', map { int(rand(256)) } 1 .. 16);
	ec_overwrite($path, ec_physical_position($version, $logical), $bytes);
	return;
}

# The logical size of a file on a node (its header's layout; plaintext on N).
sub logical_size
{
	my ($node, $path) = @_;
	return ec_logical_size(ec_header_version($path), -s $path);
}

# Runs $sql in a background session; returns its output and what it wrote
# to stderr (WARNINGs and ERRORs; BackgroundPsql keeps stderr across
# queries, so it is emptied first).
sub run
{
	my ($session, $sql) = @_;
	$session->{stderr} = '';
	my $out = $session->query($sql);
	return ($out, $session->{stderr});
}

# The WARNING lines of the authenticated mode in the node's log after $offset.
sub integrity_warnings
{
	my ($node, $offset, $category) = @_;
	return grep {
		/WARNING:  ephemeral_crypt: data failed authentication: file "[^"]+", category \Q$category\E, unit \d+, key \Q$keyG\E/
	} split /\n/, ec_log_since($node, $offset);
}

# After G refused the $category data tampered with at byte $at: its
# integrity_failures grew past $before's, fail_open_audit did not apply, and
# at least $least WARNINGs since $offset say so ($warned), the first naming
# the file ($file_re, which is $file_is) and the unit that holds $at.
sub integrity_failures_reported
{
	my ($what, $category, $before, $offset, $at, $least, $warned, $file_re, $file_is) = @_;
	my $after = ec_encryption_status($G);
	cmp_ok($after->{$category}{integrity_failures}, '>', $before->{$category}{integrity_failures},
		"$what: G's integrity_failures grew ($after->{$category}{integrity_failures})");
	is($after->{$category}{plaintext_fallbacks}, '0', "$what: fail_open_audit did not apply");
	my @warnings = integrity_warnings($G, $offset, $category);
	cmp_ok(scalar(@warnings), '>=', $least, "$what: $warned");
	my $unit = int($at / 4096);
	like($warnings[0] // '', qr/file "$file_re", category $category, unit $unit, key/,
		"$what: the WARNING names $file_is and unit $unit");
	return;
}

# ---------------------------------------------------------------------------
# 1. A temporary table larger than temp_buffers (800kB): its early pages are
#    evicted to base/<db>/t<backend>_<relfilenode> and read back from there.
{
	my $rows = "SELECT md5(string_agg(s, ',' ORDER BY id)), count(*) FROM tt";
	my $changed = "SELECT count(*) FROM tt WHERE s <> rpad('P' || id || '_', 1000, 'x')";
	my (%sessions, %right, %file);
	for my $node ($N, $X, $G)
	{
		my $s = $sessions{ $node->name } = $node->background_psql('postgres', on_error_stop => 0);
		$s->query_safe('CREATE TEMP TABLE tt (id int, s text)');
		$s->query_safe("INSERT INTO tt SELECT g, rpad('P' || g || '_', 1000, 'x') FROM generate_series(1, 3000) g");
		# The first read sets hint bits and writes the pages back; the second
		# finds nothing to change, so the disk holds what the next read reads.
		$s->query_safe($rows);
		$right{ $node->name } = $s->query_safe($rows);
		$file{ $node->name } = $node->data_dir . '/' . $s->query_safe("SELECT pg_relation_filepath('tt')");
		ok(-f $file{ $node->name }, 'temp table: ' . $node->name . ' has the file on disk');
	}
	is($right{X}, $right{N}, 'temp table: X reads what N reads');
	is($right{G}, $right{N}, 'temp table: G reads what N reads');
	is(logical_size($X, $file{X}), -s $file{N}, 'temp table: X\'s file is as long as N\'s');
	is(logical_size($G, $file{G}), -s $file{N}, 'temp table: G\'s file is as long as N\'s');
	is(ec_header_version($file{G}), 2, 'temp table: G\'s file is format v2 (AES-256-GCM)');
	is(ec_header_version($file{X}), 1, 'temp table: X\'s file is format v1 (AES-256-XTS)');

	# Block 5, well before the last pages temp_buffers still holds.
	my $at = payload_offset($file{N}, 5 * 8192, 6 * 8192, 'x');
	ok(defined $at, 'temp table: a payload run in block 5 of N\'s file at ' . ($at // 'none'));
	my $before = ec_encryption_status($G);
	my $offset = -s $G->logfile;
	tamper($_, $file{ $_->name }, $at) for ($N, $X, $G);

	for my $node ($N, $X)
	{
		my $s = $sessions{ $node->name };
		my ($after, $err) = run($s, $rows);
		is($err, '', 'temp table: ' . $node->name . ' reads the tampered table without any error');
		isnt($after, $right{ $node->name }, 'temp table: ' . $node->name . ' returns other rows (a silent change)');
		cmp_ok($s->query_safe($changed), '>=', 1, 'temp table: ' . $node->name . ' has a row whose payload changed');
	}
	is(ec_encryption_status($X)->{temp_relation}{integrity_failures}, '0', 'temp table: X counts no integrity failure');

	my $s = $sessions{G};
	my ($errors, $wrong) = (0, 0);
	for my $read (1 .. 3)
	{
		my ($out, $err) = run($s, $rows);
		if ($err =~ /ERROR:  could not read .*Input\/output error/) { $errors++ }
		elsif ($err ne '' || $out ne $right{G}) { $wrong++; diag("read $read: $out $err") }
	}
	is($wrong, 0, 'temp table: every read on G returned the right rows or failed with an ERROR');
	is($errors, 3, 'temp table: every read of the tampered page on G failed with an I/O ERROR');
	integrity_failures_reported('temp table', 'temp_relation', $before, $offset, $at,
		3, 'a WARNING for each failed read names file, category, unit and key',
		qr/base\/\d+\/t\d+_\d+/, "the table's file");
	$_->quit for values %sessions;
}

# ---------------------------------------------------------------------------
# 2. A sort that spills, held open by a cursor: its runs are merged on the
#    fly as rows are fetched, so the payload of one of the last rows in the
#    sort order (near the end of the last run, read last) is read after the
#    first fetch.
{
	my $declare = q{DECLARE c NO SCROLL CURSOR FOR
		SELECT g, rpad('S' || g || '_', 1500, 'y') AS s FROM generate_series(1, 3000) g ORDER BY g};
	my (%sessions, %file, %first);
	for my $node ($N, $X, $G)
	{
		my $s = $sessions{ $node->name } = $node->background_psql('postgres', on_error_stop => 0);
		# One merge pass: a megabyte of work_mem takes the few runs at once.
		$s->query_safe("SET work_mem = '1MB'");
		$s->query_safe('SET max_parallel_workers_per_gather = 0');
		$s->query_safe('BEGIN');
		$s->query_safe($declare);
		$first{ $node->name } = $s->query_safe('FETCH 10 FROM c');
		my @files = sort { -s $b <=> -s $a } grep { m{/base/pgsql_tmp/} } ec_category_files($node, 'spill');
		$file{ $node->name } = $files[0];
		ok(defined $files[0], 'sort: ' . $node->name . ' has its tapes on disk: ' . ($files[0] // 'none'));
	}
	is($first{X}, $first{N}, 'sort: the first rows agree on X and N');
	is($first{G}, $first{N}, 'sort: the first rows agree on G and N');
	is(logical_size($X, $file{X}), -s $file{N}, 'sort: X\'s tape file is as long as N\'s');
	is(logical_size($G, $file{G}), -s $file{N}, 'sort: G\'s tape file is as long as N\'s');
	is(ec_header_version($file{G}), 2, 'sort: G\'s tape file is format v2 (AES-256-GCM)');

	my $size = -s $file{N};
	my $at = payload_offset($file{N}, 0, $size, 'y', 'S2990_');
	ok(defined $at, "sort: the payload of row 2990 in N's tapes at " . ($at // 'none'));
	my $before = ec_encryption_status($G);
	my $offset = -s $G->logfile;
	tamper($_, $file{ $_->name }, $at) for ($N, $X, $G);

	# Every fetched row must be the row it stands for.
	my $wrong_rows = sub {
		my ($out) = @_;
		return grep {
			my ($g, $s) = split /\|/, $_, 2;
			($s // '') ne substr('S' . $g . '_' . ('y' x 1500), 0, 1500)
		} rows_of($out);
	};
	for my $node ($N, $X)
	{
		my $s = $sessions{ $node->name };
		my ($rest, $err) = run($s, 'FETCH ALL FROM c');
		is($err, '', 'sort: ' . $node->name . ' fetches the tampered tapes without any error');
		is(scalar(rows_of($rest)), 2990, 'sort: ' . $node->name . ' returned the remaining rows');
		cmp_ok(scalar($wrong_rows->($rest)), '>=', 1, 'sort: ' . $node->name . ' returned a changed row (a silent change)');
		$s->query('COMMIT');
	}
	is(ec_encryption_status($X)->{spill}{integrity_failures}, '0', 'sort: X counts no integrity failure');

	my $s = $sessions{G};
	my ($error, $wrong, $fetched) = (0, 0, 10);
	while (1)
	{
		my ($out, $err) = run($s, 'FETCH 200 FROM c');
		if ($err =~ /ERROR:  could not read .*Input\/output error/) { $error = 1; last }
		if ($err ne '') { $wrong++; diag($err); last }
		my $n = scalar(rows_of($out));
		last if $n == 0;
		$wrong += scalar($wrong_rows->($out));
		$fetched += $n;
	}
	$s->query('ROLLBACK');
	is($wrong, 0, "sort: every row G returned before the error was the right one ($fetched rows)");
	is($error, 1, 'sort: G failed the fetch that reached the tampered block with an I/O ERROR');
	cmp_ok($fetched, '<', 2990, 'sort: G never returned the row whose payload was tampered with, nor any after it');
	integrity_failures_reported('sort', 'spill', $before, $offset, $at,
		1, 'a WARNING names file, category, unit and key',
		qr/base\/pgsql_tmp\/pgsql_tmp\d+\.\d+/, 'the tape file');
	$_->quit for values %sessions;
}

# Nothing was ever written in plaintext on G, and its files were all format v2.
{
	my $st = ec_encryption_status($G);
	is($st->{$_}{plaintext_fallbacks}, '0', "G: no $_ file fell back to plaintext") for qw(temp_relation spill);
	is($st->{$_}{failures}, '0', "G: an integrity failure is not counted as an encryption failure ($_)")
	  for qw(temp_relation spill);
	is($G->safe_psql('postgres',
		q{SELECT count(*) FROM ephemeral_crypt_scan() WHERE category IN ('spill', 'temp_relation') AND NOT encrypted}),
		'0', 'G: scan() finds no plaintext spill file or temporary relation');
}

$_->stop for ($G, $X, $N);
done_testing();
