
# Asynchronous I/O (PostgreSQL 18 and later) and the three io_method values.
#
# AIO carries reads of relation blocks into shared and local buffers; BufFile,
# WAL and logical decoding spills stay synchronous. So:
#  - io_method = sync and io_method = worker (the default), with every
#    category encrypted: a temporary table larger than temp_buffers is read
#    back through the layer (its pages come back decrypted and its rows
#    right), a spilling sort is right, and nothing of either is on disk in
#    plaintext; the I/O workers are children of the postmaster and carry the
#    layer;
#  - io_method = io_uring with encrypt_temp_relations = on: refused, because
#    io_uring reads temporary tables' pages past libc; the FATAL names both
#    settings and the hint both ways out;
#  - io_method = io_uring with encrypt_temp_relations = off: starts; spill
#    files and WAL are encrypted and read back right, temporary tables are
#    read through io_uring in plaintext, as configured.
#
# io_method does not exist before PostgreSQL 18; the test then has nothing to
# check.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EphemeralCrypt::TestLib;

my $probe = PostgreSQL::Test::Cluster->new('probe');
plan skip_all => 'io_method exists from PostgreSQL 18 on' if $probe->pg_version < 18;

my $rows = 60000;    # about 6 MB of temporary table against 800kB of temp_buffers

# Runs, in one session, a temporary table larger than temp_buffers (created,
# then read twice, each time through the buffer manager's read stream) and a
# spilling sort, and checks the answers against ones computed without either.
# Leaves the temporary table's and the sort's files on disk while the markers
# are searched for.
sub check_workload
{
	my ($node, $what, $encrypted_temp) = @_;
	my $m = ec_marker("io_$what");
	my $expected = $node->safe_psql('postgres',
		qq{SELECT count(*) || ':' || sum(length('${m}_' || md5(g::text))) FROM generate_series(1, $rows) g});
	my $sql = qq{
BEGIN;
CREATE TEMP TABLE io_temp AS SELECT g, '${m}_' || md5(g::text) AS payload FROM generate_series(1, $rows) g;
SELECT count(*) || ':' || sum(length(payload)) FROM io_temp;
SELECT count(*) || ':' || sum(length(payload)) FROM io_temp;
DECLARE sorted CURSOR FOR SELECT payload FROM io_temp ORDER BY payload DESC;
FETCH 1 FROM sorted;
SELECT pg_sleep(0);
};
	my $session = $node->background_psql('postgres');
	my $out = $session->query_safe($sql);
	my @lines = grep { length } split /\n/, $out;
	is($lines[0], $expected, "$what: the temporary table reads back right");
	is($lines[1], $expected, "$what: and again");
	my ($first) = $node->safe_psql('postgres',
		qq{SELECT '${m}_' || md5(g::text) AS p FROM generate_series(1, $rows) g ORDER BY p DESC LIMIT 1});
	is($lines[2], $first, "$what: the spilled sort's first row is right");

	my @temp_files = ec_category_files($node, 'temp_relation');
	my @spill_files = ec_category_files($node, 'spill');
	ok(@temp_files > 0, "$what: the temporary table has files on disk");
	ok(@spill_files > 0, "$what: the sort spilled to disk");
	my $scan = ec_scan_markers($node, [ 'temp_relation', 'spill', 'wal' ], [$m]);
	my @temp_hits = grep { /\/t\d+_\d+/ } @{ $scan->{hits} };
	my @other_hits = grep { !/\/t\d+_\d+/ } @{ $scan->{hits} };
	is_deeply(\@other_hits, [], "$what: no spill file or WAL segment holds the marker");
	if ($encrypted_temp)
	{
		is_deeply(\@temp_hits, [], "$what: no temporary table file holds the marker");
	}
	else
	{
		ok(@temp_hits > 0, "$what: temporary tables are not encrypted here, and hold the marker");
	}
	$session->query_safe('COMMIT');
	$session->quit;
}

