#!/usr/bin/env bash
# Reproduces every performance figure of ephemeral_crypt on this machine and
# writes bench/RESULTS.md (Markdown) and bench/results.csv (one row per figure),
# plus bench/results-runs.csv (every single run) and, with gnuplot, a chart.
#
#   bash bench/run.sh                 # full run (about 50 minutes on 2 cores)
#   BENCH_QUICK=1 bash bench/run.sh   # smoke run (a few minutes), writes to /tmp
#
# Four states on one cluster configuration:
#   A  not loaded          (no shared_preload_libraries)
#   B  loaded, all off     (encrypt_temp_relations/encrypt_spill_files/encrypt_wal = off)
#   C  loaded, all on      (temp relations, spill files and WAL encrypted, AES-256-XTS)
#   G  loaded, all on, with temp relations and spill files in AES-256-GCM
#      (the authenticated mode; WAL in XTS as in C); SQL workloads only
# The SQL workloads (A B C G) and pgbench (A B C) alternate the states, the
# order rotated each round (A B C G, B C G A, ...), on clusters cloned from
# one data directory, running side by side (only one is busy at a time).
# Medians, min-max and ratios against A are reported with the targets; a
# missed target is reported as MISS, never as a failure.
#
# Run as root (servers run as $EC_TEST_USER via runuser) or as an
# unprivileged user. Uses the extension installed in PostgreSQL's libdir; it
# does not build or install the extension. For the cipher's in-server speed
# and a cipher floor measured inside the server, install the timing build
# first (make EC_BENCH_TIMING=1 && make install EC_BENCH_TIMING=1); without
# it the floor comes from the engine's benchmark speed. Knobs (environment):
#   BENCH_QUICK=1            smoke run: tiny data, 1 round, short pgbench
#   BENCH_ROUNDS             rounds of the SQL workloads (18)
#   BENCH_TEMP_REPEAT        runs of the temp table workload per state per round (3; 1 in quick
#                            mode): its statements are short, so one run per round leaves
#                            their ratios within the noise
#   BENCH_SCALE              millions of rows in the benchmark table (3)
#   BENCH_PGBENCH_ROUNDS     rounds of pgbench per synchronous_commit mode (5)
#   BENCH_PGBENCH_SECONDS    length of one pgbench run (20)
#   BENCH_PGBENCH_SCALE      pgbench scale factor (10)
#   BENCH_PGBENCH_CLIENTS    pgbench clients (4; 2 threads)
#   BENCH_STARTS             server starts per state for the startup figure (10)
#   BENCH_ENGINE_REPS        Google Benchmark repetitions (5)
#   BENCH_PROFILE            1: add a perf profile ("where the time goes") (1; 0 in quick mode)
#   BENCH_ENGINE_RELEASES    releases whose libraries the engine is also measured with, in
#                            their chroots (scripts/chroot.sh) ("trixie sid"; none in quick mode)
#   BENCH_PORT_BASE          first of 8 ports used (55470)
#   BENCH_BUILD_DIR          CMake build directory for the benchmark programs (build)
#   BENCH_OUT_DIR            where the reports go (bench/, or a /tmp dir in quick mode)
#   BENCH_KEEP=1             keep the scratch directory under /tmp
set -euo pipefail
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"

t_start=$(date +%s)
quick=${BENCH_QUICK:-0}
# knob VARIABLE ENVIRONMENT QUICK FULL: VARIABLE is ENVIRONMENT if it is set
# and not empty, else the default of the mode (quick or full).
knob() {
    local default=$4
    [ "$quick" = 1 ] && default=$3
    printf -v "$1" '%s' "${!2:-$default}"
}
#    variable     environment           quick  full
knob rounds       BENCH_ROUNDS          1      18
knob temp_repeat  BENCH_TEMP_REPEAT     1      3
knob scale        BENCH_SCALE           0.3    3
knob pgb_rounds   BENCH_PGBENCH_ROUNDS  1      5
knob pgb_secs     BENCH_PGBENCH_SECONDS 5      20
knob pgb_scale    BENCH_PGBENCH_SCALE   2      10
knob starts       BENCH_STARTS          3      10
knob engine_reps  BENCH_ENGINE_REPS     2      5
knob profile      BENCH_PROFILE         0      1
knob out_dir      BENCH_OUT_DIR         /tmp/ephemeral_crypt-bench-quick "$top/bench"
# Set but empty means no release, so the full run's default applies only
# when the variable is unset.
if [ "$quick" = 1 ]; then
    engine_releases=${BENCH_ENGINE_RELEASES-}
else
    engine_releases=${BENCH_ENGINE_RELEASES-trixie sid}
fi
pgb_clients=${BENCH_PGBENCH_CLIENTS:-4}
port_base=${BENCH_PORT_BASE:-55470}
build_dir=${BENCH_BUILD_DIR:-build}
keep=${BENCH_KEEP:-0}

