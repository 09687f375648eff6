#!/usr/bin/env bash
# Counts the instructions each serial SQL workload of bench/run.sh executes
# in the backend, under valgrind's callgrind, with the extension not loaded
# (A), loaded with every category off (B), temporary relations and spill
# files encrypted in AES-256-XTS (C) and in AES-256-GCM (G), and writes
# bench/INSTRUCTIONS.md. WAL stays unencrypted in every state, as in
# the runs whose figures these continue, so they compare like with like
# (the runs are single-user backends). An instruction count does not move with
# the other work on the machine, so it shows what the extension adds
# besides the cipher (its own code, extra work in libc and postgres) at a
# precision the CPU-time ratios of a shared machine cannot reach. It is no CPU-time
# figure: cache misses and the kernel's work (valgrind counts user space
# only) are outside it, and valgrind's virtual CPU has no AVX-512 or VAES,
# so the cipher library takes a narrower code path than on the host.
#
#   bash bench/instructions.sh        # about 5 minutes on 2 cores
#
# Each workload runs in a fresh single-user backend (postgres --single) on
# a fresh copy of one scratch cluster, with a scaled-down table
# (BENCH_INSN_ROWS, 300,000 rows) and memory settings scaled down with it,
# so every one still spills. Only the statements' own execution is counted
# (callgrind's collection is on inside standard_ExecutorStart/Run/Finish/End
# and standard_ProcessUtility): the backend's start-up and exit are outside
# it. Uses the extension installed
# in PostgreSQL's libdir, and needs valgrind. Run as root (postgres runs as
# $EC_TEST_USER) or as an unprivileged user.
set -euo pipefail
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"

rows=${BENCH_INSN_ROWS:-300000}
out=${BENCH_INSN_OUT:-$top/bench/INSTRUCTIONS.md}
die() { printf 'bench/instructions.sh: error: %s\n' "$*" >&2; exit 1; }
if ! [[ $rows =~ ^[0-9]+$ ]] || [ "$rows" -lt 10000 ]; then
    die "BENCH_INSN_ROWS must be an integer of at least 10000 (got '$rows')"
fi
command -v valgrind >/dev/null || die "valgrind is not installed"
so="$("$PG_CONFIG" --pkglibdir)/ephemeral_crypt.so"
[ -f "$so" ] || die "$so is not installed (make && make install first)"