for my $method (qw(sync worker))
{
	my $node = ec_new_node("io_$method", extension => 1, encrypt_wal => 1,
		conf => "io_method = $method\n");
	$node->start;
	my ($ready) = ec_the_ready_line($node, 0, "$method: the extension accepts io_method = $method (one ready line)");
	is($ready->{temp_relation}, 'encrypted with AES-256-XTS (fail_closed)',
		"$method: temporary relations stay encrypted under io_method = $method");
	$node->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
	my $before = ec_encryption_status($node);
	check_workload($node, $method, 1);
	my $after = ec_encryption_status($node);
	cmp_ok($after->{temp_relation}{bytes_decrypted} - $before->{temp_relation}{bytes_decrypted},
		'>=', 4_000_000, "$method: the temporary table's pages were read through the layer");
	is($after->{temp_relation}{failures}, '0', "$method: no temp_relation failure");
	is($after->{spill}{failures}, '0', "$method: no spill failure");

	if ($method eq 'worker')
	{
		my @workers = split /\n/,
		  $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'io worker'});
		ok(@workers > 0, 'worker: I/O workers are running');
		my @without = grep { slurp_file("/proc/$_/maps") !~ /ephemeral_crypt\.so/ } @workers;
		is_deeply(\@without, [], 'worker: every I/O worker carries the layer (forked from the postmaster)');
	}
	$node->stop;
}

# io_uring with temporary tables encrypted: refused.
{
	my $node = ec_new_node('io_uring_refused', extension => 1, encrypt_wal => 1,
		conf => "io_method = io_uring\n");
	my $log = ec_start_refused($node, 'io_uring with encrypt_temp_relations');
	like($log,
		qr/FATAL:  ephemeral_crypt\.encrypt_temp_relations cannot be combined with io_method = io_uring/,
		'io_uring refused: the FATAL names both settings');
	like($log, qr/DETAIL:  With io_method = io_uring, the server reads temporary tables' pages straight from the kernel/,
		'io_uring refused: the DETAIL says what would bypass the layer');
	like($log,
		qr/HINT:  Set io_method = worker \(the default\) or io_method = sync, or set ephemeral_crypt\.encrypt_temp_relations = off\./,
		'io_uring refused: the HINT gives both ways out');
}

# io_uring with temporary tables not encrypted: allowed.
{
	my $node = ec_new_node('io_uring_allowed', extension => 1, encrypt_wal => 1,
		conf => "io_method = io_uring\nephemeral_crypt.encrypt_temp_relations = off\n");
	$node->start;
	# What the extension made of io_uring: it started (one ready line), left
	# temporary relations alone and encrypts the rest.
	my ($ready) = ec_the_ready_line($node, 0, 'io_uring allowed: the extension accepts io_uring (one ready line)');
	is($ready->{temp_relation}, 'not encrypted', 'io_uring allowed: the extension leaves temporary relations to io_uring');
	like($ready->{spill} . '|' . $ready->{wal},
		qr/^encrypted with AES-256-XTS \([a-z_]+\)\|encrypted with AES-256-XTS \(fail_closed\)$/,
		'io_uring allowed: the extension encrypts spill files and WAL');
	$node->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
	my $before = ec_encryption_status($node);
	check_workload($node, 'io_uring', 0);
	my $after = ec_encryption_status($node);
	is(join('|', map { $after->{temp_relation}{$_} - $before->{temp_relation}{$_} } qw(bytes_encrypted bytes_decrypted)),
		'0|0', 'io_uring allowed: no byte of the temporary table went through the cipher');
	cmp_ok($after->{spill}{bytes_encrypted} - $before->{spill}{bytes_encrypted}, '>', 0,
		'io_uring allowed: the sort spilled through the layer\'s encryption');
	cmp_ok($after->{spill}{bytes_decrypted}, '>', 0, 'io_uring allowed: the spill was read back through the layer');
	is($after->{spill}{failures}, '0', 'io_uring allowed: no spill failure');
	my @wal = ec_wal_segments($node->data_dir . '/pg_wal');
	my @plain = grep { my ($magic) = ec_read_header($_); !defined $magic || $magic ne $EC_MAGIC } @wal;
	is_deeply(\@plain, [], 'io_uring allowed: every WAL segment is encrypted');
	$node->stop;
}

done_testing();
