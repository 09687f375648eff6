
# Key material in memory: what a core dump, swap or a stray copy could carry
# off the instance.
#
# The test-hooks build hands the instance key to the test
# (EPHEMERAL_CRYPT_TEST_KEY_FILE). From it, and from each open file's header
# nonce, the test derives on its own, in Perl (Digest::SHA, RFC 5869), every
# secret the processes hold: the instance key, the header-MAC key (and the
# two SHA-256 states an HMAC context keyed with it would keep), and each open
# file's AES-256-XTS key (its two halves: each AES-256 key schedule begins
# with the raw half). The derivations are checked against what the server
# shows (the key id, a header's MAC) and, in the positive control below,
# against the server's memory.
#
# One session keeps a temporary table bigger than temp_buffers and a spilled
# scroll cursor open; the WAL writer keeps its segment open. Then:
#  - gcore (gdb) of the postmaster, that backend and the WAL writer, as a
#    core dump is taken by default: none of the secrets, nor the first 16
#    bytes of any, is in any of them;
#  - the positive control: gcore with dump-excluded-mappings on (what the
#    memory really holds) finds the instance key in all three, each open
#    file's key halves in its process, so the derivations and the search are
#    right; every address where one is found lies in a mapping that
#    /proc/PID/smaps marks locked (lo) and excluded from core dumps (dd);
#  - at exit (gdb stops the process at exit_group, after every exit handler
#    ran): a core with dump-excluded-mappings on holds none of them: the
#    session's backend when its client leaves, the WAL writer and the
#    postmaster at shutdown;
#  - the kernel's core dumps of backends holding open files, after SIGABRT and
#    after SIGSEGV (core_pattern must name a file), hold none of them;
#  - locked memory per open file, and its exhaustion: under a small
#    RLIMIT_MEMLOCK a session's new files are refused with a WARNING, nothing
#    is written in their stead, and the session works again once files close.

use strict;
use warnings;
no warnings 'portable';    # 64-bit addresses in hex

use Cwd qw(realpath);
use Digest::SHA qw(hmac_sha256);
use File::Basename qw(dirname basename);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
# The Makefile's PROVE_FLAGS (-I test/perl) is reset by PGXS's Makefile.global,
# so find the shared helpers relative to this file.
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EphemeralCrypt::TestLib;

# gdb (for gcore) and prlimit (util-linux) are required, never skipped:
# scripts/install-deps.sh and scripts/chroot.sh install them.
for my $tool (qw(gdb prlimit))
{
	die "$tool is required by this test and not installed\n"
	  unless system('sh', '-c', "command -v $tool >/dev/null") == 0;
}

my %category_of_byte = (1 => 'temp_relation', 2 => 'spill', 3 => 'wal');

# ---------------------------------------------------------------------------
# Independent derivations (RFC 5869 HKDF-SHA256 over Digest::SHA's HMAC).

sub hkdf_sha256
{
	my ($ikm, $salt, $info, $len) = @_;
	$salt = "\0" x 32 if $salt eq '';
	my $prk = hmac_sha256($ikm, $salt);
	my ($okm, $t) = ('', '');
	for (my $i = 1; length($okm) < $len; $i++)
	{
		$t = hmac_sha256($t . $info . chr($i), $prk);
		$okm .= $t;
	}
	return substr($okm, 0, $len);
}

# The SHA-256 chaining value after one 64-byte block, as the eight native
# (little-endian) words a SHA-256 context keeps: an HMAC context keyed with K
# holds this for K ^ ipad and K ^ opad.
sub sha256_state_after
{
	my ($block) = @_;
	my $sha = Digest::SHA->new(256);
	$sha->add($block);
	my ($h) = $sha->getstate =~ /^H:([0-9a-f:]+)$/m;
	return pack('V8', map { hex } split /:/, $h);
}

# ---------------------------------------------------------------------------
# Processes, their open files, cores and mappings.

