
# pg_upgrade between two majors, both with ephemeral_crypt preloaded and WAL
# encrypted: the old cluster holds data and the extension; pg_upgrade (of the
# new major) moves it into a new cluster. Afterwards the data is intact, the
# extension's functions answer, and no WAL segment or temporary file of
# either cluster is left in plaintext.
#
# Runs where two majors are installed side by side (the sid chroot holds 18
# and 19): EC_UPGRADE_OLD_INSTALL names the old major's installation
# (/usr/lib/postgresql/18); the new one is the installation under test.
#
# Why it works: pg_upgrade stops the old cluster cleanly, so its shutdown is
# sealed and its next start (pg_upgrade's own) continues from the sealed
# segment; pg_upgrade reads only pg_control and the catalogs, never WAL
# contents; and pg_resetwal, which replaces the new cluster's WAL with one
# plaintext segment, is followed by a start that encrypts that segment under
# the new key before the startup process reads it.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EphemeralCrypt::TestLib;

my $old_install = $ENV{EC_UPGRADE_OLD_INSTALL}
  or die "EC_UPGRADE_OLD_INSTALL must name the old major's installation";
die "$old_install/bin/postgres does not exist" unless -x "$old_install/bin/postgres";

my $old = ec_new_node('old', extension => 1, encrypt_wal => 1, install_path => $old_install);
my $new = ec_new_node('new', extension => 1, encrypt_wal => 1);
my ($old_major, $new_major) = ($old->pg_version->major, $new->pg_version->major);
cmp_ok($old_major, '<', $new_major, "upgrading from PostgreSQL $old_major to $new_major");

$old->start;
$old->safe_psql('postgres', q{
CREATE EXTENSION ephemeral_crypt;
CREATE TABLE kept AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 200000) g;
CREATE INDEX kept_payload ON kept (payload);
CREATE TABLE more (id int PRIMARY KEY, note text);
INSERT INTO more SELECT g, 'row ' || g FROM generate_series(1, 1000) g;
});
my $checksum_sql =
  q{SELECT md5(string_agg(id::text || ':' || payload, ',' ORDER BY id)) FROM kept};
my $old_key = ec_key_id($old);
my $old_sum = $old->safe_psql('postgres', $checksum_sql);
my $old_more = $old->safe_psql('postgres', 'SELECT count(*), sum(id) FROM more');
$old->stop;
my $sealed = ec_sealed_segment($old);
like($sealed->{out}, qr/desc: CHECKPOINT_SHUTDOWN/,
	'the old cluster stopped sealed (its shutdown checkpoint readable by pg_waldump)')
  or diag("pg_waldump: $sealed->{err}");

# pg_upgrade writes its reports and scripts into the working directory.
my $workdir = PostgreSQL::Test::Utils::tempdir();
chdir $workdir or die "chdir $workdir: $!";
my @upgrade = (
	'pg_upgrade', '--no-sync', '--copy',
	'-d', $old->data_dir, '-D', $new->data_dir,
	'-b', "$old_install/bin", '-B', $new->config_data('--bindir'),
	'-s', $new->host, '-p', $old->port, '-P', $new->port);
my $ok = command_ok(\@upgrade, "pg_upgrade $old_major -> $new_major succeeds");
unless ($ok)
{
	for my $log (glob($new->data_dir . '/pg_upgrade_output.d/*/log/*.log'))
	{
		diag("$log:\n" . slurp_file($log));
	}
}
chdir $FindBin::RealBin;

$new->start;
is($new->safe_psql('postgres', $checksum_sql), $old_sum, 'the table reads back identical');
is($new->safe_psql('postgres', 'SELECT count(*), sum(id) FROM more'), $old_more, 'and so does the second one');
is($new->safe_psql('postgres', q{SELECT count(*) FROM kept WHERE payload = md5('4242')}),
	'1', 'the index answers');
is($new->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'ephemeral_crypt'}),
	$new->safe_psql('postgres', q{SELECT default_version FROM pg_available_extensions WHERE name = 'ephemeral_crypt'}),
	'the extension came along at its current version');
my $status = $new->safe_psql('postgres', 'SELECT ready, instance_key_id FROM ephemeral_crypt_status()');
my $new_key = ec_key_id($new);
is($status, "t|$new_key", 'ephemeral_crypt_status() answers on the new cluster, under its own key');
isnt($new_key, $old_key, 'the new cluster has a new instance key');

# Spill and temporary-table work on the upgraded cluster, then the disk.
my $m = ec_marker('upgraded');
$new->safe_psql('postgres', qq{
BEGIN;
CREATE TEMP TABLE t AS SELECT id, payload || '${m}' AS p FROM kept;
SELECT count(*) FROM (SELECT p FROM t ORDER BY p DESC) s;
COMMIT;
});
$new->safe_psql('postgres', 'CHECKPOINT');
my $scan = ec_scan_markers($new, [ 'temp_relation', 'spill', 'wal' ], [$m]);
is_deeply($scan->{hits}, [], 'no file of the new cluster holds the marker in plaintext');
my $not_encrypted = $new->safe_psql('postgres',
	q{SELECT string_agg(file, ', ') FROM ephemeral_crypt_scan() WHERE category IS NOT NULL AND (NOT encrypted OR NOT current_instance)});
is($not_encrypted, '', 'ephemeral_crypt_scan(): every transient file of the new cluster is encrypted under its key');

for my $node ($old, $new)
{
	my @plain;
	# The old cluster's sealed segment (its shutdown checkpoint, checked
	# above) is plaintext by design.
	my $sealed_now = $node == $old ? ec_sealed_segment($old)->{segment} : '';
	for my $segment (grep { $_ ne $sealed_now } ec_wal_segments($node->data_dir . '/pg_wal'))
	{
		my ($magic) = ec_read_header($segment);
		push @plain, $segment unless defined $magic && $magic eq $EC_MAGIC;
	}
	is_deeply(\@plain, [], $node->name . ': no WAL segment but the sealed one is left in plaintext');
	my @temp = grep { -s $_ } ec_category_files($node, 'spill');
	is_deeply(\@temp, [], $node->name . ': no temporary file is left');
}
$new->stop;

done_testing();