die() { printf 'bench/run.sh: error: %s\n' "$*" >&2; exit 1; }
elapsed() { local s=$(($(date +%s) - t_start)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
step() { printf '\n==> [%s] %s\n' "$(elapsed)" "$*"; }
note() { printf '    [%s] %s\n' "$(elapsed)" "$*"; }

for n in rounds temp_repeat pgb_rounds pgb_secs pgb_scale pgb_clients starts engine_reps port_base; do
    [[ ${!n} =~ ^[0-9]+$ ]] && [ "${!n}" -gt 0 ] || die "$n must be a positive integer (got '${!n}')"
done
[[ $scale =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BENCH_SCALE must be a number of millions of rows (got '$scale')"
rows=$(awk -v s="$scale" 'BEGIN { printf "%d", s * 1000000 }')
[ "$rows" -ge 10000 ] || die "BENCH_SCALE too small"
for tool in initdb pg_ctl postgres psql pgbench openssl cmake python3 runuser; do
    command -v "$tool" >/dev/null || die "'$tool' not found in PATH (run scripts/install-deps.sh?)"
done
libdir=$("$PG_CONFIG" --pkglibdir)
so="$libdir/ephemeral_crypt.so"
[ -f "$so" ] || die "$so is not installed (make && make install first)"
if [ "$(id -u)" -eq 0 ]; then
    id "$EC_TEST_USER" >/dev/null 2>&1 || die "user $EC_TEST_USER does not exist"
fi

work=$(mktemp -d /tmp/ephemeral_crypt-bench.XXXXXX)
chmod 755 "$work"
[ "$(id -u)" -eq 0 ] && chown "$EC_TEST_USER" "$work"
mkdir -p "$out_dir"
runs_csv="$work/runs.csv"
echo "section,workload,state,round,metric,value,unit" >"$runs_csv"
meta="$work/meta.env"
: >"$meta"
setmeta() { printf '%s\t%s\n' "$1" "$2" >>"$meta"; }

# Servers we started: data directories to stop on exit (a file, because
# some are started from subshells).
live="$work/live_dirs"
: >"$live"
cleanup() {
    local rc=$?
    while read -r d; do
        if [ -f "$d/postmaster.pid" ]; then
            as_test_user pg_ctl -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
        fi
    done <"$live"
    if [ "$keep" = 1 ] || [ $rc -ne 0 ]; then
        echo "scratch directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -A port=([A]=$port_base [B]=$((port_base + 1)) [C]=$((port_base + 2)) [T]=$((port_base + 3))
    [G]=$((port_base + 5)))
declare -A state_label=([A]="not loaded" [B]="loaded, all off" [C]="loaded, all on"
    [G]="loaded, all on, GCM")
for p in "${port[@]}" $((port_base + 4)); do
    if ss -lxn 2>/dev/null | grep -q "\.s\.PGSQL\.$p\b" || ss -ltn 2>/dev/null | grep -q ":$p "; then
        die "port $p is in use; choose another range with BENCH_PORT_BASE"
    fi
done

########################################################################
step "machine"
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
flags=$(awk -F': ' '/^flags/ { print $2; exit }' /proc/cpuinfo)
has_flag() { [[ " $flags " == *" $1 "* ]] && echo yes || echo no; }
setmeta cpu_model "$cpu_model"
setmeta cpu_aes "$(has_flag aes)"
setmeta cpu_vaes "$(has_flag vaes)"
setmeta cpu_avx512f "$(has_flag avx512f)"
setmeta cores "$(nproc)"
setmeta mem "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
setmeta kernel "$(uname -r)"
setmeta pg_version "$(postgres --version)"
setmeta openssl_version "$(openssl version)"
setmeta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
setmeta so_sha "$(sha256sum "$so" | cut -c1-16)"
setmeta so_mtime "$(date -u -r "$so" '+%Y-%m-%d %H:%M UTC')"
setmeta git_rev "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ modified)')"
setmeta load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
setmeta tmp_fs "$(df -PT /tmp | awk 'NR == 2 { print $2 " on " $1 }')"
setmeta quick "$quick"
setmeta rounds "$rounds"
setmeta temp_repeat "$temp_repeat"
setmeta rows "$rows"
setmeta pgb_rounds "$pgb_rounds"
setmeta pgb_secs "$pgb_secs"
setmeta pgb_scale "$pgb_scale"
setmeta pgb_clients "$pgb_clients"
setmeta starts "$starts"
setmeta engine_reps "$engine_reps"
note "$cpu_model, $(nproc) cores, aes=$(has_flag aes) vaes=$(has_flag vaes); $(postgres --version); $(openssl version)"
note "settings: rounds=$rounds (temp table x$temp_repeat) rows=$rows pgbench=${pgb_rounds}x${pgb_secs}s scale $pgb_scale, $pgb_clients clients; starts=$starts; scratch $work"

########################################################################
step "building the benchmark programs ($build_dir: engine_bench, layer_bench, gcm_bench, concurrency_bench)"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/cmake.log" 2>&1 ||
    { tail -20 "$work/cmake.log" >&2; die "cmake configure failed (log above)"; }
cmake --build "$build_dir" --target engine_bench layer_bench gcm_bench concurrency_bench -j"$(nproc)" >>"$work/cmake.log" 2>&1 ||
    { tail -30 "$work/cmake.log" >&2; die "building the benchmark programs failed (log above)"; }

########################################################################
step "engine: engine_bench ($engine_reps repetitions, medians)"
"$build_dir/engine_bench" --benchmark_repetitions="$engine_reps" --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true \
    --benchmark_out="$work/engine.json" --benchmark_out_format=json --benchmark_color=false \
    >"$work/engine_bench.txt" 2>&1 || { cat "$work/engine_bench.txt" >&2; die "engine_bench failed"; }
sed -n '/throughput ratio/,$p' "$work/engine_bench.txt" | sed 's/^/    /'

step "AES-256-GCM libraries: gcm_bench ($engine_reps repetitions, medians)"
"$build_dir/gcm_bench" --benchmark_repetitions="$engine_reps" --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true \
    --benchmark_out="$work/gcm.json" --benchmark_out_format=json --benchmark_color=false \
    >"$work/gcm_bench.txt" 2>&1 || { cat "$work/gcm_bench.txt" >&2; die "gcm_bench failed"; }
sed -n '/AES-256-GCM at the format/,$p' "$work/gcm_bench.txt" | sed 's/^/    /'

step "libc layer: layer_bench on tmpfs (/dev/shm) and the page cache (/tmp), $engine_reps repetitions"
"$build_dir/layer_bench" --benchmark_repetitions="$engine_reps" --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true \
    --benchmark_out="$work/layer.json" --benchmark_out_format=json --benchmark_color=false \
    >"$work/layer_bench.txt" 2>&1 || { cat "$work/layer_bench.txt" >&2; die "layer_bench failed"; }
sed -n '/throughput ratio/,$p' "$work/layer_bench.txt" | sed 's/^/    /'

conc_secs=$([ "$quick" = 1 ] && echo 0.5 || echo 2)
step "libc layer under concurrency: concurrency_bench, 1, 2, 4 and 8 writer processes, ${conc_secs}s each, $engine_reps repetitions"
for rep in $(seq 1 "$engine_reps"); do
    "$build_dir/concurrency_bench" --csv "$conc_secs" >"$work/concurrency_$rep.txt" 2>&1 ||
        { cat "$work/concurrency_$rep.txt" >&2; die "concurrency_bench failed"; }
    awk -F, -v r="$rep" '$1 == "csv" { print "concurrency,mode" $2 "," $3 "," r ",per_cpu_second," $4 ",MB/s";
                                       print "concurrency,mode" $2 "," $3 "," r ",per_wall_second," $5 ",MB/s" }' \
        "$work/concurrency_$rep.txt" >>"$runs_csv"
done
grep -A6 '^per-process throughput' "$work/concurrency_$engine_reps.txt" | sed 's/^/    /'

# openssl speed for AES-256-XTS at the engine's 8 KiB page (the engine
# table's reference) and for AES-256-GCM at the format's 4 KiB unit (the
# per-release GCM table).
openssl_speed() {  # cipher bytes [-decrypt] -> bytes per second at that block size
    local out
    out=$(openssl speed -seconds 3 -bytes "$2" "${@:3}" -evp "$1" 2>/dev/null) ||
        die "openssl speed ${*:3} -evp $1 failed"
    # Last line: "AES-256-XTS   12345678.90k" (1000s of bytes per second).
    awk 'END { v = $NF; sub(/k$/, "", v); printf "%.0f\n", v * 1000 }' <<<"$out"
}
speed_runs=$([ "$quick" = 1 ] && echo 1 || echo 3)
# metric prefix, cipher, block size, and the names of its two directions
for spec in "openssl_speed_ aes-256-xts 8192 encrypt decrypt" "openssl_speed_gcm_ aes-256-gcm 4096 seal open"; do
    read -r prefix cipher bytes forward backward <<<"$spec"
    step "openssl speed -evp $cipher -bytes $bytes ($speed_runs run(s) each way, 3 s each)"
    for r in $(seq 1 "$speed_runs"); do
        there=$(openssl_speed "$cipher" "$bytes")
        back=$(openssl_speed "$cipher" "$bytes" -decrypt)
        echo "engine,$prefix$forward,-,$r,bytes_per_second,$there,B/s" >>"$runs_csv"
        echo "engine,$prefix$backward,-,$r,bytes_per_second,$back,B/s" >>"$runs_csv"
        note "run $r: $forward $((there / 1000000)) MB/s, $backward $((back / 1000000)) MB/s"
    done
done

# The same engine_bench, gcm_bench and openssl speed with each other
# release's compiler, OpenSSL and libgcrypt, in its chroot: the cipher
# libraries differ between releases, and so does which of them is faster.
setmeta engine_releases "$engine_releases"
setmeta libs_host "$(openssl version | cut -d' ' -f2), libgcrypt $(dpkg-query -W -f='${Version}' libgcrypt20 2>/dev/null)"
if [ -n "$engine_releases" ]; then
    source scripts/chroot.sh
    for release in $engine_releases; do
        step "engine with $release's libraries: engine_bench and gcm_bench ($engine_reps repetitions) and openssl speed, in its chroot"
        root=$(ensure_build_root_of_release "$release") || die "no $release chroot"
        sync_source "$root"
        run_in_root "$root" bash -c 'cd "$0" &&
            cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEPHEMERAL_CRYPT_TESTS=OFF >/tmp/bench-cmake.log 2>&1 &&
            cmake --build build-bench --target engine_bench gcm_bench -j"$(nproc)" >>/tmp/bench-cmake.log 2>&1 &&
            ./build-bench/engine_bench --benchmark_repetitions="$1" --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true \
                --benchmark_out=/tmp/engine.json --benchmark_out_format=json --benchmark_color=false >/tmp/engine.txt 2>&1 &&
            ./build-bench/gcm_bench --benchmark_repetitions="$1" --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true \
                --benchmark_out=/tmp/gcm.json --benchmark_out_format=json --benchmark_color=false >>/tmp/engine.txt 2>&1 &&
            for spec in "aes-256-xts 8192 speed" "aes-256-gcm 4096 speed_gcm"; do
                read -r cipher bytes file <<<"$spec"
                for r in 1 2 3; do
                    openssl speed -seconds 3 -bytes "$bytes" -evp "$cipher" 2>/dev/null | tail -1
                    openssl speed -seconds 3 -bytes "$bytes" -decrypt -evp "$cipher" 2>/dev/null | tail -1
                done >"/tmp/$file.txt"
            done &&
            echo "$(openssl version | cut -d" " -f2), libgcrypt $(dpkg-query -W -f="\${Version}" libgcrypt20)" >/tmp/libs.txt' \
            "$EC_CHROOT_SRC" "$engine_reps" || { tail -20 "$root/tmp/bench-cmake.log" "$root/tmp/engine.txt" >&2; die "engine_bench in $release failed"; }
        cp "$root/tmp/engine.json" "$work/engine_$release.json"
        cp "$root/tmp/gcm.json" "$work/gcm_$release.json"
        setmeta "libs_$release" "$(cat "$root/tmp/libs.txt")"
        # The speed files alternate the two directions, run by run.
        for spec in "speed openssl_speed_ encrypt decrypt" "speed_gcm openssl_speed_gcm_ seal open"; do
            read -r file prefix forward backward <<<"$spec"
            awk -v metric="engine_$release,$prefix" -v there="$forward" -v back="$backward" \
                '{ v = $NF; sub(/k$/, "", v); dir = (NR % 2 == 1) ? there : back;
                   printf "%s%s,-,%d,bytes_per_second,%.0f,B/s\n", metric, dir, int((NR + 1) / 2), v * 1000 }' \
                "$root/tmp/$file.txt" >>"$runs_csv"
        done
        sed -n '/throughput ratio/,$p' "$root/tmp/engine.txt" | sed 's/^/    /'
    done
fi

########################################################################
# Clusters. One configuration for every state; the state adds only the
# extension's lines.
common_conf() {  # port socket_dir
    cat <<EOF
port = $1
unix_socket_directories = '$2'
listen_addresses = ''
shared_buffers = 256MB
max_wal_size = 8GB
checkpoint_timeout = 30min
autovacuum = off
jit = off
log_line_prefix = '%n [%p] '
log_min_messages = log
max_worker_processes = 8
max_parallel_workers = 8
EOF
}
state_conf() {  # state
    case $1 in
    A) ;;
    B)
        cat <<EOF
shared_preload_libraries = 'ephemeral_crypt'
ephemeral_crypt.encrypt_temp_relations = off
ephemeral_crypt.encrypt_spill_files = off
ephemeral_crypt.encrypt_wal = off
EOF
        ;;
    C | Cw)
        cat <<EOF
