#!/usr/bin/env bash
# The periodic attestation's cost to the workloads it runs beside. Two
# clusters cloned from one data directory, both with every category
# encrypted (AES-256-XTS), running the spill (a sort past work_mem) and the
# temp-table (insert, then scan) workloads alternately, the order swapped
# each round:
#   C  ephemeral_crypt.attestation_interval = 0 (the baseline of this run)
#   T  ephemeral_crypt.attestation_interval = $BENCH_ATTEST_INTERVAL (100ms):
#      the policy worker re-checks everything ten times a second, scan of the
#      data directory included, while the workload runs
# Each statement's backend CPU time (/proc/self/schedstat, read through
# pg_read_file before and after) and wall time are recorded; the report
# gives the medians and the T/C ratios, per workload, and the worker's CPU
# per run (ephemeral_crypt_attestation().cpu_ms over every run sampled, and
# the worker's own /proc/PID/schedstat over the whole benchmark divided by
# the runs it made). A benchmark, never a test: nothing is checked.
#
#   bash bench/attestation.sh                                # 7 rounds
#   BENCH_ATTEST_ROUNDS=2 BENCH_ATTEST_ROWS=100000 bash bench/attestation.sh   # smoke
#
# Run as root (servers run as $EC_TEST_USER via runuser) or unprivileged.
# Uses the extension installed in PostgreSQL's libdir.
set -euo pipefail
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"

