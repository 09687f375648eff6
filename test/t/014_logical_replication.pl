
# Logical replication between two WAL-encrypted instances.
#
# Both instances preload the extension with encrypt_wal = on, wal_level =
# logical and logical_decoding_work_mem = 64kB. One large transaction on the
# publisher spills while the walsender decodes it (pg_replslot/<slot>/
# xid-*.spill, encrypted as spill files); the subscriber's apply worker is held
# on a lock so that the spill files stay on disk long enough to be read. The
# subscriber ends with the same rows (count and md5), and neither instance's
# pg_wal nor pg_replslot holds a marker in plaintext.

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

my $pub = ec_new_node('publisher', extension => 1, encrypt_wal => 1, allows_streaming => 'logical');
my $sub = ec_new_node('subscriber', extension => 1, encrypt_wal => 1, allows_streaming => 'logical');
$_->start for ($pub, $sub);
# What each instance made of its settings (its startup line, under the key it
# serves), and its counters before the workload, so that what the layer
# encrypted for it can be told from the test's settings.
my %status_before;
for my $node ($pub, $sub)
{
	$node->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
	my ($ready) = ec_the_ready_line($node, 0, $node->name . ': one ready line');
	is($ready->{key}, ec_key_id($node), $node->name . ': the ready line names the key ephemeral_crypt_status() reports');
	like($ready->{spill}, qr/^encrypted with AES-256-/, $node->name . ': the extension encrypts spill files, logical decoding spills among them');
	like($ready->{wal}, qr/^encrypted with AES-256-/, $node->name . ': the extension encrypts WAL');
	$status_before{ $node->name } = ec_encryption_status($node);
}
my $pub_key = ec_key_id($pub);
my $sub_key = ec_key_id($sub);
isnt($pub_key, $sub_key, 'two instances, two keys');

my $ddl = 'CREATE TABLE big (id int PRIMARY KEY, s text)';
$pub->safe_psql('postgres', $ddl);
$sub->safe_psql('postgres', $ddl);
$pub->safe_psql('postgres', 'CREATE PUBLICATION p FOR TABLE big');
my $connstr = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres', qq{CREATE SUBSCRIPTION s CONNECTION '$connstr' PUBLICATION p WITH (streaming = off)});
$sub->wait_for_subscription_sync($pub, 's');
is($pub->safe_psql('postgres', q{SELECT slot_type || '|' || coalesce(plugin, '') FROM pg_replication_slots WHERE slot_name = 's'}),
	'logical|pgoutput', 'the subscription has its logical slot on the publisher');

# Hold the apply worker on a lock, so that the walsender, once it has decoded
# the transaction, keeps its spill files while it waits to send.
my $lock = $sub->background_psql('postgres');
$lock->query_safe('BEGIN');
$lock->query_safe('LOCK TABLE big IN ACCESS EXCLUSIVE MODE');

my $marker = ec_marker('logical');
$pub->safe_psql('postgres', qq{
	INSERT INTO big SELECT g, '${marker}_' || g || repeat('z', 40) FROM generate_series(1, 200000) g;});
my $xid_spill = ec_wait_for_files($pub, 'spill', qr{/pg_replslot/s/xid-[^/]*\.spill$});
ok($xid_spill, 'the walsender spilled the transaction to pg_replslot/s/xid-*.spill');
my $scan_spill = ec_scan_markers($pub, 'spill', [$marker]);
my @spill_files = grep { m{/pg_replslot/} && $scan_spill->{sizes}{$_} > 0 } @{ $scan_spill->{files} };
cmp_ok(scalar(@spill_files), '>', 0, 'spill files in pg_replslot while the transaction is decoded (' . scalar(@spill_files) . ')');
my @bad = ec_not_encrypted_under($scan_spill, $pub_key, \@spill_files);
is_deeply(\@bad, [], "every spill file in pg_replslot starts with $EC_MAGIC under the publisher's key $pub_key");
is_deeply([ grep { m{/pg_replslot/} } @{ $scan_spill->{hits} } ], [], 'no marker in the spill files');

# Release the apply worker and wait for the subscriber.
$lock->query_safe('COMMIT');
$lock->quit;
$pub->wait_for_catchup('s', 'replay', $pub->lsn('insert'));