shared_preload_libraries = 'ephemeral_crypt'
ephemeral_crypt.encrypt_temp_relations = on
ephemeral_crypt.encrypt_spill_files = on
ephemeral_crypt.encrypt_wal = on
EOF
        ;;
    G)
        state_conf C
        cat <<EOF
ephemeral_crypt.temp_relation_cipher = 'aes-256-gcm'
ephemeral_crypt.spill_cipher = 'aes-256-gcm'
EOF
        ;;
    Cnw)
        cat <<EOF
shared_preload_libraries = 'ephemeral_crypt'
ephemeral_crypt.encrypt_temp_relations = on
ephemeral_crypt.encrypt_spill_files = on
ephemeral_crypt.encrypt_wal = off
EOF
        ;;
    esac
}
append_conf() {  # datadir text
    as_test_user sh -c "cat >> '$1/postgresql.conf'" <<<"$2"
}
pg_start() {  # datadir logfile
    echo "$1" >>"$live"
    if ! as_test_user pg_ctl -D "$1" -l "$2" -w -t 120 start >/dev/null 2>&1; then
        tail -20 "$2" >&2 || true
        die "server in $1 did not start (log above: $2)"
    fi
}
pg_stop() {  # datadir [mode]
    as_test_user pg_ctl -D "$1" -m "${2:-fast}" -w -t 120 stop >/dev/null || die "could not stop the server in $1"
}
psql_on() {  # state args...
    local s=$1
    shift
    as_test_user psql -X -q -v ON_ERROR_STOP=1 -h "$work/sock" -p "${port[$s]}" -d postgres "$@"
}
scalar() {  # state sql
    psql_on "$1" -At -c "$2"
}

