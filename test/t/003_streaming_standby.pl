
# Streaming replication between two WAL-encrypted instances.
#
# The primary encrypts its WAL under its own instance key; the walsender
# reads it through the layer and ships plaintext records. A standby made from
# a base backup (whose pg_wal arrives in plaintext from pg_basebackup)
# preloads the extension with encrypt_wal = on: at startup it encrypts the
# plaintext segments it finds, and everything its walreceiver writes is
# encrypted under the standby's own key. Neither node's WAL shows the
# markers, and the replicated data is identical.

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

my $m1 = ec_marker('before_backup');
my ($primary, $standby) =
  ec_primary_with_standby(before_backup => sub { ec_create_marked_table($_[0], $m1, 5000) });
my $key_primary = ec_key_id($primary);
like($key_primary, qr/^[0-9a-f]{16}$/, "primary key id $key_primary");

my @backup_segments = ec_wal_segments($primary->backup_dir . '/b/pg_wal');
cmp_ok(scalar(@backup_segments), '>', 0, 'the base backup carries WAL segments');
my @plain = grep { my ($mg) = ec_read_header($_); !defined $mg || $mg ne $EC_MAGIC } @backup_segments;
is(scalar(@plain), scalar(@backup_segments), 'pg_basebackup received the WAL in plaintext (it is read through the primary\'s layer)');

my $standby_conf = slurp_file($standby->data_dir . '/postgresql.conf');
like($standby_conf, qr/shared_preload_libraries = 'ephemeral_crypt'/, 'the standby preloads the extension');
like($standby_conf, qr/ephemeral_crypt\.encrypt_wal = on/, 'the standby encrypts its WAL');

my $standby_log = slurp_file($standby->logfile);
like($standby_log, qr/ephemeral_crypt: encrypted \d+ plaintext WAL segment\(s\) in pg_wal under the new key/,
	'the standby encrypted the plaintext segments of the base backup at startup');
my ($ready) = ec_the_ready_line_in($standby_log, 'the standby logged one ready line');

# Data written after the backup, with markers, some of it in a new segment.
my $m2 = ec_marker('streamed');
$primary->safe_psql('postgres', qq{
	INSERT INTO t SELECT g, '${m2}_' || g FROM generate_series(5001, 15000) g;
	UPDATE t SET s = s || '_u' WHERE id % 3 = 0;});
$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
$primary->safe_psql('postgres', qq{INSERT INTO t SELECT g, '${m2}_' || g FROM generate_series(15001, 20000) g;});
$primary->safe_psql('postgres', 'CHECKPOINT');
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

like(slurp_file($standby->logfile), qr/started streaming WAL from primary/, 'the standby streams from the primary');

my $sum_sql = q{SELECT count(*), md5(string_agg(id || ':' || s, ',' ORDER BY id)) FROM t};
my $sum_primary = $primary->safe_psql('postgres', $sum_sql);
like($sum_primary, qr/^20000\|[0-9a-f]{32}$/, 'primary table checksum');
is($standby->safe_psql('postgres', $sum_sql), $sum_primary, 'the standby has the same table contents');
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');

# Keys: each instance has its own.
my $key_standby = ec_key_id($standby);
like($key_standby, qr/^[0-9a-f]{16}$/, "standby key id $key_standby");
is($ready->{key}, $key_standby, 'the standby\'s ready line names the key that ephemeral_crypt_status() reports');
isnt($key_standby, $key_primary, 'primary and standby have different instance keys');
is($standby->safe_psql('postgres', 'SELECT ready FROM ephemeral_crypt_status()'), 't', 'the standby is ready');

# Restartpoint on the standby, then look at its WAL.
$standby->safe_psql('postgres', 'CHECKPOINT');
my @markers = ($m1, $m2);
my $scan = ec_scan_markers($standby, 'wal', \@markers);
my @segments = grep { $scan->{sizes}{$_} > 0 } @{ $scan->{files} };
cmp_ok(scalar(@segments), '>=', 2, 'the standby has WAL segments (' . scalar(@segments) . ')');
my @wrong = ec_not_encrypted_under($scan, $key_standby, \@segments);
is_deeply(\@wrong, [], "every standby WAL segment starts with $EC_MAGIC and carries the standby's key $key_standby");
my @primary_key = grep { ($scan->{keyids}{$_} // '') eq $key_primary } @segments;
is_deeply(\@primary_key, [], 'no standby segment carries the primary\'s key');
is_deeply($scan->{hits}, [], 'no standby WAL file contains a marker in plaintext');

my $scan_primary = ec_scan_markers($primary, 'wal', \@markers);
my @wrong_primary = ec_not_encrypted_under($scan_primary, $key_primary,
	[ grep { $scan_primary->{sizes}{$_} > 0 } @{ $scan_primary->{files} } ]);
is_deeply(\@wrong_primary, [], "every primary WAL segment carries the primary's key $key_primary");
is_deeply($scan_primary->{hits}, [], 'no primary WAL file contains a marker in plaintext');

# Counters on the standby: its walreceiver wrote encrypted WAL, and nothing failed.
my $st = ec_encryption_status($standby);
cmp_ok($st->{wal}{bytes_encrypted}, '>', 0, "standby encrypted $st->{wal}{bytes_encrypted} WAL bytes");
cmp_ok($st->{wal}{bytes_decrypted}, '>', 0, "standby decrypted $st->{wal}{bytes_decrypted} WAL bytes (replay)");
is($st->{$_}{failures}, '0', "standby: no $_ failure") for qw(temp_relation spill wal);
unlike(slurp_file($standby->logfile), qr/WARNING:  ephemeral_crypt:/, 'the standby logged no layer warning');
unlike(slurp_file($primary->logfile), qr/WARNING:  ephemeral_crypt:/, 'the primary logged no layer warning');

$standby->stop;
$primary->stop;
done_testing();