# The encrypted files process $pid has open in $pgdata: { path => {category,
# nonce, header} }.
sub open_encrypted_files
{
	my ($pid, $pgdata) = @_;
	my %files;
	opendir(my $dh, "/proc/$pid/fd") or return {};
	for my $fd (grep { /^\d+$/ } readdir $dh)
	{
		my $path = readlink("/proc/$pid/fd/$fd") // next;
		next unless index($path, "$pgdata/") == 0 && -f $path;
		open(my $fh, '<:raw', $path) or next;
		my $header = '';
		read($fh, $header, $EC_HEADER_SIZE);
		close $fh;
		next unless length($header) == $EC_HEADER_SIZE && substr($header, 0, 8) eq $EC_MAGIC;
		my $cipher = ord(substr($header, 11, 1));
		next unless $cipher == 1 || $cipher == 2;    # AES-256-XTS or -GCM, not plaintext-audit
		$files{ substr($path, length($pgdata) + 1) } = {
			category => $category_of_byte{ ord(substr($header, 10, 1)) } // 'unknown',
			cipher => $cipher == 1 ? 'xts' : 'gcm',
			nonce => substr($header, 32, 32),
			header => $header,
		};
	}
	closedir $dh;
	return \%files;
}

# Writes a core of $pid to $file with gdb; with $all, mappings marked
# MADV_DONTDUMP are dumped too (what the memory really holds).
sub gcore
{
	my ($pid, $file, $all) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			'gdb', '--nx', '--batch', '-p', $pid,
			($all ? ('-ex', 'set dump-excluded-mappings on') : ()),
			'-ex', "gcore $file", '-ex', 'detach'
		],
		'<', \undef, '>', \$out, '2>', \$err);
	diag("gdb could not dump $pid:\n$out\n$err") unless -s $file;
	return -s $file;
}

