# Temp tablespaces: spill files and temporary relations placed through
# temp_tablespaces live outside the data directory, reached by the server
# through pg_tblspc/<oid> symbolic links. They must be encrypted there too.
# Node A preloads the extension, node B does not; the same workload writes
# unique markers, and the tablespace directories are scanned while the files
# exist: no marker on A (and every file starts with the header), markers on B.
# file_status() must accept an absolute path inside a tablespace.

use strict;
use warnings;

use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EphemeralCrypt::TestLib;

my $A = ec_new_node('ts_A', extension => 1, encrypt_wal => 0);
my $B = ec_new_node('ts_B', extension => 0);

my %result;
for my $node ($A, $B)
{
	$node->start;
	my $location = $node->basedir . '/temp_space';
	make_path($location);
	my $marker = ec_marker('tblspc_' . $node->name);
	$node->safe_psql('postgres', "CREATE TABLESPACE temp_space LOCATION '$location'");
	$node->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt') if $node == $A;
	$node->safe_psql('postgres',
		"CREATE TABLE src AS SELECT g AS id, '$marker' || g AS payload FROM generate_series(1, 60000) g");

	# One session holds a spilled sort and a temporary table, both placed in
	# the temp tablespace, while the directory is scanned.
	my $session = $node->background_psql('postgres');
	$session->query_safe("SET temp_tablespaces = temp_space");
	$session->query_safe("SET work_mem = '64kB'");
	$session->query_safe("BEGIN");
	$session->query_safe("CREATE TEMP TABLE held AS SELECT * FROM src");
	$session->query_safe("CREATE INDEX ON held (payload)");
	$session->query_safe("DECLARE sorted CURSOR FOR SELECT payload FROM src ORDER BY payload DESC");
	$session->query_safe("FETCH 1 FROM sorted");

	my $scan = ec_scan_tree($location, [$marker]);
	my @files = @{ $scan->{files} };
	my @spill = grep { m{/pgsql_tmp/} } @files;
	my @temprel = grep { m{/t\d+_\d+(_\w+)?(\.\d+)?$} } @files;
	$result{ $node->name } = { scan => $scan, spill => \@spill, temprel => \@temprel,
		hits => $scan->{holding}{$marker} };

	if ($node == $A)
	{
		my $abs = $spill[0];
		my $status = defined $abs
			? $node->safe_psql('postgres',
				"SELECT category, encrypted, current_instance FROM ephemeral_crypt_file_status('$abs')")
			: '';
		is($status, 'spill|t|t', 'file_status accepts an absolute path inside a tablespace');
		my ($scanned) = $node->safe_psql('postgres',
			"SELECT count(*) FROM ephemeral_crypt_scan() WHERE file LIKE 'pg_tblspc/%' AND encrypted AND current_instance");
		cmp_ok($scanned, '>=', scalar(@spill) + scalar(@temprel),
			'scan() lists the tablespace files through pg_tblspc, encrypted under this key');
	}
	$session->query_safe("COMMIT");
	$session->quit;
	$node->stop;
}

my $a = $result{ts_A};
my $b = $result{ts_B};
cmp_ok(scalar(@{ $a->{spill} }), '>', 0, 'A: spill files exist in the temp tablespace');
cmp_ok(scalar(@{ $a->{temprel} }), '>', 0, 'A: temporary relation files exist in the temp tablespace');
is_deeply($a->{hits}, [], 'A: no marker in any file of the temp tablespace');
# Judged by the sizes seen while the files existed (they are gone now).
my @a_unencrypted = ec_not_encrypted_under($a->{scan}, undef,
	[ grep { $a->{scan}{sizes}{$_} > 0 } (@{ $a->{spill} }, @{ $a->{temprel} }) ]);
is_deeply(\@a_unencrypted, [], 'A: every non-empty spill and temp relation file starts with the header');
cmp_ok(scalar(@{ $b->{spill} }) + scalar(@{ $b->{temprel} }), '>', 0, 'B: the same files exist');
cmp_ok(scalar(@{ $b->{hits} }), '>', 0, 'B: the markers are in plaintext (the sweep can fail)');

done_testing();