my $stats = $pub->safe_psql('postgres',
	q{SELECT spill_txns, spill_count, spill_bytes FROM pg_stat_replication_slots WHERE slot_name = 's'});
my ($spill_txns, $spill_count, $spill_bytes) = split /\|/, $stats;
note "pg_stat_replication_slots for s: spill_txns $spill_txns, spill_count $spill_count, spill_bytes $spill_bytes";
ok($spill_txns > 0 || $spill_bytes > 0, "the transaction spilled (spill_txns $spill_txns, spill_bytes $spill_bytes)");
cmp_ok($spill_bytes, '>', 1024 * 1024, 'more than 1MB was spilled');
# The layer, not only the settings: every byte the walsender spilled went
# through its encryption, and was read back through its decryption.
my $pub_status = ec_encryption_status($pub);
my %grew = map { $_ => $pub_status->{spill}{$_} - $status_before{publisher}{spill}{$_} } qw(bytes_encrypted bytes_decrypted);
cmp_ok($grew{bytes_encrypted}, '>=', $spill_bytes,
	"publisher: spill bytes_encrypted grew by $grew{bytes_encrypted} >= spill_bytes $spill_bytes");
cmp_ok($grew{bytes_decrypted}, '>', 0, "publisher: the spilled changes were read back decrypted ($grew{bytes_decrypted} bytes)");

my $digest = ec_digest($pub, 'big', 'id');
like($digest, qr/^200000\|[0-9a-f]{32}$/, 'the publisher has 200000 rows');
is(ec_digest($sub, 'big', 'id'), $digest, 'the subscriber has the same 200000 rows (count and md5)');

# A second transaction with updates and deletes, also larger than the limit.
$pub->safe_psql('postgres', q{
	BEGIN;
	UPDATE big SET s = s || '_u' WHERE id % 4 = 0;
	DELETE FROM big WHERE id % 9 = 0;
	COMMIT;});
$pub->wait_for_catchup('s', 'replay', $pub->lsn('insert'));
$digest = ec_digest($pub, 'big', 'id');
is(ec_digest($sub, 'big', 'id'), $digest, 'after updates and deletes: same rows on the subscriber');

my $slog = slurp_file($sub->logfile);
like($slog, qr/logical replication apply worker for subscription "s" has started/, 'the subscriber\'s apply worker started');
unlike($slog, qr/ERROR|PANIC/, 'the subscriber logged no ERROR nor PANIC');
my $plog = slurp_file($pub->logfile);
like($plog, qr/starting logical decoding for slot "s"/, 'the publisher decoded for slot s');
unlike($plog, qr/PANIC|WARNING:  ephemeral_crypt:/, 'the publisher logged no PANIC nor layer warning');

# Neither instance holds the marker in plaintext in pg_wal or pg_replslot.
for my $node ($pub, $sub)
{
	my $key = ec_key_id($node);
	my $scan = ec_scan_markers($node, [ 'wal', 'spill' ], [$marker]);
	my @wal = grep { m{/pg_wal/} && $scan->{sizes}{$_} > 0 } @{ $scan->{files} };
	cmp_ok(scalar(@wal), '>', 0, $node->name . ': WAL segments on disk (' . scalar(@wal) . ')');
	my @wrong = ec_not_encrypted_under($scan, $key, \@wal);
	is_deeply(\@wrong, [], $node->name . ": every WAL segment is encrypted under $key");
	is_deeply($scan->{hits}, [], $node->name . ': no marker in any file of pg_wal or pg_replslot');
	is_deeply([ ec_files_holding($node->data_dir . '/pg_replslot', $marker) ], [],
		$node->name . ': no file under pg_replslot (spill or state) holds the marker');
	my $st = ec_encryption_status($node);
	is($st->{$_}{failures}, '0', $node->name . ": no $_ failure") for qw(temp_relation spill wal);
	my $wal_grew = $st->{wal}{bytes_encrypted} - $status_before{ $node->name }{wal}{bytes_encrypted};
	cmp_ok($wal_grew, '>', 200000 * 40, $node->name . ": WAL bytes_encrypted grew by $wal_grew, more than the rows' payload");
}

$sub->stop;
$pub->stop;
done_testing();