# Starts gdb on $pid, stopped at its exit_group system call (after libc ran
# every exit handler), where it dumps everything to $file and lets it go.
# Returns once gdb waits for the exit.
sub gcore_at_exit_start
{
	my ($pid, $file) = @_;
	my %h = (out => '', err => '');
	$h{run} = IPC::Run::start(
		[
			'gdb', '--nx', '--batch', '-p', $pid,
			'-ex', 'handle all nostop noprint pass',
			'-ex', 'handle SIGINT nostop noprint pass',
			'-ex', 'catch syscall exit_group',
			'-ex', 'echo EC_GDB_WAITING\n',
			'-ex', 'continue',
			'-ex', 'set dump-excluded-mappings on',
			'-ex', "gcore $file",
			'-ex', 'detach'
		],
		'<', \undef, '>', \$h{out}, '2>', \$h{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	$h{run}->pump until $h{out} =~ /EC_GDB_WAITING/ || !$h{run}->pumpable;
	$h{file} = $file;
	return \%h;
}

sub gcore_at_exit_finish
{
	my ($h) = @_;
	eval { $h->{run}->finish; };
	diag("gdb at exit: $@\n$h->{out}\n$h->{err}") if $@ || !-s $h->{file};
	return -s $h->{file};
}

# The PT_LOAD segments of an ELF64 core: [file offset, address, size].
sub core_segments
{
	my ($core) = @_;
	return [] unless substr($core, 0, 4) eq "\x7fELF";
	my $phoff = unpack('Q<', substr($core, 32, 8));
	my ($phentsize, $phnum) = unpack('v v', substr($core, 54, 4));
	my @segments;
	for my $i (0 .. $phnum - 1)
	{
		my ($type, undef, $offset, $vaddr, undef, $filesz) =
		  unpack('V V Q< Q< Q< Q<', substr($core, $phoff + $i * $phentsize, 40));
		push @segments, [ $offset, $vaddr, $filesz ] if $type == 1;
	}
	return \@segments;
}

# Every needle found in a core file: { label => [addresses] } (at most 8
# each; the address is undef where the hit lies outside the loaded segments).
sub search_core
{
	my ($file, $needles) = @_;
	open(my $fh, '<:raw', $file) or die "cannot read $file: $!";
	local $/;
	my $core = <$fh>;
	close $fh;
	my $segments = core_segments($core);
	my %found;
	for my $label (sort keys %$needles)
	{
		my $pos = index($core, $needles->{$label});
		while ($pos >= 0 && @{ $found{$label} // [] } < 8)
		{
			my ($segment) = grep { $pos >= $_->[0] && $pos < $_->[0] + $_->[2] } @$segments;
			push @{ $found{$label} }, $segment ? $segment->[1] + $pos - $segment->[0] : undef;
			$pos = index($core, $needles->{$label}, $pos + 1);
		}
	}
	return \%found;
}

# /proc/PID/smaps as [{start, end, name, flags => {lo => 1, ...}, locked_kb}].
sub smaps
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/smaps") or return [];
	my (@maps, $current);
	while (my $line = <$fh>)
	{
		if ($line =~ /^([0-9a-f]+)-([0-9a-f]+)\s+\S+\s+\S+\s+\S+\s+\S+\s*(.*)$/)
		{
			$current = { start => hex($1), end => hex($2), name => $3, flags => {}, locked_kb => 0 };
			push @maps, $current;
		}
		elsif ($line =~ /^VmFlags:\s*(.*)$/ && $current)
		{
			$current->{flags} = { map { $_ => 1 } split ' ', $1 };
		}
		elsif ($line =~ /^Locked:\s+(\d+) kB/ && $current)
		{
			$current->{locked_kb} = $1;
		}
	}
	close $fh;
	return \@maps;
}

sub mapping_of
{
	my ($maps, $address) = @_;
	my ($m) = grep { $address >= $_->{start} && $address < $_->{end} } @$maps;
	return $m;
}

sub locked_kb
{
	my ($pid) = @_;
	my $total = 0;
	$total += $_->{locked_kb} for @{ smaps($pid) };
	return $total;
}

sub pid_of_type
{
	my ($node, $type) = @_;
	return $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = '$type'");
}

# ---------------------------------------------------------------------------
# The node and its secrets.

my $keydir = PostgreSQL::Test::Utils::tempdir();
my $coredir = PostgreSQL::Test::Utils::tempdir();
my $keyfile = "$keydir/instance.key";
# Spill files in AES-256-GCM, temporary relations and WAL in AES-256-XTS: the
# keys of both ciphers are looked for.
my $node = ec_new_node('keys', extension => 1, encrypt_wal => 1,
	conf => "restart_after_crash = on\nwal_writer_delay = 10ms\nmax_locks_per_transaction = 256\n"
	  . "ephemeral_crypt.spill_cipher = 'aes-256-gcm'\n");
{
	local $ENV{EPHEMERAL_CRYPT_TEST_FAULTS} = '1';
	local $ENV{EPHEMERAL_CRYPT_TEST_KEY_FILE} = $keyfile;
	$node->start;
}
$node->safe_psql('postgres', 'CREATE EXTENSION ephemeral_crypt');
my $pgdata = realpath($node->data_dir);
my $postmaster = $node->{_pid};
like($postmaster, qr/^\d+$/, "postmaster pid $postmaster");

chomp(my $key_hex = slurp_file($keyfile));
like($key_hex, qr/^[0-9a-f]{64}$/, 'the test build handed over the instance key');
my $master = pack('H*', $key_hex);
my $mac_key = hkdf_sha256($master, '', 'ephemeral_crypt header-mac v1', 32);
is(unpack('H*', hkdf_sha256($master, '', 'ephemeral_crypt key-id v1', 8)), ec_key_id($node),
	'the key id derived here from the instance key is the one the server reports');

my %instance_secrets = (
	'the instance key' => $master,
	'the header-MAC key' => $mac_key,
	'the header-MAC key\'s HMAC inner state' => sha256_state_after(($mac_key . "\0" x 32) ^ ("\x36" x 64)),
	'the header-MAC key\'s HMAC outer state' => sha256_state_after(($mac_key . "\0" x 32) ^ ("\x5c" x 64)),
);

# The secrets of open files: each XTS file's key and its two halves, each
# GCM file's key.
sub file_secrets
{
	my ($files) = @_;
	my %s;
	for my $rel (sort keys %$files)
	{
		my $f = $files->{$rel};
		if ($f->{cipher} eq 'gcm')
		{
			$s{"the GCM key of $rel"} = hkdf_sha256($master, $f->{nonce},
				"ephemeral_crypt file-key v2 aes-256-gcm $f->{category}", 32);
			next;
		}
		my $key = hkdf_sha256($master, $f->{nonce}, "ephemeral_crypt file-key v1 $f->{category}", 64);
		$s{"the XTS key of $rel"} = $key;
		$s{"the data key (first half) of $rel"} = substr($key, 0, 32);
		$s{"the tweak key (second half) of $rel"} = substr($key, 32, 32);
	}
	return \%s;
}

# Every secret and the first 16 bytes of each.
sub needles
{
	my (@sets) = @_;
	my %n;
	for my $set (@sets)
	{
		for my $label (keys %$set)
		{
			$n{$label} = $set->{$label};
			$n{"the first 16 bytes of $label"} = substr($set->{$label}, 0, 16);
		}
	}
	return \%n;
}

sub found_list
{
	my ($found) = @_;
	return join('; ', map { "$_ at " . join(',', map { defined $_ ? sprintf('0x%x', $_) : '?' } @{ $found->{$_} }) }
		sort keys %$found);
}

# A session holding a temporary table bigger than temp_buffers (800kB) and a
# spilled scroll cursor, whose query carries $marker; returns (session,
# backend pid, its open files). The FETCH is its last statement: from
# PostgreSQL 19 on, the next one would close the table's file until used.
sub holding_session
{
	my ($name, $marker) = @_;
	$marker //= $name;
	my $s = $node->background_psql('postgres', on_error_stop => 1);
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	$s->query_safe(qq{
		SET max_parallel_workers_per_gather = 0;
		CREATE TEMP TABLE ${name}_tt AS SELECT g, md5(g::text) AS s FROM generate_series(1, 40000) g;
		BEGIN;
		DECLARE c SCROLL CURSOR FOR SELECT s, '$marker' AS m FROM ${name}_tt ORDER BY md5(s) DESC;
	});
	$s->query_safe('FETCH 1 FROM c');
	my $files = open_encrypted_files($pid, $pgdata);
	my %cats = map { $_->{category} => 1 } values %$files;
	ok($cats{temp_relation} && $cats{spill},
		"$name: backend $pid holds a temporary table and a spilled cursor open (" . join(', ', sort keys %$files) . ')');
	ok((grep { $_->{cipher} eq 'gcm' } values %$files) && (grep { $_->{cipher} eq 'xts' } values %$files),
		"$name: the backend's files are in both ciphers");
	return ($s, $pid, $files);
}

# Writes WAL through the WAL writer until it has an encrypted segment open.
sub walwriter_with_segment
{
	my $walwriter = pid_of_type($node, 'walwriter');
	my $files = {};
	for my $try (1 .. 300)
	{
		$node->safe_psql('postgres', q{
			SET synchronous_commit = off;
			CREATE TABLE IF NOT EXISTS keys_w (s text);
			INSERT INTO keys_w SELECT md5(g::text) FROM generate_series(1, 200) g;});
		usleep(50_000);
		$files = open_encrypted_files($walwriter, $pgdata);
		last if grep { $_->{category} eq 'wal' } values %$files;
	}
	ok((grep { $_->{category} eq 'wal' } values %$files),
		"the WAL writer ($walwriter) holds an encrypted WAL segment open (" . join(', ', sort keys %$files) . ')');
	return ($walwriter, $files);
}

# ---------------------------------------------------------------------------
# Live processes.

my ($s1, $backend, $backend_files) = holding_session('live');
my ($walwriter, $walwriter_files) = walwriter_with_segment();

# The header-MAC key derived here verifies a header the server wrote.
{
	my ($rel) = sort keys %$backend_files;
	my $h = $backend_files->{$rel}{header};
	is(hmac_sha256(substr($h, 0, 64), $mac_key), substr($h, 64, 32),
		"the header-MAC key derived here verifies the MAC of $rel");
}

my %processes = (
	postmaster => { pid => $postmaster, files => {} },
	backend => { pid => $backend, files => $backend_files },
	'WAL writer' => { pid => $walwriter, files => $walwriter_files },
);
my %file_secrets_of = map { $_ => file_secrets($processes{$_}{files}) } keys %processes;
my $all_file_secrets = { map { %{ $file_secrets_of{$_} } } keys %processes };
my $needles = needles(\%instance_secrets, $all_file_secrets);
note(scalar(keys %$needles) . ' byte strings searched for');

for my $name (sort keys %processes)
{
	my $pid = $processes{$name}{pid};
	my $core = "$coredir/default-$pid.core";
	ok(gcore($pid, $core, 0), "gcore of the $name ($pid), as a core dump is taken");
	my $found = search_core($core, $needles);
	is_deeply([ sort keys %$found ], [], "the ${name}'s core holds no key material")
	  or diag(found_list($found));
	unlink $core;
}

# The positive control: what the memory really holds, and where.
for my $name (sort keys %processes)
{
	my $pid = $processes{$name}{pid};
	my $core = "$coredir/all-$pid.core";
	ok(gcore($pid, $core, 1), "gcore of the $name ($pid) with the excluded mappings");
	my $maps = smaps($pid);
	my $found = search_core($core, $needles);
	unlink $core;
	ok($found->{'the instance key'}, "the ${name}'s memory holds the instance key (the search sees it)");
	ok($found->{'the header-MAC key'}, "the ${name}'s memory holds the header-MAC key");
	for my $rel (sort keys %{ $processes{$name}{files} })
	{
		if ($processes{$name}{files}{$rel}{cipher} eq 'gcm')
		{
			ok($found->{"the GCM key of $rel"},
				"the ${name}'s memory holds the GCM key schedule of $rel (the derivation is right)");
			next;
		}
		ok($found->{"the data key (first half) of $rel"} && $found->{"the tweak key (second half) of $rel"},
			"the ${name}'s memory holds the two key schedules of $rel (the derivation is right)");
	}
	my @unsafe;
	for my $label (sort keys %$found)
	{
		for my $address (@{ $found->{$label} })
		{
			my $m = defined $address ? mapping_of($maps, $address) : undef;
			push @unsafe, sprintf('%s at %s in %s [%s]', $label, defined $address ? sprintf('0x%x', $address) : '?',
				$m ? sprintf('%x-%x %s', $m->{start}, $m->{end}, $m->{name}) : 'no mapping',
				$m ? join(' ', sort keys %{ $m->{flags} }) : '')
			  unless $m && $m->{flags}{lo} && $m->{flags}{dd};
		}
	}
	is_deeply(\@unsafe, [], "every copy of key material in the $name lies in a locked (lo), non-dumpable (dd) mapping")
	  or diag(join("\n", @unsafe));
}

# At exit: the session's backend as its client leaves.
{
	my $gdb = gcore_at_exit_start($backend, "$coredir/exit-$backend.core");
	$s1->quit;
	ok(gcore_at_exit_finish($gdb), "gcore of the backend ($backend) at its exit_group");
	my $found = search_core($gdb->{file}, $needles);
	unlink $gdb->{file};
	is_deeply([ sort keys %$found ], [], 'at exit, nothing in the backend\'s memory holds key material')
	  or diag(found_list($found));
}

# ---------------------------------------------------------------------------
# Locked memory per open file, and what happens when it runs out.
{
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	my $n = 200;
	my $marker = ec_marker('locked');
	my $before = locked_kb($pid);
	# Each table's file stays open once a row has gone in (creating a
	# relation invalidates its cache entry, which closes the file again).
	$s->query_safe(qq{
		BEGIN;
		DO \$\$ BEGIN FOR i IN 1..$n LOOP
			EXECUTE format('CREATE TEMP TABLE lock_%s (s text)', i);
			EXECUTE format('INSERT INTO lock_%s VALUES (%L)', i, '$marker');
		END LOOP; END \$\$;
	});
	my $files = open_encrypted_files($pid, $pgdata);
	my $open = grep { $_->{category} eq 'temp_relation' } values %$files;
	my $during = locked_kb($pid);
	$s->query_safe('ROLLBACK');
	my $after = locked_kb($pid);
	cmp_ok($open, '>=', $n, "$open temporary relation files open in backend $pid");
	cmp_ok($during, '>', $before, "locked memory grows with the open files: $before kB, then $during kB");
	note(sprintf('locked memory per open file: %.0f bytes (%d kB for %d files)',
		($during - $before) * 1024 / $open, $during - $before, $open));
	cmp_ok($after, '<', $during, "and shrinks as they close: $after kB");
	$s->quit;

	# A small RLIMIT_MEMLOCK for the sessions forked from now on.
	my ($soft, $hard) = split ' ', `prlimit --pid $postmaster --memlock --raw --noheadings --output SOFT,HARD`;
	my $limit = 512 * 1024;
	is(system('prlimit', '--pid', $postmaster, "--memlock=$limit:$hard"), 0, "RLIMIT_MEMLOCK of new sessions set to $limit bytes");
	my $status_before = ec_encryption_status($node);
	my $offset = -s $node->logfile;
	$s = $node->background_psql('postgres', on_error_stop => 0);
	$pid = $s->query_safe('SELECT pg_backend_pid()');
	my $many = ec_marker('many');
	my $out = $s->query(qq{
		BEGIN;
		DO \$\$ BEGIN FOR i IN 1..2000 LOOP
			EXECUTE format('CREATE TEMP TABLE many_%s (s text)', i);
			EXECUTE format('INSERT INTO many_%s VALUES (%L)', i, '$many');
			RAISE NOTICE 'created %', i;
		END LOOP; END \$\$;
	});
	my @created = $s->{stderr} =~ /NOTICE:  created (\d+)/g;
	my $created = $created[-1] // 0;
	my ($refused) = $s->{stderr} =~ /WARNING:  ephemeral_crypt: no locked memory for the file's key: file "([^"]+)", category temp_relation/;
	ok(defined $refused, "after $created files the next one is refused with a WARNING (" . ($refused // 'none') . ')');
	like($s->{stderr}, qr/ERROR:  could not (?:create|open) file [^\n]*: Cannot allocate memory/,
		'and the statement fails with the server\'s own error');
	like($s->{stderr}, qr/HINT:  [^\n]*RLIMIT_MEMLOCK/, 'the hint names RLIMIT_MEMLOCK');
	cmp_ok($created, '>', 10, "files were served until locked memory ran out ($created)");
	is_deeply([ ec_files_holding($pgdata, $many) ], [],
		'no file of the data directory holds the session\'s rows in plaintext');
	my $status = ec_encryption_status($node);
	cmp_ok($status->{temp_relation}{failures}, '>', $status_before->{temp_relation}{failures},
		'the refusal is counted as a temp_relation failure');
	is($status->{temp_relation}{plaintext_fallbacks}, 0, 'and nothing fell back to plaintext');
	$s->{stderr} = '';    # BackgroundPsql keeps stderr across queries
	$s->query_safe('ROLLBACK');
	is($s->query_safe('SELECT count(*) FROM (SELECT g FROM generate_series(1, 50000) g ORDER BY g DESC) x'), '50000',
		'once the files are closed, the session spills again under the same limit');
	$s->quit;
	is(system('prlimit', '--pid', $postmaster, "--memlock=$soft:$hard"), 0, 'RLIMIT_MEMLOCK restored');
}

# ---------------------------------------------------------------------------
# The kernel's core dumps of a crashed backend.
{
	chomp(my $pattern = slurp_file('/proc/sys/kernel/core_pattern'));
	ok($pattern !~ /^\|/, "kernel core dumps are written to a file (core_pattern '$pattern')")
	  or diag('core_pattern pipes core dumps to a program, so this test cannot read them; '
		  . 'set kernel.core_pattern to a file name (for example "core") to run it');
	my ($soft, $hard) = split ' ', `prlimit --pid $postmaster --core --raw --noheadings --output SOFT,HARD`;
	is(system('prlimit', '--pid', $postmaster, "--core=$hard:$hard"), 0, "core dumps allowed for new sessions (limit $hard)");
	my $dir = $pattern =~ m{^/} ? dirname($pattern) : $pgdata;
	(my $prefix = basename($pattern)) =~ s/%.*//;
	for my $signal ('ABRT', 'SEGV')
	{
		unlink glob("$dir/$prefix*") if $dir eq $pgdata;
		my $marker = ec_marker("core_$signal");
		my ($s, $pid, $files) = holding_session(lc $signal, $marker);
		my $n = needles(\%instance_secrets, file_secrets($files));
		$n->{marker} = $marker;
		my $offset = -s $node->logfile;
		my $since = time - 1;
		kill $signal, $pid;
		ok($node->wait_for_log(qr/\(PID $pid\) was terminated by signal/, $offset), "backend $pid ended by SIG$signal");
		ok($node->wait_for_log(qr/database system is ready to accept connections/, $offset), 'the server recovered');
		eval { $s->quit };
		my @cores = grep { -f $_ && (stat $_)[9] >= $since } glob("$dir/$prefix*");
		is(scalar(@cores), 1, "the kernel wrote one core (@cores)");
		next unless @cores;
		my $found = search_core($cores[0], $n);
		ok(delete $found->{marker}, "the core holds the session's own data ($marker), so it was searched whole");
		is_deeply([ sort keys %$found ], [], "the kernel's core after SIG$signal holds no key material")
		  or diag(found_list($found));
		unlink @cores;
	}
	is(system('prlimit', '--pid', $postmaster, "--core=$soft:$hard"), 0, 'core limit restored');
}

# ---------------------------------------------------------------------------
# At shutdown: the WAL writer and the postmaster, at their exit_group.
{
	my ($ww, $ww_files) = walwriter_with_segment();
	my $n = needles(\%instance_secrets, file_secrets($ww_files));
	my %gdb = (
		'WAL writer' => gcore_at_exit_start($ww, "$coredir/exit-$ww.core"),
		postmaster => gcore_at_exit_start($postmaster, "$coredir/exit-$postmaster.core"));
	$node->stop('fast');
	for my $name (sort keys %gdb)
	{
		ok(gcore_at_exit_finish($gdb{$name}), "gcore of the $name at its exit_group");
		my $found = search_core($gdb{$name}{file}, $n);
		unlink $gdb{$name}{file};
		is_deeply([ sort keys %$found ], [], "at exit, nothing in the ${name}'s memory holds key material")
		  or diag(found_list($found));
	}
}

done_testing();
