
# Patroni over etcd with every category encrypted, WAL included (issue 22,
# item 5).
#
# One etcd member and three Patroni nodes on loopback, synchronous_mode on,
# archiving through an unchanged archive_command (cp into a scratch
# archive; the layer stages each segment in plaintext for it). The leader
# bootstraps, the two replicas are made by pg_basebackup. Then:
#
#  - a switchover through the REST API: the old primary must come back as a
#    streaming replica without a new base backup (its sealed last segment is
#    readable by pg_waldump, so Patroni sees that the new primary has all it
#    wrote);
#  - a game-day failover: SIGKILL of the leader's postmaster and all its
#    children while a client commits one row per transaction; a replica
#    takes over with every synchronously acknowledged row; the killed node
#    is refused as an unclean end (never PostgreSQL's PANIC), and comes back
#    as a streaming replica after one POST /reinitialize (Patroni does not
#    re-provision a node whose pg_control says "in production" by itself,
#    whatever remove_data_directory_on_* says);
#  - at the end every node has every acknowledged row, no node's pg_wal holds
#    a row in plaintext, and the archive has every segment.
#
# The figures (takeover and rejoin times, rewinds, base backups) are printed
# with diag.

use strict;
use warnings;

use File::Path qw(make_path);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EphemeralCrypt::TestLib;
use EphemeralCrypt::Fleet;

# scripts/install-deps.sh and the build roots install them: their absence is
# a broken set-up, never a reason to skip.
die 'patroni, patronictl or etcd is not installed (scripts/install-deps.sh installs them)'
  unless fleet_have(qw(patroni patronictl etcd));

my $segsize = 1024 * 1024;
my $scratch = PostgreSQL::Test::Utils::tempdir();
my $archive = "$scratch/archive";
make_path($archive);
my $etcd = fleet_start_etcd("$scratch/etcd");
pass("etcd answers on $etcd->{client_url}");

# The settings every node shares (Patroni keeps them in the DCS). The archive
# command is the operator's, unchanged: %p names pg_wal/<segment>.
my %dcs_parameters = (
	wal_level => 'replica',
	hot_standby => 'on',
	wal_log_hints => 'on',
	max_wal_senders => '10',
	max_replication_slots => '10',
	max_worker_processes => '8',
	max_connections => '40',
	wal_keep_size => '64MB',
	archive_mode => 'on',
	archive_command => "test ! -f $archive/%f && cp %p $archive/%f.tmp && mv $archive/%f.tmp $archive/%f",
	archive_timeout => '0',
	checkpoint_timeout => '30s',
	synchronous_commit => 'on',
);
# The Patroni settings of docs/backups.md: a crashed primary
# is not restarted in place (primary_start_timeout: 0, a replica takes over
# at once); a node whose WAL cannot be read (the unclean end refuses a start,
# single-user included) needs a reinit (below).
my $dcs = <<'EOD';
    ttl: 20
    loop_wait: 2
    retry_timeout: 5
    maximum_lag_on_failover: 16777216
    synchronous_mode: true
    primary_start_timeout: 0
EOD
my $dcs_postgresql = "      use_pg_rewind: true\n      use_slots: true\n";

my %local = (
	shared_preload_libraries => 'ephemeral_crypt',
	'ephemeral_crypt.encrypt_temp_relations' => 'on',
	'ephemeral_crypt.encrypt_spill_files' => 'on',
	'ephemeral_crypt.encrypt_wal' => 'on',
	'ephemeral_crypt.policy_version' => 'tap-test',
	work_mem => '64kB',
	temp_buffers => '800kB',
);
my $postgresql_extra = <<'EOP';
  use_pg_rewind: true
  use_slots: true
  remove_data_directory_on_rewind_failure: true
  remove_data_directory_on_diverged_timelines: true
  basebackup:
  - checkpoint: fast
EOP