as_test_user mkdir -p "$work/sock"

########################################################################
step "server startup: $starts starts per state, alternated, each on a fresh copy of one initdb"
as_test_user initdb -D "$work/start_tpl" -A trust -E UTF8 --locale=C >"$work/initdb_start.log" 2>&1 ||
    { cat "$work/initdb_start.log" >&2; die "initdb failed"; }
append_conf "$work/start_tpl" "$(common_conf "$((port_base + 4))" "$work/sock")"
# Time from just before exec(postgres) to the postmaster's own timestamp (%n)
# on "database system is ready to accept connections".
measure_start() {  # state round
    local s=$1 r=$2 d="$work/start_$1_$2" t0 ready pid
    as_test_user cp -a "$work/start_tpl" "$d"
    append_conf "$d" "$(state_conf "$s")"
    echo "$d" >>"$live"
    as_test_user sh -c 'date +%s%N > "$1/t0"; exec postgres -D "$1" > "$1/server.log" 2>&1' sh "$d" >/dev/null 2>&1 &
    for _ in $(seq 1 3000); do
        grep -q 'database system is ready to accept connections' "$d/server.log" 2>/dev/null && break
        kill -0 $! 2>/dev/null || { tail -20 "$d/server.log" >&2; die "server start ($s) failed"; }
        sleep 0.02
    done
    grep -q 'database system is ready to accept connections' "$d/server.log" ||
        { tail -20 "$d/server.log" >&2; die "server ($s) not ready after 60 s"; }
    t0=$(cat "$d/t0")
    ready=$(awk '/database system is ready to accept connections/ { print $1; exit }' "$d/server.log")
    if [ "$s" != A ]; then
        grep -q 'ephemeral_crypt: ready' "$d/server.log" || die "state $s started without 'ephemeral_crypt: ready' in its log"
    fi
    pg_stop "$d" immediate
    wait $! 2>/dev/null || true
    as_test_user rm -rf "$d"
    awk -v t0="$t0" -v r="$ready" 'BEGIN { printf "%.1f\n", r * 1000 - t0 / 1000000 }'
}
for r in $(seq 1 "$starts"); do
    line=""
    for s in A Cnw Cw; do
        ms=$(measure_start "$s" "$r")
        echo "startup,server_start,$s,$r,ms,$ms,ms" >>"$runs_csv"
        line+=" $s=${ms}ms"
    done
    note "start $r/$starts:$line"
done

########################################################################
step "loading the benchmark data once ($rows rows; pgbench scale $pgb_scale), cloning it for states A, B, C, G"
as_test_user initdb -D "$work/tpl" -A trust -E UTF8 --locale=C >"$work/initdb.log" 2>&1 ||
    { cat "$work/initdb.log" >&2; die "initdb failed"; }
