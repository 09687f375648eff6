#!/usr/bin/env bash
# Archiving under WAL encryption: what staging each segment for
# archive_command costs. Two clusters from one initdb, each running pgbench
# (WAL-heavy: TPC-B with full-page writes, synchronous_commit off) for the same time while
# archive_command = cp copies every finished segment into a directory:
#   A  the extension not loaded
#   C  every category encrypted, WAL included; the archiver decrypts each
#      segment into ephemeral_crypt.wal_staging_directory (tmpfs) and the
#      command copies that
# For each it reports the segments archived per second of the run, and the
# archiver process's own CPU time (utime + stime, from /proc: the staging
# decryption and copy happen there; cp's time is its child's) per segment,
# and the ratio C/A. The rounds alternate A and C. A benchmark, never a test:
# nothing is checked, the figures go to stdout and $BENCH_ARCHIVE_OUT.
#
#   bash bench/archiving.sh                        # 3 rounds of 30 s
#   BENCH_ARCHIVE_ROUNDS=1 BENCH_ARCHIVE_SECONDS=5 bash bench/archiving.sh   # smoke
#
# Run as root (servers run as $EC_TEST_USER via runuser) or unprivileged.
# Uses the extension installed in PostgreSQL's libdir.
set -euo pipefail
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"

rounds=${BENCH_ARCHIVE_ROUNDS:-3}
seconds=${BENCH_ARCHIVE_SECONDS:-30}
port_base=${BENCH_PORT_BASE:-55490}
out=${BENCH_ARCHIVE_OUT:-$(mktemp -d /tmp/ephemeral_crypt-archiving.XXXXXX)/ARCHIVING.md}
work=$(mktemp -d /tmp/ephemeral_crypt-archiving-run.XXXXXX)
staging=$(mktemp -d /dev/shm/ephemeral_crypt-bench.XXXXXX)
[ "$(id -u)" -eq 0 ] && chown "$EC_TEST_USER" "$work" "$staging"
pids=()
cleanup() {
    local state
    for state in A C; do
        as_test_user pg_ctl -D "$work/$state" -m immediate stop >/dev/null 2>&1 || true
    done
    rm -rf "$work" "$staging"
}
trap cleanup EXIT

as_test_user initdb -D "$work/template" -A trust >/dev/null
for state in A C; do
    port=$((port_base + $([ $state = A ] && echo 0 || echo 1)))
    as_test_user cp -a "$work/template" "$work/$state"
    as_test_user mkdir "$work/archive-$state"
    {
        echo "port = $port"
        echo "unix_socket_directories = '$work'"
        echo "listen_addresses = ''"
        echo "shared_buffers = 128MB"
        echo "max_wal_size = 1GB"
        echo "synchronous_commit = off"  # WAL-heavy: the archiver, not fsync, is measured
        echo "archive_mode = on"
        echo "archive_command = 'cp %p $work/archive-$state/%f'"
        if [ $state = C ]; then
            echo "shared_preload_libraries = 'ephemeral_crypt'"
            echo "ephemeral_crypt.encrypt_wal = on"
            echo "ephemeral_crypt.wal_staging_directory = '$staging'"
        fi
    } | as_test_user tee -a "$work/$state/postgresql.conf" >/dev/null
    as_test_user pg_ctl -D "$work/$state" -l "$work/$state.log" -w start >/dev/null
    as_test_user pgbench -h "$work" -p "$port" -i -s 5 -q postgres >/dev/null 2>&1
done

psql_at() { as_test_user psql -h "$work" -p "$1" -XAtq -d postgres -c "$2"; }
# The archiver's CPU time so far, in nanoseconds (/proc/PID/schedstat's
# first field: finer than utime + stime's clock ticks).
archiver_ns() {
    local pid
    pid=$(psql_at "$1" "SELECT pid FROM pg_stat_activity WHERE backend_type = 'archiver'")
    awk '{ print $1 }' "/proc/$pid/schedstat"
}
now() { date +%s.%N; }
calc() { awk "BEGIN { x = $1; if (x == \"\") x = 0; printf \"%.${2:-2}f\", x }"; }

declare -A segments cpu elapsed
for state in A C; do segments[$state]=0; cpu[$state]=0; elapsed[$state]=0; done
for round in $(seq 1 "$rounds"); do
    for state in A C; do
        port=$((port_base + $([ $state = A ] && echo 0 || echo 1)))
        psql_at "$port" "SELECT pg_switch_wal()" >/dev/null
        before_count=$(psql_at "$port" "SELECT archived_count FROM pg_stat_archiver")
        before_cpu=$(archiver_ns "$port")
        t0=$(now)
        as_test_user pgbench -h "$work" -p "$port" -n -c 2 -j 2 -T "$seconds" postgres >/dev/null 2>&1
        psql_at "$port" "SELECT pg_switch_wal()" >/dev/null
        # Until the archiver has caught up (bounded).
        for _ in $(seq 1 600); do
            [ "$(psql_at "$port" "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'")" = 0 ] && break
            sleep 0.1
        done
        t1=$(now)
        after_count=$(psql_at "$port" "SELECT archived_count FROM pg_stat_archiver")
        after_cpu=$(archiver_ns "$port")
        segments[$state]=$((segments[$state] + after_count - before_count))
        cpu[$state]=$((cpu[$state] + after_cpu - before_cpu))
        elapsed[$state]=$(calc "${elapsed[$state]} + $t1 - $t0" 3)
        echo "round $round $state: $((after_count - before_count)) segments, archiver CPU $(calc "($after_cpu - $before_cpu) / 1e6" 1) ms"
    done
done

failed_c=$(psql_at $((port_base + 1)) "SELECT failed_count FROM pg_stat_archiver")
rate() { calc "${segments[$1]} / ${elapsed[$1]}"; }
per_segment_ms() { calc "${segments[$1]} > 0 ? ${cpu[$1]} / 1e6 / ${segments[$1]} : 0" 3; }
{
    echo "# Archiving under WAL encryption"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $(postgres --version), $rounds round(s) of pgbench for ${seconds} s per state, archive_command = cp."
    echo
    echo "| state | segments archived | per second | archiver CPU per segment (ms) |"
    echo "|---|---:|---:|---:|"
    for state in A C; do
        echo "| $state | ${segments[$state]} | $(rate $state) | $(per_segment_ms $state) |"
    done
    echo
    echo "C/A archiver CPU per segment: $(calc "$(per_segment_ms A) > 0 ? $(per_segment_ms C) / $(per_segment_ms A) : 0")x;" \
        "added per 16 MB segment: $(calc "$(per_segment_ms C) - $(per_segment_ms A)" 3) ms" \
        "(one decryption and one copy into tmpfs). Failed archive commands in C: $failed_c."
} | tee "$out"
echo "report: $out"
