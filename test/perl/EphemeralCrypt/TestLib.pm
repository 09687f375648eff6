
# Shared helpers for the ephemeral_crypt TAP tests (test/t/*.pl).
#
# Node setup with and without the extension (a WAL-encrypted primary, and a
# primary with a streaming standby), selection of the files of each
# encryption category in a data directory, raw-byte searches of files and
# directory trees, reading of the encryption header (magic and instance key
# id), the startup line's parser, and a start that must be refused.
#
# Everything here reads files with plain Perl I/O from the test process, which
# is not interposed by the extension: what it sees is what is on disk.

package EphemeralCrypt::TestLib;

use strict;
use warnings;

use Exporter 'import';
use File::Find;
use File::Temp;
use FindBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

our @EXPORT = qw(
  $EC_MAGIC
  $EC_HEADER_SIZE
  $EC_DATA_OFFSET
  ec_new_node
  ec_start_primary
  ec_primary_with_standby
  ec_create_marked_table
  ec_common_conf
  ec_cipher_conf
  ec_header_version
  ec_extension_version
  ec_physical_position
  ec_logical_size
  ec_overwrite
  ec_category_files
  ec_classify
  ec_scan_markers
  ec_scan_files
  ec_scan_tree
  ec_files_holding
  ec_not_encrypted_under
  ec_read_header
  ec_key_id
  ec_encryption_status
  ec_marker
  ec_wait_for_files
  ec_blocking_function_sql
  ec_release_path
  ec_release
  ec_log_lines
  ec_log_since
  ec_wait_for_blocked
  ec_parse_ready_line
  ec_ready_lines
  ec_ready_lines_in
  ec_the_ready_line
  ec_the_ready_line_in
  ec_policy_tool
  ec_policy_keypair
  ec_staging_directory
  ec_start_from_archive
  ec_staged_files
  ec_deploy_policy
  ec_write_file
  ec_start_refused
  ec_reload_refused
  ec_policy_in_sql
  ec_pgbench_sums
  ec_check_pgbench_invariant
  ec_digest
  ec_controldata
  ec_sealed_segment
  ec_lsn
  ec_kill9_all
  ec_wal_segments
  ec_is_plain_wal
  ec_wal_page_magic
  ec_wait_for_log_since
);

# The first bytes of every encrypted file, its header's size, and where its
# data begins (the header, then a hole).
our $EC_MAGIC = 'EPHCRYPT';
our $EC_HEADER_SIZE = 4096;
our $EC_DATA_OFFSET = 65536;
# Format v2: the data of one extent (2048 units), after its 64 KiB of metadata.
my $ec_extent_data = 2048 * 4096;

# The settings that put temporary relations and spill files in $cipher
# ('aes-256-xts' or 'aes-256-gcm').
sub ec_cipher_conf
{
	my ($cipher) = @_;
	return "ephemeral_crypt.temp_relation_cipher = '$cipher'\n"
	  . "ephemeral_crypt.spill_cipher = '$cipher'\n";
}

# Settings shared by the nodes with and without the extension: tiny memory
# limits so that every category spills to disk quickly.
sub ec_common_conf
{
	return <<'EOC';
work_mem = 64kB
maintenance_work_mem = 1MB
hash_mem_multiplier = 1.0
temp_buffers = 800kB
logical_decoding_work_mem = 64kB
wal_level = logical
max_wal_senders = 4
max_replication_slots = 4
max_connections = 20
shared_buffers = 16MB
max_worker_processes = 8
max_parallel_workers = 4
max_parallel_workers_per_gather = 2
max_parallel_maintenance_workers = 2
min_parallel_table_scan_size = 0
min_parallel_index_scan_size = 0
parallel_setup_cost = 0
parallel_tuple_cost = 0
parallel_leader_participation = on
log_temp_files = 0
jit = off
autovacuum = off
EOC
}