my @nodes = map {
	fleet_patroni_node(
		"pg$_",
		etcd => $etcd,
		parameters => \%dcs_parameters,
		local_parameters => \%local,
		dcs => $dcs,
		dcs_postgresql => $dcs_postgresql,
		postgresql_extra => $postgresql_extra,
		initdb => [ "wal-segsize: '1'", 'data-checksums', 'encoding: UTF8' ])
} 1 .. 3;
my %by_name = map { $_->name => $_ } @nodes;

sub patroni_log
{
	my ($node) = @_;
	my $dir = $node->basedir . '/patroni_log';
	my $text = '';
	for my $f (sort glob("$dir/patroni.log*"))
	{
		$text .= slurp_file($f);
	}
	$text .= slurp_file($node->{patroni}{log}) if -e $node->{patroni}{log};
	return $text;
}

# The sizes of a node's Patroni log files, to read what comes after.
sub patroni_log_mark
{
	my ($node) = @_;
	my %m;
	for my $f (glob($node->basedir . '/patroni_log/patroni.log*'), $node->{patroni}{log})
	{
		$m{$f} = -s $f // 0;
	}
	return \%m;
}

# What a node's Patroni logged (its log file, then its stdout, which holds
# the server's messages before the logging collector starts) since a mark.
sub patroni_log_since
{
	my ($node, $mark) = @_;
	my $text = '';
	for my $f (sort(glob($node->basedir . '/patroni_log/patroni.log*')), $node->{patroni}{log})
	{
		next unless -e $f;
		$text .= slurp_file($f, $mark->{$f} // 0);
	}
	return $text;
}

sub dump_logs
{
	for my $n (@nodes)
	{
		my $pl = patroni_log($n);
		diag("---- Patroni log of " . $n->name . " (last 60 lines) ----\n"
			  . join("\n", (split /\n/, $pl)[ -60 .. -1 ]))
		  if $pl ne '';
		my $log = -e $n->logfile ? slurp_file($n->logfile) : '';
		diag("---- server log of " . $n->name . " (last 30 lines) ----\n"
			  . join("\n", grep { defined } (split /\n/, $log)[ -30 .. -1 ]))
		  if $log ne '';
	}
}

# The running leader's name, seen by any node, or undef.
sub leader_name
{
	for my $n (@nodes)
	{
		next unless $n->{patroni}{pid};
		my $l = fleet_patroni_leader($n);
		return $l if defined $l;
	}
	return undef;
}

# What a node's servers logged: the messages before the logging collector
# starts (the extension's start-up lines, a refused start) go to the
# postmaster's stderr, which is Patroni's; the rest to the log file.
sub server_text
{
	my ($node) = @_;
	my $t = -e $node->{patroni}{log} ? slurp_file($node->{patroni}{log}) : '';
	$t .= slurp_file($node->logfile) if -e $node->logfile;
	return $t;
}

# The member names Patroni's /cluster lists with role $role.
sub members_with_role
{
	my ($node, $role) = @_;
	my (undef, $c) = fleet_patroni_get($node, '/cluster');
	return () unless $c && $c->{members};
	return map { $_->{name} } grep { ($_->{role} // '') eq $role } @{ $c->{members} };
}

sub query
{
	my ($node, $sql) = @_;
	my ($stdout, $stderr);
	my $rc = $node->psql('postgres', $sql, stdout => \$stdout, stderr => \$stderr, timeout => 30);
	return $rc == 0 ? $stdout : undef;
}

# Names of the replicas streaming from $leader (pg_stat_replication), with
# their sync_state: { name => sync_state }.
sub streaming_from
{
	my ($leader) = @_;
	my $out = query($leader,
		q{SELECT application_name || '=' || sync_state FROM pg_stat_replication WHERE state = 'streaming'});
	return {} unless defined $out;
	return { map { split /=/, $_, 2 } grep { $_ ne '' } split /\n/, $out };
}

# The inode of a file in a node's data directory: a data directory made
# again by a base backup (or removed and cloned) has new inodes.
sub inode_of
{
	my ($node, $rel) = @_;
	my @st = stat($node->data_dir . "/$rel");
	return @st ? $st[1] : 0;
}

# ---- bootstrap --------------------------------------------------------------
my $t_boot = time;
fleet_start_patroni($nodes[0]);
my $first = fleet_wait_until(120, sub { die 'Patroni on pg1 exited' unless fleet_pid_alive($nodes[0]{patroni}{pid}); leader_name() });
is($first, 'pg1', 'pg1 bootstraps and becomes the leader');
BAIL_OUT_with_logs('no leader after bootstrap') unless defined $first;
my $leader = $by_name{$first};
$leader->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
my $key1 = ec_key_id($leader);
my ($ready1) = ec_the_ready_line_in(server_text($leader), 'the leader logged one ready line');
my $first_segno = fleet_segno($leader->safe_psql('postgres', 'SELECT pg_walfile_name(pg_current_wal_lsn())'), $segsize);
is($ready1->{wal}, 'encrypted with AES-256-XTS (fail_closed)', 'the leader encrypts its WAL');
is($leader->safe_psql('postgres', 'SHOW archive_command'), $dcs_parameters{archive_command},
	'the leader archives through the unchanged archive_command');
is($leader->safe_psql('postgres', q{SELECT current_setting('wal_segment_size')}), '1MB', 'wal_segment_size is 1MB');

fleet_start_patroni($_) for @nodes[ 1, 2 ];
my $replicas_up = fleet_wait_until(
	180,
	sub {
		my $s = streaming_from($leader);
		return (keys %$s == 2 && (grep { $_ eq 'sync' } values %$s) && members_with_role($leader, 'sync_standby'))
		  ? $s : undef;
	});
ok($replicas_up, 'two replicas stream from the leader, one of them synchronous')
  or BAIL_OUT_with_logs('replicas did not come up');
diag(sprintf('bootstrap: three nodes up in %.1f s', time - $t_boot));
for my $r (@nodes[ 1, 2 ])
{
	like(patroni_log($r), qr/(replica has been created using basebackup|bootstrapped from leader)/i,
		$r->name . ' was made by a base backup');
	like(server_text($r), qr/ephemeral_crypt: ready: key [0-9a-f]{16},.* wal: encrypted with AES-256-XTS/,
		$r->name . ' encrypts its WAL');
}

# ---- rows, each committed with the synchronous standby's acknowledgement ----
my $marker = ec_marker('patroni');
$leader->safe_psql('postgres', qq{
	CREATE TABLE acked (id int PRIMARY KEY, s text);
	INSERT INTO acked SELECT g, '${marker}_' || g FROM generate_series(1, 1000) g;});
my @acked = (1 .. 1000);

# ---- switchover -------------------------------------------------------------
my $old = $leader;
my $old_name = $old->name;
my %inode_before = (pg_version => inode_of($old, 'PG_VERSION'), pg_control => inode_of($old, 'global/pg_control'));
my $sysid_before = $old->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()');
my $plog_mark = patroni_log_mark($old);
my $t_sw = time;
my ($status, $content) = fleet_patroni_post($old, '/switchover', { leader => $old_name });
is($status, 200, "POST /switchover accepted ($content)");
my $new_name = fleet_wait_until(120, sub { my $l = leader_name(); defined $l && $l ne $old_name ? $l : undef });
ok(defined $new_name, 'a new leader runs after the switchover: ' . ($new_name // 'none'));
BAIL_OUT_with_logs('no new leader after the switchover') unless defined $new_name;
my $new = $by_name{$new_name};
my $rejoined = fleet_wait_until(240, sub { streaming_from($new)->{$old_name} });
my $t_sw_rejoin = time - $t_sw;
ok($rejoined, "the old primary $old_name streams from $new_name again");
my $sw_log = patroni_log_since($old, $plog_mark);
my $sw_basebackup =
  (inode_of($old, 'PG_VERSION') != $inode_before{pg_version}
	  || $sw_log =~ /(removing data directory|reinitializ|replica has been created using basebackup|bootstrapped from leader)/i)
  ? 1 : 0;
my $sw_rewind = $sw_log =~ /running pg_rewind/ ? 1 : 0;
my $sw_secs = $t_sw_rejoin;
diag(sprintf('switchover: %s -> %s; old primary streaming again after %.1f s; pg_rewind run: %s; new base backup: %s',
	$old_name, $new_name // '?', $t_sw_rejoin, $sw_rewind ? 'yes' : 'no', $sw_basebackup ? 'yes' : 'no'));
diag("switchover, Patroni's lines on $old_name about rewind/waldump:\n"
	  . join("\n", grep { /rewind|waldump|checkpoint|reinit|basebackup|remov/i } split /\n/, $sw_log));
is($sw_basebackup, 0, "the old primary $old_name rejoined without a new base backup (same data directory files)");
is($old->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()'), $sysid_before,
	'same system identifier');
is($old->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', "$old_name is a replica");
$leader = $new;

# Patroni promotes only a replica its /sync key names, and after a switchover
# the new leader takes a few seconds to name one again. A kill before that
# has, by Patroni's design, no candidate (with Patroni 3.0.2 the replicas log
# "not the healthiest node" for ever), so the drill starts once it has.
my $sync_again = fleet_wait_until(
	120,
	sub {
		my $s = streaming_from($leader);
		return ((grep { $_ eq 'sync' } values %$s) && members_with_role($leader, 'sync_standby')) ? 1 : undef;
	});
ok($sync_again, $leader->name . ' has a synchronous standby again before the failover')
  or BAIL_OUT_with_logs('no synchronous standby after the switchover');

# ---- game-day failover: SIGKILL of the leader and all its children ----------
is(leader_name(), $leader->name, 'Patroni names ' . $leader->name . ' the leader before the kill');
my $killed = $leader;
my $killed_name = $killed->name;
$plog_mark = patroni_log_mark($killed);
my %other_mark = map { $_->name => patroni_log_mark($_) } grep { $_ != $killed } @nodes;
%inode_before = (pg_version => inode_of($killed, 'PG_VERSION'));
my $sql_file = "$scratch/inserts.sql";
open(my $fh, '>', $sql_file) or die;
print $fh "INSERT INTO acked VALUES ($_, '${marker}_$_') RETURNING id;\n" for 1001 .. 60000;
close $fh;
my ($w_out, $w_err) = ('', '');
my $writer = IPC::Run::start(
	[ 'psql', '-X', '-At', '-h', $killed->host, '-p', $killed->port, '-d', 'postgres',
	  '-v', 'ON_ERROR_STOP=1', '-f', $sql_file ],
	'<', \undef, '>', \$w_out, '2>', \$w_err, IPC::Run::timeout(300));
ok(fleet_wait_until(60, sub { (query($killed, 'SELECT count(*) FROM acked') // 0) >= 1500 }),
	'the writer commits rows on the leader');
my $t_kill = time;
my @killed_pids = ec_kill9_all($killed);
note "killed @killed_pids";
eval { $writer->finish; };
my @acked_now = grep { /^\d+$/ } split /\n/, $w_out;
push @acked, @acked_now;
diag(sprintf('failover: SIGKILL of %s (%d processes) while writing; rows acknowledged before the kill: %d (ids 1001..%d)',
	$killed_name, scalar(@killed_pids), scalar(@acked_now), 1000 + scalar(@acked_now)));
cmp_ok(scalar(@acked_now), '>', 0, 'the writer got acknowledgements before the kill');
is_deeply([ @acked_now ], [ 1001 .. 1000 + @acked_now ], 'the acknowledged ids are consecutive');

my $took_over = fleet_wait_until(120, sub { my $l = leader_name(); defined $l && $l ne $killed_name ? $l : undef });
my $t_takeover = time - $t_kill;
ok(defined $took_over, 'a replica takes over: ' . ($took_over // 'none'));
BAIL_OUT_with_logs('no replica took over') unless defined $took_over;
$leader = $by_name{$took_over};
my $max_acked = $acked[-1];
is($leader->safe_psql('postgres', "SELECT count(*) FROM acked WHERE id <= $max_acked"),
	scalar(@acked), "the new leader $took_over has every acknowledged row (" . scalar(@acked) . ')');
my $found_after_failover = $leader->safe_psql('postgres', 'SELECT count(*) FROM acked');
diag(sprintf('failover: %s took over %.1f s after the kill; rows acknowledged %d, found on the new leader %d',
	$took_over // '?', $t_takeover, scalar(@acked), $found_after_failover));

# The other replica: an asynchronous one may have received WAL past the new
# leader's switch point, and then needs pg_rewind, which cannot read its
# encrypted WAL; remove_data_directory_on_rewind_failure re-clones it.
for my $n (grep { $_ != $killed && $_ != $leader } @nodes)
{
	my $ok = fleet_wait_until(120, sub { streaming_from($leader)->{ $n->name } });
	my $t_other = time - $t_kill;
	my $l = patroni_log_since($n, $other_mark{ $n->name });
	my ($rewind_err) = $l =~ /(pg_rewind: error: [^\n]*)/;
	diag(sprintf('failover: the other replica %s streams from %s %.1f s after the kill; pg_rewind run: %s%s; re-cloned by base backup: %s',
		$n->name, $took_over, $t_other, ($l =~ /running pg_rewind/ ? 'yes' : 'no'),
		($rewind_err ? " ($rewind_err)" : ''),
		($l =~ /replica has been created using basebackup|bootstrapped from leader/ ? 'yes' : 'no')));
	ok($ok, 'the other replica ' . $n->name . ' streams from the new leader');
}

# The killed node's WAL is refused (an unclean end), never PANICs, and
# stays so: Patroni (its source: a node whose pg_control says "in
# production" reports no local timeline, so neither
# remove_data_directory_on_* setting is reached) does not re-provision it by
# itself. The operator's way out, documented in docs/backups.md, is one call:
# reinitialize the member from the leader (patronictl reinit, or the REST
# API below).
my $refused = fleet_wait_until(120, sub {
	my $text = server_text($killed) . patroni_log_since($killed, $plog_mark);
	$text =~ /the local WAL belongs to a previous instance/ ? 1 : undef });
ok($refused, "the killed node $killed_name is refused as an unclean end");
my $fo_log = patroni_log_since($killed, $plog_mark);
my $killed_server_log = server_text($killed);
unlike($killed_server_log, qr/PANIC/, 'the killed node never reaches PostgreSQL\'s PANIC');
diag("failover, Patroni's lines on $killed_name before the reinit:\n"
	  . join("\n", grep { /crash recovery|single|rewind|reinit|basebackup|remov|refus|FATAL|code=/i } split /\n/, $fo_log));
my $t_reinit = time;
my ($reinit_status, $reinit_content) = fleet_patroni_post($killed, '/reinitialize', { force => JSON::PP::true() });
is($reinit_status, 200, "POST /reinitialize to $killed_name is accepted ($reinit_content)");
my $back = fleet_wait_until(180, sub { streaming_from($leader)->{$killed_name} });
my $t_back = time - $t_kill;
ok($back, "the killed node $killed_name, reinitialized, comes back as a streaming replica");
my $fo_basebackup =
  (inode_of($killed, 'PG_VERSION') != $inode_before{pg_version}
	  || patroni_log_since($killed, $plog_mark) =~ /(removing data directory|replica has been created using basebackup|bootstrapped from leader)/i)
  ? 1 : 0;
diag($back
	? sprintf('failover: the killed node %s streams again %.1f s after the kill (%.1f s after the reinit); new base backup: %s',
		$killed_name, $t_back, time - $t_reinit, $fo_basebackup ? 'yes' : 'no')
	: sprintf('failover: the killed node %s did NOT come back within %.0f s after the reinit', $killed_name, time - $t_reinit));

# ---- the end: every node has every row, no plaintext WAL, full archive -----
$leader->safe_psql('postgres',
	"INSERT INTO acked SELECT g, '${marker}_' || g FROM generate_series(100001, 101000) g");
push @acked, 100001 .. 101000;
my $end_lsn = $leader->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
my $last_seg = $leader->safe_psql('postgres', "SELECT pg_walfile_name('$end_lsn')");
$leader->safe_psql('postgres', 'SELECT pg_switch_wal()');
ok($leader->poll_query_until('postgres', "SELECT last_archived_wal >= '$last_seg' FROM pg_stat_archiver"),
	"the leader archived up to $last_seg");
my $expected = $leader->safe_psql('postgres',
	'SELECT count(*) FROM acked WHERE id IN (' . join(',', @acked) . ')');
is($expected, scalar(@acked), 'the leader has every acknowledged row');
my $digest = ec_digest($leader, 'acked', 'x.id');
for my $n (@nodes)
{
	next if $n == $leader;
	my $caught_up = fleet_wait_until(60, sub {
		my $r = query($n, "SELECT pg_last_wal_replay_lsn() >= '$end_lsn'");
		defined $r && $r eq 't' });
	ok($caught_up, $n->name . ' replayed up to the end');
	is($caught_up ? ec_digest($n, 'acked', 'x.id') : 'not running', $digest,
		$n->name . ' has exactly the leader\'s rows (' . $digest . ')');
}
diag('end: rows acknowledged ' . scalar(@acked) . '; found per node: '
	  . join(', ', map { $_->name . ' ' . (query($_, 'SELECT count(*) FROM acked WHERE id IN (' . join(',', @acked) . ')') // 'not running') } @nodes));

for my $n (@nodes)
{
	my $scan = ec_scan_tree($n->data_dir . '/pg_wal', [$marker], qr{/[0-9A-F]{24}(\.partial)?$});
	is_deeply($scan->{hits}, [], $n->name . ': no row in plaintext in pg_wal (' . scalar(@{ $scan->{files} }) . ' segments)');
	my @plain = grep { $scan->{sizes}{$_} > 0 && $scan->{headers}{$_} ne $EC_MAGIC } @{ $scan->{files} };
	is_deeply(\@plain, [], $n->name . ': every pg_wal segment carries the extension\'s header');
}

my @archived = map { m{/([^/]+)$} } ec_wal_segments($archive);
my @history = map { m{/([^/]+)$} } glob("$archive/*.history");
my $last_no = fleet_segno($last_seg, $segsize);
# Segments completed by initdb, before the first start with archive_mode on,
# are never marked .ready (PostgreSQL's own behaviour): the archive starts at
# the segment the first leader was writing when it came up.
my @archived_nos = sort { $a <=> $b } map { fleet_segno($_, $segsize) } @archived;
cmp_ok($archived_nos[0] // 1e9, '<=', $first_segno, "the archive starts at or before segment $first_segno, the one the bootstrap leader was writing");
my @missing = fleet_segments_missing(\@archived, $archived_nos[0] // 0, $last_no, $segsize);
is_deeply(\@missing, [], "the archive has every segment from its first to $last_seg");
my @not_plain = grep { !ec_is_plain_wal("$archive/$_") } @archived;
is_deeply(\@not_plain, [], 'every archived segment is plaintext WAL');
cmp_ok(scalar(@history), '>=', 2, 'the archive has the timeline history files (' . join(' ', @history) . ')');
ok(scalar(ec_files_holding($archive, $marker)) > 0, 'the archive holds the rows (plaintext, by design)');
diag(sprintf('archive: %d segments, %d history files, up to %s', scalar(@archived), scalar(@history), $last_seg));

dump_logs() unless Test::More->builder->is_passing;

# Stop Patroni on every node (it stops its PostgreSQL), then etcd.
for my $n (@nodes)
{
	ok(fleet_stop_pid($n->{patroni}{pid}, 'TERM', 60), 'Patroni on ' . $n->name . ' stopped');
	$n->{patroni}{pid} = undef;
}
fleet_stop_pid($etcd->{pid}, 'TERM', 20);

done_testing();

sub BAIL_OUT_with_logs
{
	my ($why) = @_;
	dump_logs();
	fleet_stop_all();
	BAIL_OUT($why);
}