work=$(mktemp -d /tmp/ephemeral_crypt-insn.XXXXXX)
[ "${BENCH_INSN_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
[ "$(id -u)" -eq 0 ] && chown "$EC_TEST_USER" "$work"


echo "==> a scratch cluster with table t ($rows rows)"
as_test_user initdb -D "$work/data" -A trust -E UTF8 --locale=C >"$work/initdb.log" 2>&1 ||
    { cat "$work/initdb.log" >&2; die "initdb failed"; }
# One statement per line: single-user mode ends a statement at a newline.
as_test_user postgres --single -D "$work/data" -c jit=off -c autovacuum=off postgres >"$work/load.log" 2>&1 <<SQL || { cat "$work/load.log" >&2; die "loading t failed"; }
CREATE TABLE t (id int NOT NULL, k int NOT NULL, pad text NOT NULL);
INSERT INTO t SELECT g, (hashint4(g) & 2147483647) % greatest($rows / 2, 1), md5(g::text) || md5((g * 7)::text) FROM generate_series(1, $rows) g;
VACUUM (FREEZE, ANALYZE) t;
CHECKPOINT;
SQL

# bench/run.sh's workloads at a tenth of its table, memory settings scaled
# with it (its 64MB, 32MB and 8MB for 3,000,000 rows).
half=$((rows / 2))
big=$((rows * 10))
serial="SET max_parallel_workers_per_gather = 0;"
declare -A workload_sql=(
    [sort]="$serial
SET work_mem = '6MB';
SELECT * FROM t ORDER BY pad OFFSET $big;"
    [hashjoin]="$serial
SET work_mem = '3MB';
SET enable_mergejoin = off;
SET enable_nestloop = off;
SELECT count(*), sum(length(b.pad)) FROM t a JOIN t b ON a.id = b.id;"
    [hashagg]="$serial
SET work_mem = '3MB';
SET enable_sort = off;
SELECT count(*) FROM (SELECT k, count(*), max(pad) FROM t GROUP BY k) s;"
    [create_index]="SET max_parallel_maintenance_workers = 0;
SET maintenance_work_mem = '6MB';
CREATE INDEX t_insn_idx ON t (pad);
DROP INDEX t_insn_idx;"
    [temp_table_insert]="$serial
SET temp_buffers = '800kB';
CREATE TEMP TABLE tt (LIKE t);
INSERT INTO tt SELECT * FROM t WHERE id <= $half;"
)
# The pair is the insert, then a scan (the report's scan row is their difference).
workload_sql[temp_table]="${workload_sql[temp_table_insert]}
SELECT count(*), sum(length(pad)) FROM tt;"
workloads=(sort hashjoin hashagg create_index temp_table_insert temp_table)
categories() {  # temp relations and spill files on|off; WAL always off
    echo "-c shared_preload_libraries=ephemeral_crypt -c ephemeral_crypt.encrypt_temp_relations=$1" \
        "-c ephemeral_crypt.encrypt_spill_files=$1 -c ephemeral_crypt.encrypt_wal=off"
}
declare -A state_options=(
    [A]=""
    [B]="$(categories off)"
    [C]="$(categories on)"
    [G]="$(categories on) -c ephemeral_crypt.temp_relation_cipher=aes-256-gcm -c ephemeral_crypt.spill_cipher=aes-256-gcm"
)
states=(A B C G)

for w in "${workloads[@]}"; do
    for s in "${states[@]}"; do
        printf '==> %-18s %s\n' "$w" "$s"
        profile="$work/cg.$w.$s"
        # Every run starts from the same copy of the cluster, so no run
        # reads what another instance (another key) wrote.
        rm -rf "$work/run"
        as_test_user cp -a "$work/data" "$work/run"
        # shellcheck disable=SC2086 # the state's options are words
        as_test_user valgrind --tool=callgrind --callgrind-out-file="$profile" --collect-atstart=no \
            --toggle-collect=standard_ExecutorStart --toggle-collect=standard_ExecutorRun \
            --toggle-collect=standard_ExecutorFinish --toggle-collect=standard_ExecutorEnd \
            --toggle-collect=standard_ProcessUtility \
            postgres --single -D "$work/run" -c jit=off -c autovacuum=off ${state_options[$s]} postgres \
            <<<"${workload_sql[$w]}" >"$work/run.$w.$s.log" 2>&1 ||
            { tail -30 "$work/run.$w.$s.log" >&2; die "$w on state $s failed"; }
        if grep -q 'ERROR:' "$work/run.$w.$s.log"; then
            grep 'ERROR:' "$work/run.$w.$s.log" >&2
            die "$w on state $s: a statement failed"
        fi
        python3 bench/callgrind_objects.py "$profile" >"$work/objects.$w.$s.tsv"
    done
done

python3 - "$work" "$out" "$rows" "$(postgres --version)" "$(sha256sum "$so" | cut -c1-16)" \
    "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$(valgrind --version)" "${workloads[*]}" <<'PY'
import os
import sys

work, out, rows, pg_version, so_sha, git_rev, valgrind, workload_list = sys.argv[1:9]
workloads = workload_list.split()
title = {
    "sort": "sort, `ORDER BY` text, work_mem 6MB",
    "hashjoin": "hash join, work_mem 3MB",
    "hashagg": "hash aggregate, work_mem 3MB",
    "create_index": "`CREATE INDEX` on text, maintenance_work_mem 6MB",
    "temp_table_insert": "temp table bulk insert, temp_buffers 800kB",
    "temp_table_scan": "temp table scan (insert and scan, minus the insert)",
}


def kind(obj):
    base = os.path.basename(obj)
    if base.startswith("libgcrypt"):
        return "cipher"
    if base.startswith("ephemeral_crypt"):
        return "extension"
    if base.startswith("libc.so"):
        return "libc"
    if base == "postgres":
        return "postgres"
    return "other"


def load(w, s):
    by_kind = {"cipher": 0, "extension": 0, "libc": 0, "postgres": 0, "other": 0}
    with open(os.path.join(work, f"objects.{w}.{s}.tsv")) as f:
        for line in f:
            obj, _, ir = line.rstrip("\n").rpartition("\t")
            if obj != "total":
                by_kind[kind(obj)] += int(ir)
    by_kind["total"] = sum(by_kind.values())
    return by_kind


counts = {(w, s): load(w, s) for w in workloads for s in "ABCG"}
for s in "ABCG":  # the scan: the pair's counts minus the insert's
    pair, ins = counts[("temp_table", s)], counts[("temp_table_insert", s)]
    counts[("temp_table_scan", s)] = {k: pair[k] - ins[k] for k in pair}
with open(os.path.splitext(out)[0] + ".csv", "w") as f:  # for bench/summarize.py's beyond-the-cipher verdicts
    f.write("workload,state,total,cipher,extension,libc,postgres,other\n" + "".join(f"{w},{s}," + ",".join(str(c[k]) for k in ("total", "cipher", "extension", "libc", "postgres", "other")) + "\n" for (w, s), c in counts.items()))
# The report has the scan where the runs have the pair.
rows_out = ["temp_table_scan" if w == "temp_table" else w for w in workloads]

md = ["# ephemeral_crypt: instructions per workload", ""]
md.append(f"Produced by `bash bench/instructions.sh` ({valgrind}, callgrind) with {pg_version}; extension "
          f"ephemeral_crypt.so sha256 {so_sha}…, repository at {git_rev}. Table `t`: {int(rows):,} rows.")
md.append("")
md.append("Instructions the backend executed (user space; callgrind's collection on inside the executor's "
          "four phases and `standard_ProcessUtility`), each workload in a fresh single-user backend. **A** "
          "not loaded, **B** loaded with every category off, **C** temporary relations and spill files "
          "encrypted in AES-256-XTS, **G** the same in AES-256-GCM; WAL unencrypted in all four (a "
          "single-user backend cannot run with WAL encryption). \"Cipher\" is "
          "libgcrypt; \"extension\" is ephemeral_crypt.so; \"beyond the cipher\" is (state − A − the "
          "state's cipher instructions) / A: what encryption adds in instructions besides the cipher. An "
          "instruction count is no CPU time (it leaves out cache misses and the kernel, and valgrind's "
          "virtual CPU has neither AVX-512 nor VAES, so libgcrypt runs a narrower path than on the host); "
          "it is exact, where the CPU-time ratios of `bench/RESULTS.md` carry the machine's noise.")
md.append("")
md.append("| workload | A, instructions | B / A | C / A | C: cipher | C: extension | C: libc + postgres − A's | "
          "C beyond the cipher | G / A | G beyond the cipher |")
md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for w in rows_out:
    a, b, c, g = (counts[(w, s)] for s in "ABCG")
    base = a["total"]
    rest = (c["libc"] + c["postgres"]) - (a["libc"] + a["postgres"])
    md.append(f"| {title[w]} | {base:,} | {b['total'] / base:.4f}× | {c['total'] / base:.4f}× | "
              f"{c['cipher'] / base:+.2%} | {c['extension'] / base:+.2%} | {rest / base:+.2%} | "
              f"{(c['total'] - base - c['cipher']) / base:+.2%} | {g['total'] / base:.4f}× | "
              f"{(g['total'] - base - g['cipher']) / base:+.2%} |")
md.append("")
with open(out, "w") as f:
    f.write("\n".join(md))
print("\n".join(md))
PY