append_conf "$work/tpl" "$(common_conf "${port[T]}" "$work/sock")"
pg_start "$work/tpl" "$work/tpl.log"
psql_on T >/dev/null <<SQL
CREATE TABLE t (id int NOT NULL, k int NOT NULL, pad text NOT NULL);
INSERT INTO t
SELECT g, (hashint4(g) & 2147483647) % greatest($rows / 2, 1), md5(g::text) || md5((g * 7)::text)
FROM generate_series(1, $rows) g;
VACUUM (FREEZE, ANALYZE) t;
SQL
as_test_user pgbench -q -i -s "$pgb_scale" -h "$work/sock" -p "${port[T]}" postgres >"$work/pgbench_init.log" 2>&1 ||
    { cat "$work/pgbench_init.log" >&2; die "pgbench -i failed"; }
psql_on T -c "VACUUM (FREEZE, ANALYZE);" -c "CHECKPOINT;" >/dev/null
table_size=$(scalar T "SELECT pg_size_pretty(pg_table_size('t'))")
setmeta table_size "$table_size"
pg_stop "$work/tpl"
for s in A B C G; do
    as_test_user cp -a "$work/tpl" "$work/data_$s"
    append_conf "$work/data_$s" "port = ${port[$s]}"
    append_conf "$work/data_$s" "$(state_conf "$s")"
done
for s in A B C G; do
    pg_start "$work/data_$s" "$work/server_$s.log"
done

for s in B C G; do
    grep -q 'ephemeral_crypt: ready' "$work/server_$s.log" || die "state $s: no 'ephemeral_crypt: ready' in the log"
    psql_on "$s" -c "CREATE EXTENSION ephemeral_crypt;" >/dev/null
done
[ -z "$(scalar A "SHOW shared_preload_libraries")" ] || die "state A has shared_preload_libraries set"
[ "$(scalar B "SHOW ephemeral_crypt.encrypt_spill_files")" = off ] || die "state B: spill encryption is not off"
[ "$(scalar C "SHOW ephemeral_crypt.encrypt_wal")" = on ] || die "state C: WAL encryption is not on"
[ "$(scalar C "SHOW ephemeral_crypt.spill_cipher")" = aes-256-xts ] || die "state C: spill files are not in XTS"
[ "$(scalar G "SHOW ephemeral_crypt.spill_cipher")/$(scalar G "SHOW ephemeral_crypt.temp_relation_cipher")" = aes-256-gcm/aes-256-gcm ] ||
    die "state G: spill files and temp relations are not in GCM"
note "table t: $table_size; clusters up on ports ${port[A]} (A), ${port[B]} (B), ${port[C]} (C), ${port[G]} (G)"

