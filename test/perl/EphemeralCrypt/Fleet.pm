
# Helpers for the fleet integration tests (test/t/02*.pl): etcd, Patroni and
# pgBackRest started by the test itself, on loopback (127.0.0.1) only, each in
# a scratch directory, stopped by pid, every wait bounded in time.
#
# Nothing here is a mock: the programs are Debian's (etcd-server, patroni,
# pgbackrest, barman-cli), found in PATH.

package EphemeralCrypt::Fleet;

use strict;
use warnings;

use Exporter 'import';
use File::Path qw(make_path);
use HTTP::Tiny;
use IPC::Run;
use POSIX qw(WNOHANG);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(
  fleet_have
  fleet_free_port
  fleet_spawn
  fleet_stop_pid
  fleet_pid_alive
  fleet_wait_until
  fleet_start_etcd
  fleet_pg_bindir
  fleet_pg_major
  fleet_patroni_node
  fleet_start_patroni
  fleet_patroni_get
  fleet_patroni_post
  fleet_patroni_leader
  fleet_postmaster_pid
  fleet_segno
  fleet_segments_missing
  fleet_run
  fleet_stop_all
);

# Every process this module started, pid => description, for fleet_stop_all.
my %started;

# True when every program named is in PATH.
sub fleet_have
{
	my @progs = @_;
	for my $p (@progs)
	{
		return 0 unless grep { -x "$_/$p" } split /:/, ($ENV{PATH} // '');
	}
	return 1;
}

# A free TCP port on 127.0.0.1 (PostgreSQL's own allocator, which also
# reserves it against other TAP tests running at the same time).
sub fleet_free_port
{
	return PostgreSQL::Test::Cluster::get_free_port();
}

# The bin directory and major of the server under test (pg_config in PATH).
sub fleet_pg_bindir
{
	my $b = `pg_config --bindir`;
	chomp $b;
	return $b;
}

sub fleet_pg_major
{
	my $v = `pg_config --version`;
	$v =~ /PostgreSQL (\d+)/ or die "cannot parse pg_config --version: $v";
	return $1;
}

# Runs a command to completion, bounded by $timeout seconds (default 180);
# returns (exit code, stdout, stderr). Exit code 124 on timeout.
sub fleet_run
{
	my ($cmd, %opts) = @_;
	my ($out, $err) = ('', '');
	my $t = IPC::Run::timeout($opts{timeout} // 180);
	my $rc;
	eval {
		# init must follow the command itself.
		IPC::Run::run($cmd,
			$opts{env} ? (init => sub { $ENV{$_} = $opts{env}{$_} for keys %{ $opts{env} } }) : (),
			'<', \($opts{stdin} // ''), '>', \$out, '2>', \$err, $t);
		$rc = $? >> 8;
	};
	if ($@)
	{
		$rc = $@ =~ /timeout/i ? 124 : 255;
		$err .= "\n[fleet_run: $@]";
	}
	return ($rc, $out, $err);
}

# Starts a program in the background (its own process group), stdout and
# stderr appended to $log. Returns its pid.
sub fleet_spawn
{
	my ($what, $log, @cmd) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		POSIX::setsid();
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>>', $log) or POSIX::_exit(127);
		open(STDERR, '>&', \*STDOUT) or POSIX::_exit(127);
		exec(@cmd) or POSIX::_exit(127);
	}
	$started{$pid} = $what;
	note "started $what (pid $pid): @cmd";
	return $pid;
}

# True while $pid runs (reaping it if it is our exited child).
sub fleet_pid_alive
{
	my ($pid) = @_;
	return 0 unless $pid;
	my $r = waitpid($pid, WNOHANG);
	return 0 if $r == $pid;
	return 0 unless kill(0, $pid);
	open(my $fh, '<', "/proc/$pid/stat") or return 0;
	my $stat = <$fh>;
	close $fh;
	return 0 if defined $stat && $stat =~ /\)\s+[ZX]/;
	return 1;
}

# Stops a process we started: $signal (default TERM), then KILL after
# $grace seconds (default 30). Bounded; returns true once it is gone.
sub fleet_stop_pid
{
	my ($pid, $signal, $grace) = @_;
	return 1 unless $pid;
	$signal //= 'TERM';
	$grace //= 30;
	kill($signal, $pid);
	my $deadline = time + $grace;
	while (time < $deadline)
	{
		if (!fleet_pid_alive($pid))
		{
			delete $started{$pid};
			return 1;
		}
		usleep(100_000);
	}
	kill('KILL', $pid);
	$deadline = time + 10;
	while (time < $deadline && fleet_pid_alive($pid)) { usleep(100_000); }
	delete $started{$pid};
	return !fleet_pid_alive($pid);
}

# Stops everything still running that this module started (TERM, then KILL).
sub fleet_stop_all
{
	for my $pid (sort { $b <=> $a } keys %started)
	{
		fleet_stop_pid($pid, 'TERM', 20);
	}
	return;
}

END
{
	my $rc = $?;
	fleet_stop_all();
	$? = $rc;
}

# Polls $cond every 200 ms until it returns true or $timeout seconds pass;
# returns its last value.
sub fleet_wait_until
{
	my ($timeout, $cond) = @_;
	my $deadline = time + $timeout;
	my $v;
	while (1)
	{
		$v = eval { $cond->() };
		return $v if $v;
		last if time >= $deadline;
		usleep(200_000);
	}
	return $v;
}

# fleet_start_etcd($dir): a one-member etcd on loopback, random free ports,
# data in $dir. Returns { pid, client_url, log }. Waits (60 s at most) for
# /health to answer.
sub fleet_start_etcd
{
	my ($dir) = @_;
	make_path($dir);
	my $cport = fleet_free_port();
	my $pport = fleet_free_port();
	my $client = "http://127.0.0.1:$cport";
	my $peer = "http://127.0.0.1:$pport";
	my $log = "$dir/etcd.log";
	my $pid = fleet_spawn(
		'etcd', $log, 'etcd',
		'--name' => 'ec',
		'--data-dir' => "$dir/data",
		'--listen-client-urls' => $client,
		'--advertise-client-urls' => $client,
		'--listen-peer-urls' => $peer,
		'--initial-advertise-peer-urls' => $peer,
		'--initial-cluster' => "ec=$peer",
		'--initial-cluster-state' => 'new',
		'--initial-cluster-token' => "ec-$$",
		'--heartbeat-interval' => '100',
		'--election-timeout' => '1000');
	my $http = HTTP::Tiny->new(timeout => 5);
	my $ok = fleet_wait_until(
		60,
		sub {
			die "etcd exited" unless fleet_pid_alive($pid);
			my $r = $http->get("$client/health");
			return $r->{success} && $r->{content} =~ /"health":\s*"?true/;
		});
	die "etcd did not become healthy within 60 s, see $log:\n" . slurp_file($log) unless $ok;
	return { pid => $pid, client_url => $client, host => "127.0.0.1:$cport", log => $log };
}

# The postmaster pid of a data directory (first line of postmaster.pid), or 0.
sub fleet_postmaster_pid
{
	my ($datadir) = @_;
	open(my $fh, '<', "$datadir/postmaster.pid") or return 0;
	my $pid = <$fh>;
	close $fh;
	return 0 unless defined $pid;
	chomp $pid;
	return $pid =~ /^\d+$/ ? $pid : 0;
}

# YAML scalar quoting (single quotes).
sub _q
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

# fleet_patroni_node($name, %opts): a PostgreSQL::Test::Cluster object used
# only as a handle (port, socket directory, data directory, log file, psql)
# for a server that Patroni manages, and the Patroni configuration for it.
# Options: etcd (from fleet_start_etcd), scope, parameters (hash of
# postgresql.conf settings for the DCS bootstrap section), local_parameters
# (hash, in the node's own postgresql section), dcs (extra YAML lines under
# bootstrap.dcs, indented by 4), dcs_postgresql (lines under
# bootstrap.dcs.postgresql, indented by 6), postgresql_extra (extra YAML lines under
# postgresql, indented by 2), initdb (list of YAML items).
# Returns the node; $node->{patroni} holds { config, api_port, log, ... }.
sub fleet_patroni_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	my $base = $node->basedir;
	my $api_port = fleet_free_port();
	my $user = getpwuid($<);
	my ($logdir, $logfile) = $node->logfile =~ m{^(.*)/([^/]+)$};
	my $bindir = fleet_pg_bindir();
	my $scope = $opts{scope} // 'ec';
	my %params = (
		unix_socket_directories => $node->host,
		logging_collector => 'on',
		log_directory => $logdir,
		log_filename => $logfile,
		log_rotation_age => '0',
		log_rotation_size => '0',
		log_truncate_on_rotation => 'off',
		log_line_prefix => '%m [%p] %q%a ',
		%{ $opts{local_parameters} || {} });
	my $local = join '', map { "    $_: " . _q($params{$_}) . "\n" } sort keys %params;
	my %dparams = %{ $opts{parameters} || {} };
	my $dcsparams = join '', map { "        $_: " . _q($dparams{$_}) . "\n" } sort keys %dparams;
	my $initdb = join '', map { "  - $_\n" } @{ $opts{initdb} || [] };
	my $etcd = $opts{etcd};
	my $yaml = <<"EOY";
scope: $scope
name: $name
log:
  level: INFO
  dir: $base/patroni_log
  file_num: 2
  file_size: 100000000
restapi:
  listen: 127.0.0.1:$api_port
  connect_address: 127.0.0.1:$api_port
etcd3:
  hosts: $etcd->{host}
  protocol: http
bootstrap:
  dcs:
$opts{dcs}    postgresql:
@{[ $opts{dcs_postgresql} // '' ]}      parameters:
$dcsparams  initdb:
$initdb
postgresql:
  listen: 127.0.0.1:@{[ $node->port ]}
  connect_address: 127.0.0.1:@{[ $node->port ]}
  data_dir: @{[ $node->data_dir ]}
  bin_dir: $bindir
  pgpass: $base/pgpass
  authentication:
    superuser:
      username: $user
      password: superpass
    replication:
      username: replicator
      password: replpass
    rewind:
      username: $user
      password: superpass
  pg_hba:
  - local all all trust
  - host all all 127.0.0.1/32 trust
  - host replication all 127.0.0.1/32 trust
  parameters:
$local@{[ $opts{postgresql_extra} // '' ]}
EOY
	make_path("$base/patroni_log");
	my $config = "$base/patroni.yml";
	open(my $fh, '>', $config) or die "cannot write $config: $!";
	print $fh $yaml;
	close $fh;
	$node->{patroni} = {
		config => $config,
		api_port => $api_port,
		api => "http://127.0.0.1:$api_port",
		log => "$base/patroni.out",
		pid => undef,
	};
	return $node;
}

# Starts (or restarts) Patroni for a node made by fleet_patroni_node.
sub fleet_start_patroni
{
	my ($node) = @_;
	my $p = $node->{patroni};
	$p->{pid} = fleet_spawn('patroni ' . $node->name, $p->{log}, 'patroni', $p->{config});
	return $p->{pid};
}

# GET on a node's Patroni REST API: (status, decoded JSON or undef).
sub fleet_patroni_get
{
	my ($node, $path) = @_;
	my $r = HTTP::Tiny->new(timeout => 5)->get($node->{patroni}{api} . $path);
	my $json;
	eval {
		require JSON::PP;
		$json = JSON::PP::decode_json($r->{content});
	} if defined $r->{content} && $r->{content} =~ /^\s*[\{\[]/;
	return ($r->{status}, $json, $r->{content});
}

# POST of a JSON body to a node's Patroni REST API: (status, content).
sub fleet_patroni_post
{
	my ($node, $path, $body) = @_;
	require JSON::PP;
	my $r = HTTP::Tiny->new(timeout => 60)->post(
		$node->{patroni}{api} . $path,
		{
			headers => { 'Content-Type' => 'application/json' },
			content => JSON::PP::encode_json($body)
		});
	return ($r->{status}, $r->{content});
}

# The name of the leader in a node's view of the cluster (GET /cluster), or
# undef.
sub fleet_patroni_leader
{
	my ($node) = @_;
	my (undef, $c) = fleet_patroni_get($node, '/cluster');
	return undef unless $c && $c->{members};
	for my $m (@{ $c->{members} })
	{
		return $m->{name} if ($m->{role} // '') eq 'leader' && ($m->{state} // '') eq 'running';
	}
	return undef;
}

# A WAL file name's segment number (timeline ignored), for a segment size in
# bytes.
sub fleet_segno
{
	my ($name, $segsize) = @_;
	my ($log, $seg) = $name =~ /^[0-9A-F]{8}([0-9A-F]{8})([0-9A-F]{8})/ or return undef;
	return hex($log) * (4294967296 / $segsize) + hex($seg);
}

# The segment numbers from $first to $last that no WAL file of the archive
# list (file names, any timeline; compressed suffixes allowed) holds.
sub fleet_segments_missing
{
	my ($names, $first, $last, $segsize) = @_;
	my %have;
	for my $n (@$names)
	{
		my $s = fleet_segno($n, $segsize);
		$have{$s} = 1 if defined $s;
	}
	return grep { !$have{$_} } $first .. $last;
}

1;