# ec_new_node($name, extension => 0|1, encrypt_wal => 0|1, conf => '...',
#             cipher => 'aes-256-xts'|'aes-256-gcm',
#             allows_streaming => 'logical'|1|0, init => {...},
#             install_path => '/usr/lib/postgresql/NN')
#
# Creates and initialises (does not start) a node. With extension => 1 the
# library is preloaded; encrypt_wal defaults to on in that case, and cipher
# (default: the extension's, aes-256-xts) sets the cipher of temporary
# relations and spill files. Extra settings in conf are appended last.
# install_path runs another installed major's binaries (for pg_upgrade).
sub ec_new_node
{
	my ($name, %opts) = @_;
	my $extension = exists $opts{extension} ? $opts{extension} : 1;
	my $streaming =
	  exists $opts{allows_streaming} ? $opts{allows_streaming} : 'logical';
	my $node = PostgreSQL::Test::Cluster->new($name,
		$opts{install_path} ? (install_path => $opts{install_path}) : ());
	$node->init(allows_streaming => $streaming, %{ $opts{init} || {} });
	$node->append_conf('postgresql.conf', ec_common_conf());
	if ($extension)
	{
		my $wal = exists $opts{encrypt_wal} ? $opts{encrypt_wal} : 1;
		$node->append_conf(
			'postgresql.conf', qq{
shared_preload_libraries = 'ephemeral_crypt'
ephemeral_crypt.encrypt_temp_relations = on
ephemeral_crypt.encrypt_spill_files = on
ephemeral_crypt.encrypt_wal = } . ($wal ? 'on' : 'off') . qq{
ephemeral_crypt.policy_version = 'tap-test'
});
		$node->append_conf('postgresql.conf', ec_cipher_conf($opts{cipher}))
		  if defined $opts{cipher};
	}
	$node->append_conf('postgresql.conf', $opts{conf}) if defined $opts{conf};
	return $node;
}

# ec_start_primary($name, %opts)
#
# A started node with the extension and WAL encryption (streaming allowed,
# as a primary needs), and the extension created in the postgres database.
# %opts go to ec_new_node (conf => ..., allows_streaming => ...).
sub ec_start_primary
{
	my ($name, %opts) = @_;
	my $node = ec_new_node($name, extension => 1, encrypt_wal => 1, allows_streaming => 1, %opts);
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
	return $node;
}

# ec_primary_with_standby(primary_conf => '...', slot => 'name',
#                         before_backup => sub { my ($primary) = @_; ... })
#
# A started WAL-encrypted primary (ec_start_primary, named 'primary') and a
# started streaming standby named 'standby', made from a base backup 'b' of
# it (so it preloads the extension with WAL encryption too, under its own
# key). With slot, the primary gets a physical replication slot of that name
# and the standby streams through it. before_backup runs on the primary
# before the backup is taken. Returns ($primary, $standby).
sub ec_primary_with_standby
{
	my (%opts) = @_;
	my $primary = ec_start_primary('primary',
		defined $opts{primary_conf} ? (conf => $opts{primary_conf}) : ());
	$primary->safe_psql('postgres', "SELECT pg_create_physical_replication_slot('$opts{slot}')")
	  if defined $opts{slot};
	$opts{before_backup}->($primary) if $opts{before_backup};
	$primary->backup('b');
	my $standby = PostgreSQL::Test::Cluster->new('standby');
	$standby->init_from_backup($primary, 'b', has_streaming => 1);
	$standby->append_conf('postgresql.conf', "primary_slot_name = '$opts{slot}'\n")
	  if defined $opts{slot};
	$standby->start;
	return ($primary, $standby);
}

# Creates table t (id int PRIMARY KEY, s text) in the postgres database with
# rows 1..$rows, each s being "<marker>_<id>".
sub ec_create_marked_table
{
	my ($node, $marker, $rows) = @_;
	$node->safe_psql('postgres', qq{
	CREATE TABLE t (id int PRIMARY KEY, s text);
	INSERT INTO t SELECT g, '${marker}_' || g FROM generate_series(1, $rows) g;});
	return;
}

# A unique marker string for a case.
sub ec_marker
{
	my ($case) = @_;
	my $rand = join '', map { ('A' .. 'Z', '0' .. '9')[ int(rand(36)) ] } 1 .. 12;
	return "EC_CANARY_${case}_${rand}";
}