########################################################################
# SQL workloads. Each runs in a fresh session: untimed SETs, then the timed
# statement(s) under \timing. Every run is preceded by a CHECKPOINT.
half=$((rows / 2))
big=$((rows * 10))
workloads=(sort hashjoin hashagg create_index parallel_hashjoin temp_table)
declare -A wl_title=(
    [sort]="sort (ORDER BY text, spills)"
    [hashjoin]="hash join (spills)"
    [hashagg]="hash aggregate (spills)"
    [create_index]="CREATE INDEX (text)"
    [parallel_hashjoin]="parallel hash join (2 workers)"
    [temp_table_insert]="temp table bulk insert"
    [temp_table_scan]="temp table scan"
)
# Around every timed statement the script reads the CPU time the session's
# backend has used (/proc/self/schedstat, nanoseconds, through pg_read_file)
# and, for parallel workloads, the CPU time of the postmaster's children that
# have exited (utime + stime of reaped children, /proc/<postmaster>/stat,
# clock ticks): parallel workers exit, and are reaped, before the statement
# returns, so that difference is the workers' CPU time.
cpu_mark() {  # parallel? -> SQL on stdout
    echo "SELECT 'cpu ' || split_part(pg_read_file('/proc/self/schedstat'), ' ', 1);"
    [ "$1" = parallel ] && echo "\\! awk '{ print \"reaped\", \$16 + \$17 }' /proc/\$EC_POSTMASTER_PID/stat"
    return 0
}
timed() {  # parallel? statement -> the statement, timed, between CPU marks
    echo "\\timing on"
    echo "$2"
    echo "\\timing off"
    cpu_mark "$1"
}
workload_sql() {  # name -> SQL on stdout
    local serial="SET max_parallel_workers_per_gather = 0;"
    case $1 in
    sort)
        echo "$serial SET work_mem = '64MB';"
        cpu_mark serial
        timed serial "SELECT * FROM t ORDER BY pad OFFSET $big;"
        ;;
    hashjoin)
        echo "$serial SET work_mem = '32MB'; SET enable_mergejoin = off; SET enable_nestloop = off;"
        cpu_mark serial
        timed serial "SELECT count(*), sum(length(b.pad)) FROM t a JOIN t b ON a.id = b.id;"
        ;;
    hashagg)
        echo "$serial SET work_mem = '32MB'; SET enable_sort = off;"
        cpu_mark serial
        timed serial "SELECT count(*) FROM (SELECT k, count(*), max(pad) FROM t GROUP BY k) s;"
        ;;
    create_index)
        echo "SET max_parallel_maintenance_workers = 0; SET maintenance_work_mem = '64MB';"
        echo "DROP INDEX IF EXISTS t_bench_idx;"
        cpu_mark serial
        timed serial "CREATE INDEX t_bench_idx ON t (pad);"
        echo "DROP INDEX t_bench_idx;"
        ;;
    parallel_hashjoin)
        echo "SET max_parallel_workers_per_gather = 2; SET work_mem = '16MB'; SET enable_mergejoin = off;"
        echo "SET enable_nestloop = off; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET enable_parallel_hash = on;"
        cpu_mark parallel
        timed parallel "SELECT count(*), sum(length(b.pad)) FROM t a JOIN t b ON a.id = b.id;"
        ;;
    temp_table)
        echo "$serial SET temp_buffers = '8MB'; CREATE TEMP TABLE tt (LIKE t);"
        cpu_mark serial
        timed serial "INSERT INTO tt SELECT * FROM t WHERE id <= $half;"
        timed serial "SELECT count(*), sum(length(pad)) FROM tt;"
        ;;
    temp_table_insert_only)  # the warm-up's measure of the insert's own cipher time
        echo "$serial SET temp_buffers = '8MB'; CREATE TEMP TABLE tt (LIKE t);"
        cpu_mark serial
        timed serial "INSERT INTO tt SELECT * FROM t WHERE id <= $half;"
        ;;
    esac
}
# The postmaster's children when the cluster is idle (auxiliary processes
# and workers that stay): a parallel workload starts only once a previous
# session's backend has been reaped, so no other process's CPU time lands
# in its window.
children_of() { cat /proc/"$1"/task/*/children 2>/dev/null | wc -w; }
postmaster_pid() { head -1 "$work/data_$1/postmaster.pid"; }
declare -A idle_children
settle_children() {  # state
    local pm
    pm=$(postmaster_pid "$1")
    for _ in $(seq 1 200); do
        [ "$(children_of "$pm")" -le "${idle_children[$1]}" ] && return 0
        sleep 0.05
    done
    note "warning: state $1's postmaster still has $(children_of "$pm") children (idle: ${idle_children[$1]})"
}
# Runs one workload on one state; prints, per timed statement, "ms cpu_ms".
run_workload() {  # state name
    local f="$work/wl_$2.sql"
    [ -f "$f" ] || { workload_sql "$2" >"$f"; chmod 644 "$f"; }
    psql_on "$1" -c "CHECKPOINT;" >/dev/null
    [ "$2" = parallel_hashjoin ] && settle_children "$1"
    EC_POSTMASTER_PID=$(postmaster_pid "$1") psql_on "$1" -At -f "$f" 2>"$work/wl_err" |
        awk -v hz="$(getconf CLK_TCK)" '
            /^Time: / { ms[++n] = $2 }
            /^cpu [0-9]+$/ { cpu[++c] = $2 }
            /^reaped [0-9]+$/ { reaped[++r] = $2 }
            END {
                for (i = 1; i <= n; i++) {
                    used = (cpu[i + 1] - cpu[i]) / 1e6
                    if (r > 0) used += (reaped[i + 1] - reaped[i]) * 1000 / hz
                    printf "%s %.1f\n", ms[i], used
                }
            }' ||
        { cat "$work/wl_err" >&2; die "workload $2 failed on state $1"; }
}
temp_bytes() { scalar "$1" "SELECT sum(temp_bytes) FROM pg_stat_database"; }

# An EC_BENCH_TIMING=1 build: what the processes that ran a workload (its
# backend, its parallel workers) spent inside the cipher calls, from the
# lines each wrote to the state's log as it exited after byte offset $2:
# "nanoseconds bytes lines".
cipher_timing_since() {  # state log_offset
    tail -c +$(($2 + 1)) "$work/server_$1.log" |
        awk '/ephemeral_crypt cipher timing: / {
                 for (i = 1; i < NF; i++) {
                     if ($i == "encrypt_ns" || $i == "decrypt_ns") ns += $(i + 1)
                     if ($i == "encrypt_bytes" || $i == "decrypt_bytes") b += $(i + 1)
                 }
                 n++
             }
             END { printf "%.0f %.0f %d\n", ns, b, n }'
}

# Bytes a state's ciphers processed, all categories: "encrypted decrypted".
cipher_bytes() { scalar "$1" "SELECT sum(bytes_encrypted), sum(bytes_decrypted) FROM ephemeral_crypt_encryption_status()" | tr '|' ' '; }

for s in A B C G; do
    idle_children[$s]=$(children_of "$(postmaster_pid "$s")")
done
step "SQL workloads: warm-up pass (not counted); temp data written (A) and bytes through the cipher (C, G) per workload"
for w in "${workloads[@]}"; do
    for s in A B C G; do
        before=$(temp_bytes "$s")
        if [ "$s" = C ] || [ "$s" = G ]; then read -r enc0 dec0 < <(cipher_bytes "$s"); fi
        log_at=$(stat -c %s "$work/server_$s.log")
        ms=$(run_workload "$s" "$w" | awk '{ print $1 }' | paste -sd' ')
        sleep 1.2  # the backend flushes its statistics at exit
        settle_children "$s"
        after=$(temp_bytes "$s")
        if [ "$s" = A ]; then
            echo "sql,$w,A,0,temp_bytes,$((after - before)),B" >>"$runs_csv"
            note "$w: A ${ms} ms, $(((after - before) / 1048576)) MiB of temp files"
        elif [ "$s" = C ] || [ "$s" = G ]; then
            read -r enc1 dec1 < <(cipher_bytes "$s")
            echo "sql,$w,$s,0,cipher_encrypted,$((enc1 - enc0)),B" >>"$runs_csv"
            echo "sql,$w,$s,0,cipher_decrypted,$((dec1 - dec0)),B" >>"$runs_csv"
            read -r timed_ns timed_bytes timed_lines < <(cipher_timing_since "$s" "$log_at")
            if [ "$timed_lines" -gt 0 ]; then
                echo "sql,$w,$s,0,cipher_ns,$timed_ns,ns" >>"$runs_csv"
                echo "sql,$w,$s,0,cipher_timed_bytes,$timed_bytes,B" >>"$runs_csv"
                note "$w: $s spent $((timed_ns / 1000000)) ms inside the cipher for $((timed_bytes / 1048576)) MiB ($timed_lines report(s))"
            fi
            # The temp table's two statements share one session (the table
            # dies with it), so the insert's cipher time comes from a run of
            # the insert alone, and the scan's is the pair's minus it.
            if [ "$w" = temp_table ] && [ "$timed_lines" -gt 0 ]; then
                log_at=$(stat -c %s "$work/server_$s.log")
                run_workload "$s" temp_table_insert_only >/dev/null
                sleep 1.2
                settle_children "$s"
                read -r insert_ns _ insert_lines < <(cipher_timing_since "$s" "$log_at")
                if [ "$insert_lines" -gt 0 ]; then
                    echo "sql,temp_table_insert,$s,0,cipher_ns,$insert_ns,ns" >>"$runs_csv"
                    echo "sql,temp_table_scan,$s,0,cipher_ns,$((timed_ns - insert_ns)),ns" >>"$runs_csv"
                    note "temp_table: $s's insert alone spent $((insert_ns / 1000000)) ms inside the cipher"
                fi
            fi
            note "$w: $s ${ms} ms, encrypted $(((enc1 - enc0) / 1048576)) MiB, decrypted $(((dec1 - dec0) / 1048576)) MiB"
        fi
    done
done
explain_of() {
    workload_sql "$1" | sed -e '/^\\timing/d' -e '/^\\!/d' -e "/^SELECT 'cpu '/d" -e '/DROP INDEX t_bench_idx;$/d' |
        sed -e 's/^SELECT /EXPLAIN (COSTS OFF) SELECT /' -e 's/^INSERT /EXPLAIN (COSTS OFF) INSERT /'
}
for w in sort hashjoin hashagg parallel_hashjoin; do
    { echo "-- $w"; psql_on A -At < <(explain_of "$w"); } >>"$work/plans.txt" 2>&1 || true
done
grep -q 'Parallel Hash' "$work/plans.txt" || note "warning: the parallel hash join plan has no Parallel Hash node (see $work/plans.txt)"

# Round r runs the states in a rotated order (A B C, B C A, C A B, ...), so no
# state always runs first, or always right after another state's run.
round_order() {  # round states... -> the states, rotated by round - 1
    local r=$1 i
    shift
    local states=("$@")
    for ((i = 0; i < ${#states[@]}; i++)); do
        printf '%s ' "${states[$(((r - 1 + i) % ${#states[@]}))]}"
    done
}

step "SQL workloads: $rounds rounds (the temp table $temp_repeat times per round), the order of A B C G rotated each run"
# The temp table runs temp_repeat times per round, each repeat a sample of
# its own (round "r.k" in runs.csv) with the order rotated again.
for r in $(seq 1 "$rounds"); do
    for w in "${workloads[@]}"; do
        repeats=1
        [ "$w" = temp_table ] && repeats=$temp_repeat
        for k in $(seq 1 "$repeats"); do
            sample=$r
            [ "$repeats" -gt 1 ] && sample=$r.$k
            line=""
            for s in $(round_order $(((r - 1) * repeats + k)) A B C G); do
                mapfile -t times < <(run_workload "$s" "$w")
                names=("$w")
                [ "$w" = temp_table ] && names=(temp_table_insert temp_table_scan)
                [ "${#times[@]}" -eq "${#names[@]}" ] ||
                    die "$w on $s: expected ${#names[@]} timed statement(s), got ${#times[@]}"
                for i in "${!names[@]}"; do
                    read -r ms cpu <<<"${times[$i]}"
                    echo "sql,${names[$i]},$s,$sample,ms,$ms,ms" >>"$runs_csv"
                    echo "sql,${names[$i]},$s,$sample,cpu_ms,$cpu,ms" >>"$runs_csv"
                    line+=" $s=${ms}/${cpu}"
                done
            done
            note "round $sample/$rounds $(printf '%-18s' "$w") wall/CPU ms:$line"
        done
    done
done

########################################################################
step "pgbench TPC-B-like: scale $pgb_scale, $pgb_clients clients, ${pgb_secs}s, $pgb_rounds rounds per synchronous_commit mode, order of A B C rotated"
for r in $(seq 1 "$pgb_rounds"); do
    for sc in on off; do
        line=""
        for s in $(round_order "$r" A B C); do
            psql_on "$s" -c "CHECKPOINT;" >/dev/null
            out=$(as_test_user env PGOPTIONS="-c synchronous_commit=$sc" pgbench -M prepared \
                -c "$pgb_clients" -j 2 -T "$pgb_secs" -h "$work/sock" -p "${port[$s]}" postgres 2>&1) ||
                { echo "$out" >&2; die "pgbench failed on state $s"; }
            tps=$(awk '/^tps = .*without initial connection time/ { print $3 }' <<<"$out")
            lat=$(awk '/^latency average = / { print $4 }' <<<"$out")
            [ -n "$tps" ] && [ -n "$lat" ] || { echo "$out" >&2; die "could not parse pgbench output"; }
            echo "pgbench,sync_commit_$sc,$s,$r,tps,$tps,tps" >>"$runs_csv"
            echo "pgbench,sync_commit_$sc,$s,$r,latency,$lat,ms" >>"$runs_csv"
            line+=" $s=${tps}tps/${lat}ms"
        done
        note "round $r/$pgb_rounds synchronous_commit=$sc:$line"
    done
done

# Besides TPS, each run reads the server's CPU per connection: the CPU time
# of the postmaster's reaped children (utime + stime, /proc/<postmaster>/stat)
# over the run, once every backend has exited, divided by the connections
# made. pgbench shares the two cores, so TPS also moves with the client's
# share of them; the server's CPU per connection is what a fleet pays.
reaped_ticks() { awk '{ print $16 + $17 }' /proc/"$1"/stat; }
step "pgbench -C -S (a new connection for every transaction, as short-lived clients make): $pgb_rounds rounds of ${pgb_secs}s, order rotated"
for r in $(seq 1 "$pgb_rounds"); do
    line=""
    for s in $(round_order "$r" A B C); do
        pm=$(postmaster_pid "$s")
        settle_children "$s"
        ticks_before=$(reaped_ticks "$pm")
        out=$(as_test_user pgbench -C -S -c "$pgb_clients" -j 2 -T "$pgb_secs" -h "$work/sock" -p "${port[$s]}" \
            postgres 2>&1) || { echo "$out" >&2; die "pgbench -C failed on state $s"; }
        settle_children "$s"
        ticks_after=$(reaped_ticks "$pm")
        tps=$(awk '/^tps = / { print $3; exit }' <<<"$out")
        conns=$(awk '/^number of transactions actually processed: / { split($NF, n, "/"); print n[1] }' <<<"$out")
        [ -n "$tps" ] && [ -n "$conns" ] && [ "$conns" -gt 0 ] ||
            { echo "$out" >&2; die "could not parse pgbench -C output"; }
        cpu=$(awk -v a="$ticks_before" -v b="$ticks_after" -v n="$conns" -v hz="$(getconf CLK_TCK)" \
            'BEGIN { printf "%.4f", (b - a) * 1000 / hz / n }')
        echo "pgbench,reconnect,$s,$r,tps,$tps,tps" >>"$runs_csv"
        echo "pgbench,reconnect,$s,$r,server_cpu_per_connection,$cpu,ms" >>"$runs_csv"
        line+=" $s=${tps}tps/${cpu}ms"
    done
    note "round $r/$pgb_rounds reconnect (TPS / server CPU per connection):$line"
done

step "what states C and G encrypted (ephemeral_crypt_encryption_status), and that B encrypted nothing"
for s in B C G; do
    psql_on "$s" -At -F, -c "SELECT category, enabled, files_encrypted, bytes_encrypted, bytes_decrypted, failures, plaintext_fallbacks, cipher, integrity_failures FROM ephemeral_crypt_encryption_status() ORDER BY category" |
        sed "s/^/$s,/" >>"$work/enc_status.csv"
done
sed 's/^/    /' "$work/enc_status.csv"
awk -F, '$1 == "C" && $5 == 0 { bad = bad " " $2 } END { exit bad != "" }' "$work/enc_status.csv" ||
    note "warning: state C encrypted no bytes in some category"

########################################################################
if [ "$profile" = 1 ]; then
    step "profile (where the time goes): perf record -e cpu-clock during one sort on state C, and layer_bench"
    if command -v perf >/dev/null && perf record -e cpu-clock -o "$work/perf.probe" -- true >/dev/null 2>&1; then
        psql_on C -c "CHECKPOINT;" >/dev/null
        runas=()
        [ "$(id -u)" -eq 0 ] && runas=(runuser -u "$EC_TEST_USER" --)
        # The backend's pid comes first in psql's output, so the report can
        # leave out every other process (other servers may share the machine).
        { echo "SELECT pg_backend_pid();"; cat "$work/wl_sort.sql"; } >"$work/wl_sort_pid.sql"
        chmod 644 "$work/wl_sort_pid.sql"
        perf record -e cpu-clock -a -o "$work/perf.sql.data" -- "${runas[@]}" \
            psql -X -q -h "$work/sock" -p "${port[C]}" -d postgres -At -f "$work/wl_sort_pid.sql" \
            >"$work/sort_pid.out" 2>&1 || note "perf record (sort) failed"
        sort_pid=$(grep -m1 -E '^[0-9]+$' "$work/sort_pid.out" || true)
        pid_filter=(--comm postgres)
        [ -n "$sort_pid" ] && pid_filter=(--pid "$sort_pid")
        perf report -i "$work/perf.sql.data" "${pid_filter[@]}" --percentage relative --no-children --sort dso,symbol --percent-limit 1.5 --stdio 2>/dev/null |
            grep -v '^#' | grep -v '^$' | sed 's/[[:space:]]\+-[[:space:]]\+-[[:space:]]*$//; s/[[:space:]]*$//' |
            head -25 >"$work/profile_sql.txt" || true
        perf report -i "$work/perf.sql.data" "${pid_filter[@]}" --percentage relative --no-children --sort dso --stdio 2>/dev/null |
            grep '%' | sed 's/[[:space:]]*$//' | head -8 >"$work/profile_sql_dso.txt" || true
        perf record -e cpu-clock -o "$work/perf.layer.data" -- "$build_dir/layer_bench" \
            --benchmark_filter='BM_Layer.*/1' --benchmark_min_time=0.5 >/dev/null 2>&1 || note "perf record (layer_bench) failed"
        perf report -i "$work/perf.layer.data" --no-children --sort dso,symbol --percent-limit 1.5 --stdio 2>/dev/null |
            grep -v '^#' | grep -v '^$' | sed 's/[[:space:]]*$//' | head -25 >"$work/profile_layer.txt" || true
        sed 's/^/    /' "$work/profile_sql.txt" | head -12
    else
        note "perf is not usable here; skipping the profile"
    fi
fi

########################################################################
step "stopping the servers"
for s in A B C G; do pg_stop "$work/data_$s"; done
setmeta load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
setmeta duration "$(elapsed)"

step "writing $out_dir/RESULTS.md, results.csv, results-runs.csv"
cp "$runs_csv" "$out_dir/results-runs.csv"
python3 "$top/bench/summarize.py" --work "$work" --out "$out_dir" \
    --command "$( [ "$quick" = 1 ] && printf 'BENCH_QUICK=1 ')bash bench/run.sh"
if command -v gnuplot >/dev/null && [ -f "$work/ratios.gp" ]; then
    gnuplot "$work/ratios.gp" >/dev/null 2>&1 && note "chart: $out_dir/ratios.png" || note "gnuplot failed; no chart"
fi
echo
cat "$out_dir/RESULTS.md"
step "done in $(elapsed)"