rounds=${BENCH_ATTEST_ROUNDS:-7}
rows=${BENCH_ATTEST_ROWS:-1000000}
interval=${BENCH_ATTEST_INTERVAL:-100ms}
port_base=${BENCH_PORT_BASE:-55495}
out=${BENCH_ATTEST_OUT:-$(mktemp -d /tmp/ephemeral_crypt-attestation.XXXXXX)/ATTESTATION.md}
mkdir -p "$(dirname "$out")"
work=$(mktemp -d /tmp/ephemeral_crypt-attestation-run.XXXXXX)
chmod 755 "$work"
[ "$(id -u)" -eq 0 ] && chown "$EC_TEST_USER" "$work"
cleanup() {
    local state
    for state in C T; do
        as_test_user pg_ctl -D "$work/$state" -m immediate stop >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

declare -A port=([C]=$port_base [T]=$((port_base + 1)))
as_test_user initdb -D "$work/template" -A trust >/dev/null
for state in C T; do
    as_test_user cp -a "$work/template" "$work/$state"
    {
        echo "port = ${port[$state]}"
        echo "unix_socket_directories = '$work'"
        echo "listen_addresses = ''"
        echo "shared_buffers = 256MB"
        echo "max_wal_size = 4GB"
        echo "autovacuum = off"
        echo "jit = off"
        echo "max_parallel_workers_per_gather = 0"
        echo "shared_preload_libraries = 'ephemeral_crypt'"
        echo "ephemeral_crypt.encrypt_temp_relations = on"
        echo "ephemeral_crypt.encrypt_spill_files = on"
        echo "ephemeral_crypt.encrypt_wal = on"
        if [ $state = T ]; then
            echo "ephemeral_crypt.attestation_interval = '$interval'"
        fi
    } | as_test_user tee -a "$work/$state/postgresql.conf" >/dev/null
    as_test_user pg_ctl -D "$work/$state" -l "$work/$state.log" -w start >/dev/null
done

psql_at() { as_test_user psql -h "$work" -p "${port[$1]}" -XAtq -d postgres "${@:2}"; }
for state in C T; do
    psql_at $state -c "CREATE EXTENSION ephemeral_crypt" \
        -c "CREATE TABLE t AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS pad FROM generate_series(1, $rows) g" \
        -c "VACUUM ANALYZE t" >/dev/null
done

cpu_mark="SELECT 'cpu ' || split_part(pg_read_file('/proc/self/schedstat'), ' ', 1);"
workload_sql() {  # name
    case $1 in
    spill)
        echo "SET work_mem = '4MB';"
        echo "$cpu_mark"
        echo '\timing on'
        echo "SELECT * FROM t ORDER BY pad OFFSET $rows;"
        echo '\timing off'
        echo "$cpu_mark"
        ;;
    temp_table)
        echo "SET temp_buffers = '8MB'; CREATE TEMP TABLE tt (LIKE t);"
        echo "$cpu_mark"
        echo '\timing on'
        echo "INSERT INTO tt SELECT * FROM t;"
        echo "SELECT count(*), sum(length(pad)) FROM tt;"
        echo '\timing off'
        echo "$cpu_mark"
        ;;
    esac
}
# One run: "wall_ms cpu_ms" of the workload's timed statements together.
run_workload() {  # state name
    workload_sql "$2" >"$work/wl_$2.sql"
    chmod 644 "$work/wl_$2.sql"
    psql_at "$1" -c "CHECKPOINT" >/dev/null
    psql_at "$1" -f "$work/wl_$2.sql" |
        awk '/^Time: / { ms += $2 } /^cpu [0-9]+$/ { cpu[++c] = $2 }
             END { printf "%.1f %.1f\n", ms, (cpu[2] - cpu[1]) / 1e6 }'
}
# The worker has no database connection, so no pg_stat_activity row: it is
# found among the postmaster's children by its process title.
worker_pid() {
    local pm child
    pm=$(head -1 "$work/T/postmaster.pid")
    for child in $(cat /proc/"$pm"/task/*/children); do
        grep -q 'ephemeral_crypt policy' "/proc/$child/cmdline" 2>/dev/null && { echo "$child"; return; }
    done
}
worker_ns() { awk '{ print $1 }' "/proc/$(worker_pid)/schedstat"; }
attest_runs_sample() {  # appends the last run's "last_run cpu_ms duration_ms files" to the samples
    psql_at T -c "SELECT last_run, cpu_ms, duration_ms, files_scanned, bool_and(passed) OVER ()
                    FROM ephemeral_crypt_attestation() LIMIT 1" >>"$work/attest_samples"
}
: >"$work/attest_samples"
: >"$work/runs"

# Warm-up, not counted.
for state in C T; do for w in spill temp_table; do run_workload $state $w >/dev/null; done; done
worker_before=$(worker_ns)
t0=$(date +%s.%N)
for round in $(seq 1 "$rounds"); do
    order="C T"
    [ $((round % 2)) = 0 ] && order="T C"
    for w in spill temp_table; do
        line=""
        for state in $order; do
            read -r ms cpu < <(run_workload $state $w)
            echo "$w $state $round $ms $cpu" >>"$work/runs"
            line+=" $state=${ms}ms/${cpu}ms"
            [ $state = T ] && attest_runs_sample
        done
        echo "round $round $w wall/CPU:$line"
    done
done
t1=$(date +%s.%N)
worker_after=$(worker_ns)
# Runs made over the timed part: the interval's runs in the elapsed time,
# counted from the distinct last_run values sampled is a lower bound; the
# worker's CPU over the elapsed time divided by elapsed/interval is the
# per-run figure below.
interval_ms=$(psql_at T -c "SELECT setting::int FROM pg_settings WHERE name = 'ephemeral_crypt.attestation_interval'")
failing=$(psql_at T -c "SELECT count(*) FILTER (WHERE NOT passed) FROM ephemeral_crypt_attestation()")

python3 - "$work/runs" "$work/attest_samples" "$worker_before" "$worker_after" "$t0" "$t1" \
    "$interval_ms" "$rounds" "$rows" "$failing" "$(postgres --version)" <<'PY' | tee "$out"
import statistics, sys
runs_file, samples_file, wb, wa, t0, t1, interval_ms, rounds, rows, failing, version = sys.argv[1:]
runs = {}
for line in open(runs_file):
    w, s, r, ms, cpu = line.split()
    runs.setdefault((w, s), []).append((float(ms), float(cpu)))
elapsed_s = float(t1) - float(t0)
worker_ms = (int(wa) - int(wb)) / 1e6
expected_runs = elapsed_s * 1000 / int(interval_ms)
samples = [l.split('|') for l in open(samples_file) if l.strip()]
cpu_samples = [float(s[1]) for s in samples]
dur_samples = [float(s[2]) for s in samples]
files = [int(s[3]) for s in samples]
print("# Attestation beside the spill and temp-table workloads\n")
print(f"{version}; {rounds} rounds of each workload per state on {rows} rows, order swapped each round;"
      f" T attests every {interval_ms} ms (+/- 10 %), C not at all. Ratios are T/C medians.\n")
print("| workload | C wall ms | T wall ms | wall T/C | C backend CPU ms | T backend CPU ms | CPU T/C | CPU T/C min-max (pairwise) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for w in ("spill", "temp_table"):
    c = runs[(w, "C")]; t = runs[(w, "T")]
    cw = statistics.median(x[0] for x in c); tw = statistics.median(x[0] for x in t)
    cc = statistics.median(x[1] for x in c); tc = statistics.median(x[1] for x in t)
    pair = [b[1] / a[1] for a, b in zip(c, t) if a[1] > 0]
    print(f"| {w} | {cw:.1f} | {tw:.1f} | {tw / cw:.3f} | {cc:.1f} | {tc:.1f} | {tc / cc:.3f} | "
          f"{min(pair):.3f}-{max(pair):.3f} |")
print()
print(f"The policy worker: {worker_ms:.1f} ms of CPU over {elapsed_s:.1f} s, about {expected_runs:.0f} runs at the"
      f" interval: {worker_ms / max(expected_runs, 1):.2f} ms of CPU per run"
      f" ({100 * worker_ms / 1000 / elapsed_s:.2f} % of one core).")
if cpu_samples:
    print(f"Per run as ephemeral_crypt_attestation() reports it ({len(cpu_samples)} samples):"
          f" CPU median {statistics.median(cpu_samples):.2f} ms (max {max(cpu_samples):.2f}),"
          f" wall median {statistics.median(dur_samples):.2f} ms (max {max(dur_samples):.2f}),"
          f" files scanned {min(files)}-{max(files)}.")
print(f"Checks failing at the end: {failing}.")
PY
echo "report: $out"