# Category of a path relative to the data directory, following the rules of
# src/core/path_classifier.cpp; undef when the file is in none.
sub ec_classify
{
	my ($rel) = @_;
	my @parts = split m{/}, $rel;
	my $name = $parts[-1];
	my @dirs = @parts[ 0 .. $#parts - 1 ];
	return 'spill' if grep { $_ eq 'pgsql_tmp' } @dirs;
	if (@dirs == 1 && $dirs[0] eq 'pg_wal')
	{
		return 'wal'
		  if $name =~ /^[0-9A-F]{24}(\.partial)?$/ || $name =~ /^xlogtemp\./ || $name eq 'RECOVERYXLOG';
		return undef;
	}
	return 'spill'
	  if @dirs == 2
	  && $dirs[0] eq 'pg_replslot'
	  && $name =~ /^xid-.*\.spill$/;
	return 'temp_relation'
	  if @dirs == 2
	  && $dirs[0] eq 'base'
	  && $dirs[1] =~ /^\d+$/
	  && $name =~ /^t\d+_\d+(_(fsm|vm|init))?(\.\d+)?$/;
	return undef;
}

# Regular files of the data directory in the given category (or categories,
# as an array ref), as absolute paths, sorted. Files that vanish during the
# walk are skipped.
sub ec_category_files
{
	my ($node, $categories) = @_;
	$categories = [$categories] unless ref $categories;
	my %want = map { $_ => 1 } @$categories;
	my $pgdata = $node->data_dir;
	my @files;
	find(
		{
			no_chdir => 1,
			wanted => sub {
				return unless -f $File::Find::name;
				my $rel = substr($File::Find::name, length($pgdata) + 1);
				my $cat = ec_classify($rel);
				push @files, $File::Find::name if defined $cat && $want{$cat};
			}
		},
		$pgdata);
	return sort @files;
}

# Reads a whole file as raw bytes; undef if it vanished.
sub _slurp_raw
{
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or return undef;
	local $/;
	my $data = <$fh>;
	close $fh;
	return defined $data ? $data : '';
}

# ec_scan_files(\@paths, \@needles)
# Greps the raw bytes of each file for every needle. Files that vanish are
# left out. Returns a hash ref: { files => [paths read], sizes => {path =>
# bytes}, headers => {path => first 8 bytes}, keyids => {path => hex key id},
# versions => {path => header format version, for files with the magic},
# hits => [ "path: needle" ... ], holding => {needle => [paths]} }.
sub ec_scan_files
{
	my ($paths, $needles) = @_;
	my %seen;
	my @needles = grep { !$seen{$_}++ } @$needles;
	my %result = (files => [], hits => [], sizes => {}, headers => {}, keyids => {},
		versions => {}, holding => { map { $_ => [] } @needles });
	for my $path (@$paths)
	{
		my $data = _slurp_raw($path);
		next unless defined $data;
		push @{ $result{files} }, $path;
		$result{sizes}{$path} = length $data;
		$result{headers}{$path} = substr($data, 0, 8);
		$result{keyids}{$path} = unpack('H*', substr($data, 24, 8))
		  if length $data >= 32;
		$result{versions}{$path} = unpack('v', substr($data, 8, 2))
		  if length $data >= 10 && substr($data, 0, 8) eq $EC_MAGIC;
		for my $m (@needles)
		{
			next unless index($data, $m) >= 0;
			push @{ $result{hits} }, "$path: $m";
			push @{ $result{holding}{$m} }, $path;
		}
	}
	return \%result;
}

# ec_scan_markers($node, $categories, \@markers)
# ec_scan_files over every file of the categories in the node's data directory.
sub ec_scan_markers
{
	my ($node, $categories, $markers) = @_;
	return ec_scan_files([ ec_category_files($node, $categories) ], $markers);
}

# ec_scan_tree($dir, \@needles, $path_re)
# ec_scan_files over every regular file below $dir (symbolic links are not
# followed, nor read), or only those whose absolute path matches $path_re.
sub ec_scan_tree
{
	my ($dir, $needles, $path_re) = @_;
	my @paths;
	find(
		{
			no_chdir => 1,
			wanted => sub {
				return unless -f $File::Find::name && !-l $File::Find::name;
				return if defined $path_re && $File::Find::name !~ $path_re;
				push @paths, $File::Find::name;
			}
		},
		$dir);
	return ec_scan_files([ sort @paths ], $needles);
}

# The regular files below $dir (or those matching $path_re) whose raw bytes
# hold $bytes, sorted.
sub ec_files_holding
{
	my ($dir, $bytes, $path_re) = @_;
	return @{ ec_scan_tree($dir, [$bytes], $path_re)->{holding}{$bytes} };
}

# The paths, among @$paths of a scan, that do not start with the magic or,
# with $key, do not carry that instance key id.
sub ec_not_encrypted_under
{
	my ($scan, $key, $paths) = @_;
	return grep {
		$scan->{headers}{$_} ne $EC_MAGIC
		  || (defined $key && ($scan->{keyids}{$_} // '') ne $key)
	} @$paths;
}

# (magic, key id as 16 lowercase hex digits, format version) of a file's
# header; undef for a file shorter than 32 bytes.
sub ec_read_header
{
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or return;
	my $buf = '';
	my $n = read($fh, $buf, 32);
	close $fh;
	return unless defined $n && $n == 32;
	return (substr($buf, 0, 8), unpack('H*', substr($buf, 24, 8)), unpack('v', substr($buf, 8, 2)));
}

# The format version of a file's header (1: AES-256-XTS or plaintext audit,
# 2: AES-256-GCM); undef for a file without a header.
sub ec_header_version
{
	my ($path) = @_;
	my ($magic, undef, $version) = ec_read_header($path);
	return defined $magic && $magic eq $EC_MAGIC ? $version : undef;
}

# Where logical offset $logical of a file lies on disk, given its header's
# format version (undef: a plaintext file without a header): after the
# header's 64 KiB in format v1; in format v2 each extent of 2048 units
# (8 MiB) is preceded by its 64 KiB of metadata (docs/formats.md).
sub ec_physical_position
{
	my ($version, $logical) = @_;
	return $logical unless defined $version;
	return $logical + $EC_DATA_OFFSET if $version == 1;
	return $EC_DATA_OFFSET + int($logical / $ec_extent_data) * ($EC_DATA_OFFSET + $ec_extent_data)
	  + $EC_DATA_OFFSET + $logical % $ec_extent_data;
}

# The logical size of a file of $physical bytes, given its header's format
# version: the inverse of ec_physical_position for the end of the data.
sub ec_logical_size
{
	my ($version, $physical) = @_;
	return $physical unless defined $version;
	return 0 if $physical <= $EC_DATA_OFFSET;
	return $physical - $EC_DATA_OFFSET if $version == 1;
	my $past = $physical - $EC_DATA_OFFSET;
	my $extent = int($past / ($EC_DATA_OFFSET + $ec_extent_data));
	my $within = $past % ($EC_DATA_OFFSET + $ec_extent_data);
	return $extent * $ec_extent_data + ($within > $EC_DATA_OFFSET ? $within - $EC_DATA_OFFSET : 0);
}

# Overwrites the bytes at physical offset $offset of $path with $bytes, in
# place, behind the server's back.
sub ec_overwrite
{
	my ($path, $offset, $bytes) = @_;
	open(my $fh, '+<:raw', $path) or die "cannot open $path: $!";
	seek($fh, $offset, 0) or die "cannot seek in $path: $!";
	print $fh $bytes or die "cannot write $path: $!";
	close($fh) or die "cannot close $path: $!";
	return;
}

# The extension's version: the top entry of debian/changelog, the one place
# it is set (the Makefile writes it into the control file).
sub ec_extension_version
{
	my $changelog = "$FindBin::RealBin/../../debian/changelog";
	open(my $fh, '<', $changelog) or die "cannot read $changelog: $!";
	my $first = <$fh>;
	close $fh;
	my ($version) = $first =~ /^\S+ \(([^)]+)\)/ or die "no version in $changelog";
	return $version;
}

# The instance key id reported by ephemeral_crypt_status() (the extension must
# have been created in $db).
sub ec_key_id
{
	my ($node, $db) = @_;
	return $node->safe_psql($db || 'postgres',
		'SELECT instance_key_id FROM ephemeral_crypt_status()');
}

# ephemeral_crypt_encryption_status() as { category => { column => value } }.
sub ec_encryption_status
{
	my ($node, $db) = @_;
	my @cols = qw(category enabled degradation cipher files_encrypted files_open
	  bytes_encrypted bytes_decrypted failures plaintext_fallbacks integrity_failures);
	my $out = $node->safe_psql($db || 'postgres',
		'SELECT ' . join(', ', @cols)
		  . ' FROM ephemeral_crypt_encryption_status() ORDER BY category');
	my %status;
	for my $line (split /\n/, $out)
	{
		my @v = split /\|/, $line;
		my %row;
		@row{@cols} = @v;
		$status{ $row{category} } = \%row;
	}
	return \%status;
}

# Polls until at least one file of the categories matching $re (applied to
# the absolute path) exists and is non-empty. Returns the list of files or
# an empty list on timeout.
sub ec_wait_for_files
{
	my ($node, $categories, $re, $timeout) = @_;
	$re ||= qr/./;
	$timeout ||= $PostgreSQL::Test::Utils::timeout_default;
	my $deadline = time + $timeout;
	while (time < $deadline)
	{
		my @f = grep { $_ =~ $re && -s $_ } ec_category_files($node, $categories);
		return @f if @f;
		usleep(100_000);
	}
	return ();
}

# The path a blocked ec_block() call waits for; see ec_blocking_function_sql.
sub ec_release_path
{
	my ($node, $tag) = @_;
	return $node->basedir . "/release_$tag";
}

# Creates the file a blocked query waits for.
sub ec_release
{
	my ($node, $tag) = @_;
	my $p = ec_release_path($node, $tag);
	open(my $fh, '>', $p) or die "cannot create $p: $!";
	close $fh;
	return;
}

# SQL creating ec_block(val, trigger, path): returns val; when val = trigger
# it waits (outside MVCC, so it works in any snapshot and in parallel
# workers) until the file at path exists. Used to hold a statement still while
# its temporary files are on disk. Declared IMMUTABLE PARALLEL SAFE (a lie for
# the test's purpose) so it can appear in index expressions and run inside
# parallel workers. Gives up after 300 s so that a test never hangs.
sub ec_blocking_function_sql
{
	return <<'EOS';
CREATE OR REPLACE FUNCTION ec_block(val text, trig text, path text)
RETURNS text LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  i int := 0;
BEGIN
  IF trig IS NULL OR val = trig THEN
    WHILE pg_stat_file(path, true) IS NULL AND i < 6000 LOOP
      PERFORM pg_sleep(0.05);
      i := i + 1;
    END LOOP;
  END IF;
  RETURN val;
END
$$;
EOS
}

# Polls pg_stat_activity until a backend (or parallel worker) is sleeping in
# pg_sleep (wait_event PgSleep) while running a query that contains $needle.
sub ec_wait_for_blocked
{
	my ($node, $needle, $db) = @_;
	$needle =~ s/'/''/g;
	return $node->poll_query_until($db || 'postgres',
		qq{SELECT count(*) > 0 FROM pg_stat_activity
		   WHERE wait_event = 'PgSleep' AND query LIKE '%$needle%'
		     AND pid <> pg_backend_pid()});
}

# Lines of the server log.
sub ec_log_lines
{
	my ($node) = @_;
	return split /\n/, slurp_file($node->logfile);
}

# Log content after byte offset $offset.
sub ec_log_since
{
	my ($node, $offset) = @_;
	return slurp_file($node->logfile, $offset);
}

# Parses the startup line
#   ephemeral_crypt: ready: key K, policy version "V", digest D,
#   signed|unsigned[ (policy file)], temp_relation: S, spill: S, wal: S;
#   layer patched N slot(s) in M object(s); ...
# where each S is "not encrypted" or "encrypted with CIPHER (DEGRADATION)",
# into a hash ref with keys key, version, digest, signed (0|1), from_file
# (0|1), temp_relation, spill, wal, slots, objects; undef when the line does
# not have that shape.
sub ec_parse_ready_line
{
	my ($line) = @_;
	return undef unless defined $line;
	my @f = $line =~ m{ephemeral_crypt:\ ready:\ key\ ([0-9a-f]{16}),
		\ policy\ version\ "(.*)",\ digest\ ([0-9a-f]{64}),
		\ (signed|unsigned)((?:\ \(policy\ file\))?),
		\ temp_relation:\ ([^,]+),\ spill:\ ([^,]+),
		\ wal:\ ([^;]+);\ layer\ patched\ (\d+)\ slot\(s\)\ in\ (\d+)\ object\(s\);
		\ counters\ in\ ephemeral_crypt_encryption_status\(\)}x;
	return undef unless @f;
	return {
		key => $f[0],
		version => $f[1],
		digest => $f[2],
		signed => $f[3] eq 'signed' ? 1 : 0,
		from_file => $f[4] ne '' ? 1 : 0,
		temp_relation => $f[5],
		spill => $f[6],
		wal => $f[7],
		slots => $f[8],
		objects => $f[9],
	};
}

# The "ephemeral_crypt: ready:" lines of a text.
sub ec_ready_lines_in
{
	my ($text) = @_;
	return grep { /ephemeral_crypt: ready:/ } split /\n/, $text;
}

# The "ephemeral_crypt: ready:" lines of the server log after byte offset
# $offset (0 or undef: the whole log).
sub ec_ready_lines
{
	my ($node, $offset) = @_;
	return ec_ready_lines_in(slurp_file($node->logfile, $offset || 0));
}

# ec_the_ready_line_in($text, $name)
# Asserts (test $name) that $text holds exactly one ready line, and returns
# it parsed by ec_parse_ready_line (an empty hash ref when it lacks the
# documented shape) and the line itself.
sub ec_the_ready_line_in
{
	my ($text, $name) = @_;
	my @lines = ec_ready_lines_in($text);
	is(scalar(@lines), 1, $name);
	return (ec_parse_ready_line($lines[0]) || {}, $lines[0]);
}

# ec_the_ready_line($node, $offset, $name): the same for the server log after
# byte offset $offset (0 or undef: the whole log).
sub ec_the_ready_line
{
	my ($node, $offset, $name) = @_;
	return ec_the_ready_line_in(slurp_file($node->logfile, $offset || 0), $name);
}

# Runs the policy tool (ephemeral_crypt_policy, from PATH or pg_config
# --bindir) with the given arguments; returns (exit status, stdout, stderr).
sub ec_policy_tool
{
	my @args = @_;
	my $tool = 'ephemeral_crypt_policy';
	my $found = grep { -x "$_/$tool" } split /:/, ($ENV{PATH} // '');
	unless ($found)
	{
		my $bindir = `pg_config --bindir`;
		chomp $bindir;
		$tool = "$bindir/$tool";
	}
	my ($out, $err) = ('', '');
	IPC::Run::run([ $tool, @args ], '<', \undef, '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

# Writes $content to $path (raw bytes), replacing the file.
# A private WAL staging directory of the test's own, on tmpfs (as
# ephemeral_crypt.wal_staging_directory must be), removed at the end, so
# that what a command leaves in it can be counted.
sub ec_staging_directory
{
	my $dir = File::Temp::tempdir('ec-staging-XXXXXX', DIR => '/dev/shm', CLEANUP => 1);
	chmod 0700, $dir;
	return $dir;
}

# Starts $name from $primary's backup $backup, fed only by $restore_command
# (archiving off): in recovery, or as a standby with mode => 'standby'.
# conf => lines added to postgresql.conf (a recovery target, say).
sub ec_start_from_archive
{
	my ($name, $primary, $backup, $restore_command, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init_from_backup($primary, $backup);
	$node->append_conf('postgresql.conf',
		"archive_mode = off\nrestore_command = '$restore_command'\n" . ($opts{conf} // ''));
	($opts{mode} // 'recovery') eq 'standby' ? $node->set_standby_mode : $node->set_recovery_mode;
	$node->start;
	return $node;
}

# What is left in a staging directory: the entries' names.
sub ec_staged_files
{
	my ($dir) = @_;
	opendir(my $dh, $dir) or die "opendir $dir: $!";
	my @left = grep { !/^\.\.?$/ } readdir $dh;
	closedir $dh;
	return @left;
}

# A control plane's key pair, made in $dir by the signing tool ($dir/pub and
# $dir/sec). Returns the public key as policy_public_key takes it.
sub ec_policy_keypair
{
	my ($dir) = @_;
	my ($rc, undef, $err) = ec_policy_tool('keygen', '--public', "$dir/pub", '--secret', "$dir/sec");
	is($rc, 0, 'keygen') or diag($err);
	my $pub = slurp_file("$dir/pub");
	$pub =~ s/\s+$//;
	return $pub;
}

# Deploys $text at $path as a control plane does: signed with $dir/sec beside
# it, then renamed into place, so a reader never sees half a file. Returns
# the policy's digest.
sub ec_deploy_policy
{
	my ($dir, $path, $text, $what) = @_;
	my $next = "$path.next";
	ec_write_file($next, $text);
	my ($rc, undef, $err) = ec_policy_tool('sign', '--secret', "$dir/sec", $next);
	is($rc, 0, "the control plane signs $what") or diag($err);
	rename($next, $path) or die "cannot rename $next: $!";
	(undef, my $digest) = ec_policy_tool('digest', $path);
	chomp $digest;
	return $digest;
}

sub ec_write_file
{
	my ($path, $content) = @_;
	open(my $fh, '>:raw', $path) or die "cannot write $path: $!";
	print $fh $content;
	close($fh) or die "cannot close $path: $!";
	return;
}

# Reloads the configuration, with a policy file the server must refuse, and
# asserts ($what) that ephemeral_crypt_status() comes to count $rejected
# refused reloads. Returns the log written since the reload.
sub ec_reload_refused
{
	my ($node, $rejected, $what) = @_;
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	ok($node->poll_query_until('postgres',
		qq{SELECT policy_reloads_rejected = $rejected FROM ephemeral_crypt_status()}), $what);
	return slurp_file($node->logfile, $offset);
}

# Asserts the policy in force as SQL reports it: ephemeral_crypt_policy_version()
# is $version, and ephemeral_crypt_encryption_status() gives $states, one
# "category|enabled|degradation" line per category, in name order.
sub ec_policy_in_sql
{
	my ($node, $version, $states, $what) = @_;
	is($node->safe_psql('postgres', 'SELECT ephemeral_crypt_policy_version()'), $version,
		"$what: ephemeral_crypt_policy_version()");
	is($node->safe_psql('postgres',
		'SELECT category, enabled, degradation FROM ephemeral_crypt_encryption_status() ORDER BY category'),
		$states, "$what: encryption status per category");
	return;
}

# Starts a node that must not come up. Asserts that the start fails, that the
# log since the attempt never reports ready (neither the extension's line nor
# PostgreSQL's) and that no postmaster is left. Returns the log written by
# the attempt.
sub ec_start_refused
{
	my ($node, $what) = @_;
	my $offset = -e $node->logfile ? -s $node->logfile : 0;
	my $ok = $node->start(fail_ok => 1);
	ok(!$ok, "$what: the server refuses to start");
	my $log = slurp_file($node->logfile, $offset);
	unlike($log, qr/database system is ready to accept connections/, "$what: never accepted connections");
	unlike($log, qr/ephemeral_crypt: ready:/, "$what: no ready line");
	ok(!-e $node->data_dir . '/postmaster.pid', "$what: no postmaster left running");
	return $log;
}

# The four pgbench sums and the history count of a node, as a hash ref:
# { accounts, tellers, branches, history, count }.
sub ec_pgbench_sums
{
	my ($node, $db) = @_;
	my $r = $node->safe_psql(
		$db || 'postgres', q{SELECT (SELECT sum(abalance) FROM pgbench_accounts),
		                     (SELECT sum(tbalance) FROM pgbench_tellers),
		                     (SELECT sum(bbalance) FROM pgbench_branches),
		                     (SELECT coalesce(sum(delta), 0) FROM pgbench_history),
		                     (SELECT count(*) FROM pgbench_history)});
	my %s;
	@s{qw(accounts tellers branches history count)} = split /\|/, $r;
	return \%s;
}

# Asserts the TPC-B invariant on a node (the money in accounts, tellers and
# branches each equals sum(delta) of pgbench_history); returns the sums.
sub ec_check_pgbench_invariant
{
	my ($node, $when, $db) = @_;
	my $s = ec_pgbench_sums($node, $db);
	note "$when: accounts $s->{accounts}, tellers $s->{tellers}, branches $s->{branches}, "
	  . "history $s->{history} over $s->{count} rows";
	is($s->{accounts}, $s->{history}, "$when: sum(abalance) = sum(delta) of pgbench_history ($s->{history})");
	is($s->{tellers}, $s->{history}, "$when: sum(tbalance) = sum(delta)");
	is($s->{branches}, $s->{history}, "$when: sum(bbalance) = sum(delta)");
	return $s;
}

# "count|md5" of a table's rows rendered as text, ordered by $order (an
# expression over the row alias x; default: the row's text): a cheap content
# fingerprint to compare across nodes.
sub ec_digest
{
	my ($node, $table, $order, $db) = @_;
	$order ||= 'x::text';
	return $node->safe_psql($db || 'postgres',
		"SELECT count(*) || '|' || coalesce(md5(string_agg(x::text, ',' ORDER BY $order)), '-') "
		  . "FROM $table x");
}

# pg_controldata of a node's data directory as { field => value }.
sub ec_controldata
{
	my ($node) = @_;
	my ($out, $err) = ('', '');
	# The node's own major's pg_controldata: another major's misreads pg_control.
	IPC::Run::run([ $node->installed_command('pg_controldata'), '-D', $node->data_dir ], '>', \$out, '2>', \$err)
	  or die "pg_controldata failed: $err";
	my %cd;
	for my $line (split /\n/, $out)
	{
		$cd{$1} = $2 if $line =~ /^([^:]+):\s*(.*)$/;
	}
	return \%cd;
}

# What a cleanly stopped WAL-encrypted node leaves readable: its checkpoint's
# segment, read by the stock pg_waldump from the checkpoint on. Returns a hash:
# segment (path), magic (its first 8 bytes), checkpoint (LSN), out and err
# (pg_waldump's), records (the number of records it printed).
sub ec_sealed_segment
{
	my ($node) = @_;
	my $cd = ec_controldata($node);
	my %sealed = (checkpoint => $cd->{'Latest checkpoint location'});
	$sealed{segment} = $node->data_dir . "/pg_wal/" . $cd->{q{Latest checkpoint's REDO WAL file}};
	($sealed{magic}) = ec_read_header($sealed{segment});
	my ($out, $err) = ('', '');
	IPC::Run::run([ $node->installed_command('pg_waldump'), '-s', $sealed{checkpoint}, $sealed{segment} ], '>', \$out, '2>', \$err);
	$sealed{out} = $out;
	$sealed{err} = $err;
	$sealed{records} = () = $out =~ /^rmgr: /mg;
	return \%sealed;
}

# An LSN ("X/Y") as an integer, for comparisons.
sub ec_lsn
{
	my ($lsn) = @_;
	die "not an LSN: " . ($lsn // 'undef') unless defined $lsn && $lsn =~ m{^([0-9A-Fa-f]+)/([0-9A-Fa-f]+)$};
	return hex($1) * (2**32) + hex($2);
}

# The process ids whose parent is $ppid (from /proc).
sub _children_of
{
	my ($ppid) = @_;
	my @kids;
	opendir(my $dh, '/proc') or return ();
	for my $pid (grep { /^\d+$/ } readdir $dh)
	{
		open(my $fh, '<', "/proc/$pid/stat") or next;
		my $stat = <$fh>;
		close $fh;
		next unless defined $stat && $stat =~ /\)\s+(\S)\s+(\d+)/;
		push @kids, $pid if $2 == $ppid;
	}
	closedir $dh;
	return @kids;
}

# 2 while $pid runs, 1 while it is a zombie not yet reaped, 0 once gone.
# PostgreSQL's lock-file check (kill(pid, 0)) still sees a zombie.
sub _alive
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return 0;
	my $stat = <$fh>;
	close $fh;
	return 0 unless defined $stat && $stat =~ /\)\s+(\S)/;
	return ($1 eq 'Z' || $1 eq 'X') ? 1 : 2;
}

# Ends an instance the way a lost host would: freezes the postmaster
# (SIGSTOP, so that it forks nothing more), collects its children, sends
# SIGKILL to the postmaster ($node->kill9) and to every child, then to any
# process still naming the data directory on its command line. Waits until
# all of them are gone (their shared memory detached), so that a later start
# is not refused because of a live process (or a zombie: PostgreSQL's
# lock-file check sees those too). Returns the list of pids killed.
sub ec_kill9_all
{
	my ($node) = @_;
	my $pidfile = $node->data_dir . '/postmaster.pid';
	open(my $fh, '<', $pidfile) or die "no $pidfile: $!";
	my $pm = <$fh>;
	close $fh;
	chomp $pm;
	die "bad postmaster.pid" unless $pm =~ /^\d+$/;
	kill('STOP', $pm);
	my @kids = _children_of($pm);
	kill('STOP', @kids) if @kids;
	$node->kill9;
	kill('KILL', $pm);
	kill('KILL', @kids) if @kids;
	my @killed = ($pm, @kids);
	my $datadir = $node->data_dir;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'pgrep', '-f', '--', $datadir ], '>', \$out, '2>', \$err);
	for my $pid (grep { /^\d+$/ && $_ != $$ } split /\s+/, $out)
	{
		kill('KILL', $pid);
		push @killed, $pid;
	}
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline && grep { _alive($_) } @killed)
	{
		usleep(50_000);
	}
	my @left = grep { _alive($_) == 2 } @killed;
	die "processes still alive after SIGKILL: @left" if @left;
	my @zombies = grep { _alive($_) == 1 } @killed;
	note "killed processes not yet reaped: @zombies" if @zombies;
	return @killed;
}

# WAL segment files (24 hex digits, no .partial) of a directory, sorted.
sub ec_wal_segments
{
	my ($dir) = @_;
	return sort grep { -f $_ && m{/[0-9A-F]{24}$} } glob("$dir/*");
}

# The WAL page magic of the server under test (XLOG_PAGE_MAGIC, which each
# major changes), read from its own headers.
sub ec_wal_page_magic
{
	my $include = `pg_config --includedir-server`;
	chomp $include;
	my $header = slurp_file("$include/access/xlog_internal.h");
	$header =~ /#define\s+XLOG_PAGE_MAGIC\s+(0x[0-9A-Fa-f]+)/
	  or die "no XLOG_PAGE_MAGIC in $include/access/xlog_internal.h";
	return hex $1;
}

# True when a file starts with a WAL page header of the server under test
# and not with an ephemeral_crypt header.
sub ec_is_plain_wal
{
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or return 0;
	my $buf = '';
	my $n = read($fh, $buf, 8);
	close $fh;
	return 0 unless defined $n && $n == 8;
	return 0 if $buf eq $EC_MAGIC;
	return unpack('v', substr($buf, 0, 2)) == ec_wal_page_magic();
}

# Waits (up to $timeout seconds, default the suite's) until the log after
# byte $offset matches $re; returns true when it did. Unlike
# $node->wait_for_log, it returns false on timeout instead of dying.
sub ec_wait_for_log_since
{
	my ($node, $re, $offset, $timeout) = @_;
	$timeout ||= $PostgreSQL::Test::Utils::timeout_default;
	my $deadline = time + $timeout;
	while (time < $deadline)
	{
		return 1 if slurp_file($node->logfile, $offset) =~ $re;
		usleep(100_000);
	}
	return 0;
}

1;
