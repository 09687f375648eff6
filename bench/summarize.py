#!/usr/bin/env python3
"""Turns the raw runs of bench/run.sh into RESULTS.md, results.csv and (for
gnuplot) a ratio chart script. Called by bench/run.sh; not meant to be run
alone, though it can be re-run on a kept scratch directory (BENCH_KEEP=1):
    python3 bench/summarize.py --work /tmp/ephemeral_crypt-bench.XXXXXX --out bench --again
"""
import argparse
import csv
import json
import os
import random
import statistics
import sys
from collections import defaultdict

ap = argparse.ArgumentParser()
ap.add_argument("--work", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--command", default="bash bench/run.sh")
ap.add_argument("--again", action="store_true",
                help="say in the report that it was summarised again from a kept run's files")
args = ap.parse_args()
W, OUT = args.work, args.out

meta = {}
with open(os.path.join(W, "meta.env")) as f:
    for line in f:
        k, _, v = line.rstrip("\n").partition("\t")
        meta[k] = v

runs = defaultdict(list)  # (section, workload, state, metric) -> [values]
by_round = defaultdict(dict)  # same key -> {round: value}
with open(os.path.join(W, "runs.csv")) as f:
    for row in csv.DictReader(f):
        key = (row["section"], row["workload"], row["state"], row["metric"])
        runs[key].append(float(row["value"]))
        by_round[key][row["round"]] = float(row["value"])

MB = 1e6  # throughput figures are in decimal megabytes, as openssl speed prints them
LABEL = {"A": "not loaded", "B": "loaded, all off", "C": "loaded, all on (WAL too)",
         "G": "loaded, all on, GCM for spill and temp relations",
         "Cnw": "loaded, all on except WAL", "Cw": "loaded, all on incl. WAL"}
csv_rows = []  # section,item,state,median,min,max,unit,ratio,ratio_basis,target,verdict


def med(v):
    return statistics.median(v) if v else float("nan")


def verdict(ok):
    return "PASS" if ok else "MISS"


def bootstrap_ci(keys, statistic, rounds=2000, level=0.90):
    """Bootstrap interval of statistic(median of each key's runs), resampling
    whole rounds so each resample keeps the states' runs of one round
    together. Seeded, so re-summarising the same runs gives the same
    interval."""
    series = [by_round.get(k, {}) for k in keys]
    common = sorted(set.intersection(*(set(x) for x in series)) - {"0"})
    if len(common) < 3:
        return None
    rng = random.Random(20261122)
    values = []
    for _ in range(rounds):
        pick = [rng.choice(common) for _ in common]
        values.append(statistic(*(med([x[r] for r in pick]) for x in series)))
    values.sort()
    tail = (1 - level) / 2
    return values[int(tail * rounds)], values[int((1 - tail) * rounds) - 1]


def ratio_ci(key, base_key, rounds=2000, level=0.90):
    """Bootstrap interval of median(key)/median(base_key)."""
    return bootstrap_ci([key, base_key], lambda x, b: x / b, rounds, level)


def noisy_verdict(ratio, ci, target, higher_is_better):
    """PASS when the median ratio meets the target; MISS when even the
    favourable end of its 90% interval does not; otherwise UNCLEAR: this run's
    noise cannot tell a miss from a pass."""
    meets = (lambda x: x >= target) if higher_is_better else (lambda x: x <= target)
    if meets(ratio):
        return "PASS"
    if ci is None:
        return "MISS"
    favourable = ci[1] if higher_is_better else ci[0]
    return "UNCLEAR" if meets(favourable) else "MISS"


def fmt_ci(ci):
    return f"{ci[0]:.3f}–{ci[1]:.3f}" if ci else "—"


def fmt(x, nd=2):
    return f"{x:,.{nd}f}"


md = []
md.append("# ephemeral_crypt performance results")
md.append("")
quick = meta.get("quick") == "1"
if quick:
    md.append("**Smoke run (BENCH_QUICK=1): tiny data, one round. Not figures to quote.**")
    md.append("")
md.append(f"Produced by `{args.command}` on {meta['date']} in {meta['duration']} "
          "(wall clock, including building the benchmark programs and loading the data)." +
          (" Summarised again from the same runs by a later `bench/summarize.py`, so sections added "
           "since the run are computed from its samples." if args.again else ""))
md.append("")
md.append("## Machine")
md.append("")
md.append("| | |")
md.append("|---|---|")
md.append(f"| CPU | {meta['cpu_model']}, {meta['cores']} cores, {meta['mem']} RAM |")
md.append(f"| CPU flags | aes: {meta['cpu_aes']}, vaes: {meta['cpu_vaes']}, avx512f: {meta['cpu_avx512f']} |")
md.append(f"| kernel | {meta['kernel']} |")
md.append(f"| PostgreSQL | {meta['pg_version']} |")
md.append(f"| OpenSSL | {meta['openssl_version']} |")
md.append(f"| extension | installed ephemeral_crypt.so sha256 {meta['so_sha']}… (built {meta['so_mtime']}), "
          f"repository at {meta['git_rev']} |")
md.append(f"| scratch | /tmp ({meta['tmp_fs']}); the data fits in the page cache |")
md.append(f"| load average | {meta['load_start']} at start, {meta['load_end']} at end "
          "(other sessions may share this machine) |")
md.append("")

def bench_medians(path, counter="bytes_per_second"):
    out = {}
    with open(path) as f:
        data = json.load(f)
    for b in data.get("benchmarks", []):
        if counter not in b:
            continue
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") == "median":
            out[b["run_name"]] = b[counter]
        elif b.get("run_type") == "iteration" and b["run_name"] not in out:
            out.setdefault(b["run_name"], b[counter])
    return out, data.get("context", {})


eng, ctx = bench_medians(os.path.join(W, "engine.json"))
gcm_path = os.path.join(W, "gcm.json")
gcm_libs = bench_medians(gcm_path)[0] if os.path.exists(gcm_path) else {}



opens, _ = bench_medians(os.path.join(W, "engine.json"), "items_per_second")

# ---------------------------------------------------------------- SQL
rows = int(meta["rows"])
timing_build = any(k[3] == "cipher_ns" for k in runs)
md.append("## SQL workloads (lower is better)")
md.append("")
temp_repeat = int(meta.get("temp_repeat", "1"))
temp_repeat_note = (f" The temporary table, whose statements are short, runs {temp_repeat} times per round, "
                    f"the order rotated again for each; every run is a sample of its own, so its rows rest on "
                    f"{temp_repeat * int(meta['rounds'])} runs per state." if temp_repeat > 1 else "")
md.append(f"One cluster configuration (shared_buffers 256MB, jit off, autovacuum off, C locale), "
          f"clusters cloned from one data directory: **A** not loaded, **B** loaded with "
          f"`encrypt_temp_relations`, `encrypt_spill_files`, `encrypt_wal` all off, **C** loaded with all "
          f"three on (AES-256-XTS), **G** as C with temporary relations and spill files in AES-256-GCM "
          f"(`temp_relation_cipher`, `spill_cipher`; WAL stays XTS). Table `t`: {rows:,} rows ({meta['table_size']}). One warm-up pass, then "
          f"{meta['rounds']} rounds per workload, the order of A B C G rotated each round, each run in a fresh "
          f"session after a CHECKPOINT." + temp_repeat_note)
md.append("")
md.append("- **Wall** is psql's `\\timing`. **CPU** is the CPU time the statement cost the server: the "
          "session's backend's run time from `/proc/self/schedstat` (read with `pg_read_file` just before and "
          "just after the statement, nanoseconds), plus, for the parallel workload, the user and system time "
          "of the postmaster's children that exited meanwhile (`/proc/<postmaster>/stat`, clock ticks): the "
          "parallel workers, which exit and are reaped before the statement returns. The verdict uses the "
          "CPU ratio, which moves far less than wall time on a shared machine.")
md.append("- Ratio = median / median of A, with a 90% bootstrap interval over rounds. **PASS**: the median "
          "ratio meets the target; **MISS**: even the favourable end of the interval does not; **UNCLEAR**: "
          "this run cannot tell.")
if timing_build:
    md.append("- **Cipher floor** = 1 + the time spent inside the cipher calls in state C during that workload "
              "(the `EC_BENCH_TIMING=1` build's per-process totals, written to the server log as each process "
              "exits) over A's median CPU time: what the cipher alone adds, at its in-server speed.")
else:
    md.append("- **Cipher floor** = 1 + the bytes state C encrypted and decrypted in that workload (its "
              "counters, read around the warm-up run) at the engine's benchmark speed (below), over A's median "
              "CPU time. The installed library is not an `EC_BENCH_TIMING=1` build, so the in-server speed "
              "is not known here; the floor is then a lower bound of the cipher's in-server cost. Zero-filled "
              "pages and WAL are counted but stored as zeros without cipher work.")
md.append("- **Beyond the cipher** = C's CPU ratio − the cipher floor: what encryption costs besides the "
          "cipher itself. Targets: CPU ratio ≤ 1.03× (where the floor alone exceeds 1.02, the next target "
          "governs instead, and the row says so), and beyond the cipher ≤ 0.01.")
md.append("")
md.append("| workload | temp files | state | wall median | CPU median | wall ratio | CPU ratio | 90% interval | cipher floor | beyond the cipher | verdict |")
md.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
SQL = [("sort", "sort, `ORDER BY` text, work_mem 64MB"),
       ("hashjoin", "hash join, work_mem 32MB, spills"),
       ("hashagg", "hash aggregate, work_mem 32MB, spills"),
       ("create_index", "`CREATE INDEX` on text, maintenance_work_mem 64MB"),
       ("parallel_hashjoin", "parallel hash join, 2 workers, work_mem 16MB"),
       ("temp_table_insert", f"temp table bulk insert ({rows // 2:,} rows, temp_buffers 8MB)"),
       ("temp_table_scan", "temp table full scan")]
chart = []          # (panel, item, state, ratio, ci, target)
spill_mib = {}


# The engine benchmarks whose speeds stand for a state's cipher when the
# build does not time it in-server. G: GCM's reads can only be measured over
# an in-memory file (they need real tags), so its rates include a copy and
# its floor is an upper bound.
ENGINE_RATES = {"C": ("BM_EngineWrite8K", "BM_EngineRead8K"),
                "G": ("BM_EngineWrite8K_Gcm_MemoryFile", "BM_EngineRead8K_Gcm_MemoryFile")}


def cipher_seconds(cw, state="C"):
    """Seconds the state's ciphers spent on workload cw: measured in-server
    when the build records it, else its bytes at the engine's benchmark
    speed."""
    ns = runs.get(("sql", cw, state, "cipher_ns"))
    if ns:
        return ns[0] / 1e9
    enc = runs.get(("sql", cw, state, "cipher_encrypted"))
    dec = runs.get(("sql", cw, state, "cipher_decrypted"))
    write, read = ENGINE_RATES[state]
    if enc and dec and write in eng and read in eng:
        return enc[0] / eng[write] + dec[0] / eng[read]
    return None


def sql_row(w, title, floor):
    base_wall = med(runs[("sql", w, "A", "ms")])
    base_cpu = med(runs[("sql", w, "A", "cpu_ms")])
    tb = runs.get(("sql", "temp_table" if w.startswith("temp_table") else w, "A", "temp_bytes"))
    if tb and tb[0] > 0:
        spill = f"{tb[0] / 1048576:,.0f} MiB"
        spill_mib[w] = tb[0] / 1048576
    elif w.startswith("temp_table"):
        spill = "temp relation"
    else:
        spill = "0"
    for s in "ABCG":
        wall, cpu = runs[("sql", w, s, "ms")], runs[("sql", w, s, "cpu_ms")]
        if not wall:
            continue
        wr = med(wall) / base_wall
        cr = med(cpu) / base_cpu if cpu else float("nan")
        ci = ver = beyond = None
        note = ""
        if s != "A":
            ci = ratio_ci(("sql", w, s, "cpu_ms"), ("sql", w, "A", "cpu_ms"))
            wci = ratio_ci(("sql", w, s, "ms"), ("sql", w, "A", "ms"))
            if s == "C" and floor:
                beyond = cr - floor
            governs_beyond = s == "C" and floor is not None and floor > 1.02
            if s == "G":
                ver, note = "", "see the GCM section"
            elif governs_beyond:
                bci = (ci[0] - floor, ci[1] - floor) if ci else None
                ver = noisy_verdict(beyond, bci, 0.01, False)
                note = " (floor > 1.02: beyond-the-cipher target governs)"
            else:
                ver = noisy_verdict(cr, ci, 1.03, False)
            chart.append(("time", w, s, wr, wci, 1.03))
            chart.append(("cpu", w, s, cr, ci, 1.03))
            csv_rows.append(["sql", w + "_cpu", s, f"{med(cpu):.1f}", f"{min(cpu):.1f}", f"{max(cpu):.1f}",
                             "ms", f"{cr:.4f}", "median/median(A)", "<=1.03" if s != "G" else "", ver])
            if ci:
                csv_rows.append(["sql", w + "_cpu_ratio_ci90", s, "", f"{ci[0]:.4f}", f"{ci[1]:.4f}",
                                 "ratio", "", "bootstrap over rounds", "", ""])
            if beyond is not None:
                bver = noisy_verdict(beyond, (ci[0] - floor, ci[1] - floor) if ci else None, 0.01, False)
                csv_rows.append(["sql", w + "_beyond_cipher", s, "", "", "", "ratio", f"{beyond:.4f}",
                                 "CPU ratio - cipher floor", "<=0.01", bver])
                csv_rows.append(["sql", w + "_cipher_floor", s, "", "", "", "ratio", f"{floor:.4f}",
                                 "1 + cipher seconds / median CPU(A)", "", ""])
        csv_rows.append(["sql", w, s, f"{med(wall):.1f}", f"{min(wall):.1f}", f"{max(wall):.1f}", "ms",
                         f"{wr:.4f}", "median/median(A), wall", "", ""])
        fl = f"{floor:.3f}×" if (s == "C" and floor) else ""
        bey = f"{beyond:+.3f}" if beyond is not None else ""
        md.append(f"| {title if s == 'A' else ''} | {spill if s == 'A' else ''} | {s}: {LABEL[s]} | "
                  f"{fmt(med(wall) / 1000, 3)} s | {fmt(med(cpu) / 1000, 3) if cpu else '—'} s | "
                  f"{wr:.3f}× | {cr:.3f}× | {fmt_ci(ci) if s != 'A' else ''} | {fl} | {bey} | "
                  f"{(ver or '') + note} |")


for w, title in SQL:
    floor = None
    secs = cipher_seconds(w)
    base_cpu = med(runs[("sql", w, "A", "cpu_ms")])
    # The temp table's statements have cipher times only from a timing build
    # (the warm-up times the insert alone); its byte counters cover both, so
    # without one cipher_seconds has nothing for them.
    if secs is not None and base_cpu == base_cpu:
        floor = 1 + secs * 1000 / base_cpu
    sql_row(w, title, floor)

# The temp table's counters and cipher timings cover its insert and scan
# together, so its floor is the pair's.
secs = cipher_seconds("temp_table")
if secs is not None:
    for s in "ABCG":
        for metric in ("ms", "cpu_ms"):
            ins = by_round.get(("sql", "temp_table_insert", s, metric), {})
            scan = by_round.get(("sql", "temp_table_scan", s, metric), {})
            for r in set(ins) & set(scan):
                by_round[("sql", "temp_table", s, metric)][r] = ins[r] + scan[r]
                runs[("sql", "temp_table", s, metric)].append(ins[r] + scan[r])
    base_cpu = med(runs[("sql", "temp_table", "A", "cpu_ms")])
    sql_row("temp_table", "temp table, insert and scan together", 1 + secs * 1000 / base_cpu)
md.append("")
if runs.get(("sql", "temp_table_insert", "C", "cipher_ns")):
    md.append("The temp table's two statements share one session (the table dies with it): the insert's cipher "
              "time is that of a warm-up run of the insert alone, the scan's the pair's minus it (the scan "
              "decrypts the table and re-encrypts the pages its first read sets hint bits on).")
else:
    md.append("The temp table's insert and scan rows have no cipher floor of their own: its counters cover both "
              "statements (a timing build's warm-up times each), so the floor is given for the pair.")
md.append("")
biggest = max(spill_mib.values()) if spill_mib else 0
if rows < 10_000_000:
    md.append(f"Scaled down from the issue's \"about 1 GiB\" of spilled data so that the whole harness fits in "
              f"under an hour on {meta['cores']} cores: the largest spill here is about {biggest:,.0f} MiB "
              f"(BENCH_SCALE={rows / 1e6:g}, millions of rows; `BENCH_SCALE=10` spills about 1 GiB in the sort, "
              f"and the SQL part's run time grows in proportion).")
    md.append("")

# ---------------------------------------------------------------- resolution
# An interval's half-width shrinks as one over the square root of the
# number of runs, so this run's own spread says how many runs a ±0.01
# interval would take: the precision the beyond-the-cipher target asks for.
RESOLUTION = 0.01
resolution_rows = []
for w, title in SQL + [("temp_table", "temp table, insert and scan together")]:
    base = by_round.get(("sql", w, "A", "cpu_ms"), {})
    for s in "BC":
        mine = by_round.get(("sql", w, s, "cpu_ms"), {})
        n = len((set(base) & set(mine)) - {"0"})
        ci = ratio_ci(("sql", w, s, "cpu_ms"), ("sql", w, "A", "cpu_ms"))
        if ci is None:
            continue
        half = (ci[1] - ci[0]) / 2
        needed = n * (half / RESOLUTION) ** 2
        a = [v for r, v in base.items() if r != "0"]
        cv = statistics.pstdev(a) / statistics.mean(a) if len(a) > 1 else float("nan")
        resolution_rows.append((title, s, n, cv, half, needed))
        csv_rows.append(["resolution", w, s, f"{half:.4f}", "", "", "ratio", f"{needed:.0f}",
                         f"runs per state for a ±{RESOLUTION} 90% interval at this run's spread", "", ""])
if resolution_rows:
    md.append("## What this run can resolve")
    md.append("")
    md.append(f"How precisely this run measures a CPU ratio, from its own runs: A's coefficient of variation "
              f"(standard deviation over mean of its CPU times), the half-width of the 90% interval of B's and "
              f"C's ratio to A, and how many runs per state an interval of ±{RESOLUTION} (the beyond-the-cipher "
              f"target's precision) would take at this spread, the half-width falling as one over the square "
              f"root of the runs. B encrypts nothing, so its width is the machine's noise alone. No target is "
              f"set for these figures; where the runs needed exceed the runs made, a verdict within "
              f"{RESOLUTION} of its target is UNCLEAR by construction.")
    md.append("")
    md.append("| workload | state | runs per state | A's CPU time, CV | 90% interval half-width | runs for ±0.01 |")
    md.append("|---|---|---:|---:|---:|---:|")
    for title, s, n, cv, half, needed in resolution_rows:
        md.append(f"| {title if s == 'B' else ''} | {s} | {n} | {cv:.3f} | ±{half:.3f} | {needed:,.0f} |")
    md.append("")

# ---------------------------------------------------------------- in-server cipher speed
if timing_build:
    md.append("## The cipher inside the server (EC_BENCH_TIMING=1 build; higher is better)")
    md.append("")
    md.append("Nanoseconds spent inside the cipher calls (a monotonic clock read around each data unit's "
              "encryption or decryption; the all-zero shortcut does no cipher work and is not counted) and the "
              "bytes they processed, summed over the processes that ran the warm-up run (its backend and "
              "parallel workers), as each wrote them to the log at exit. The engine column is what the same "
              "bytes would take at `engine_bench`'s speed (write speed for encrypted bytes, read speed for "
              "decrypted), so a ratio below 1 means the cipher runs slower in the server than in the "
              "benchmark loop (cold caches, other work between units). No target is set for this figure.")
    md.append("")
    md.append("| workload | state | bytes through the cipher | time inside it | in-server MB/s | engine_bench MB/s, same mix | in-server / engine |")
    md.append("|---|---|---:|---:|---:|---:|---:|")
    for w, title in SQL + [("temp_table", "temp table, insert and scan together")]:
        for s in "CG":
            ns = runs.get(("sql", w, s, "cipher_ns"))
            tb = runs.get(("sql", w, s, "cipher_timed_bytes"))
            if not ns or not tb or not ns[0]:
                continue
            speed = tb[0] / (ns[0] / 1e9)
            enc = runs.get(("sql", w, s, "cipher_encrypted"), [0])[0]
            dec = runs.get(("sql", w, s, "cipher_decrypted"), [0])[0]
            write, read = ENGINE_RATES[s]
            engine = (enc + dec) / (enc / eng[write] + dec / eng[read]) if (enc + dec) and write in eng and read in eng else None
            md.append(f"| {title} | {s} | {tb[0] / 1048576:,.0f} MiB | {ns[0] / 1e6:,.0f} ms | {speed / MB:,.0f} | "
                      f"{f'{engine / MB:,.0f}' if engine else '—'} | {f'{speed / engine:.3f}×' if engine else '—'} |")
            csv_rows.append(["cipher_in_server", w, s, f"{speed:.0f}", "", "", "B/s",
                             f"{speed / engine:.4f}" if engine else "", "in-server / engine_bench", "", ""])
    md.append("")

# ---------------------------------------------------------------- GCM vs XTS
if any(runs.get(("sql", w, "G", "ms")) for w, _ in SQL):
    md.append("## The authenticated mode: GCM's added cost against XTS's (lower is better)")
    md.append("")
    md.append("Added cost of a state is its median CPU time (as in the SQL section) over A's, minus one: C's "
              "is what AES-256-XTS adds, "
              "G's what AES-256-GCM adds for the same workload in the same run. Target: G's added cost ≤ 2× "
              "C's. The verdict tests G − A ≤ 2 (C − A) on the medians, with a 90% bootstrap interval over "
              "rounds of that difference (in CPU seconds): PASS when it holds, MISS when even the interval's "
              "favourable end misses, UNCLEAR otherwise. The ratio of added costs is shown when C's added "
              "cost is above zero (when it is not, this run cannot measure XTS's cost at all).")
    md.append("")
    md.append("| workload | C vs A | G vs A | XTS added | GCM added | GCM added / XTS added | G − A − 2 (C − A), 90% interval | GCM cipher floor | target | |")
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for w, title in SQL:
        a, c, g = (runs.get(("sql", w, s, "cpu_ms")) for s in "ACG")
        if not (a and c and g):
            continue
        ma, mc, mg = med(a), med(c), med(g)
        xts_added, gcm_added = mc / ma - 1, mg / ma - 1
        excess = (mg - ma) - 2 * (mc - ma)
        ci = bootstrap_ci([("sql", w, s, "cpu_ms") for s in "GAC"], lambda xg, xa, xc: (xg - xa) - 2 * (xc - xa))
        ver = noisy_verdict(excess, ci, 0.0, False)
        rel = f"{gcm_added / xts_added:.2f}×" if xts_added > 0 else "—"
        secs = cipher_seconds(w, "G")
        floor = 1 + secs * 1000 / ma if secs is not None else None
        ci_text = f"{excess / 1000:+.3f} s ({ci[0] / 1000:+.3f} – {ci[1] / 1000:+.3f})" if ci else f"{excess / 1000:+.3f} s"
        md.append(f"| {title} | {mc / ma:.3f}× | {mg / ma:.3f}× | {xts_added * 100:+.1f}% | "
                  f"{gcm_added * 100:+.1f}% | {rel} | {ci_text} | {f'{floor:.3f}×' if floor else ''} | "
                  f"≤ 2× XTS's | {ver} |")
        csv_rows.append(["sql", w + "_gcm_added_vs_xts_added", "G/C", "", "", "", "ratio",
                         f"{gcm_added / xts_added:.4f}" if xts_added > 0 else "",
                         "(median(G)/median(A)-1)/(median(C)/median(A)-1)", "<=2", ver])
        if ci:
            csv_rows.append(["sql", w + "_gcm_excess_ci90", "G", f"{excess:.1f}", f"{ci[0]:.1f}",
                             f"{ci[1]:.1f}", "ms", "", "(G-A)-2(C-A) of CPU time, bootstrap over rounds", "", ""])
    md.append("")

# ---------------------------------------------------------------- pgbench
md.append("## pgbench, TPC-B-like (higher TPS is better)")
md.append("")
md.append(f"Scale {meta['pgb_scale']}, {meta['pgb_clients']} clients, 2 threads, `-M prepared`, "
          f"{meta['pgb_secs']} s per run, {meta['pgb_rounds']} rounds per mode, the order of A B C rotated "
          f"each round, CHECKPOINT before each run. Ratios are of medians, with a 90% bootstrap interval over "
          f"rounds; TPS target for B and C: ≥ 0.98× of A (PASS, MISS and UNCLEAR as above). The last column "
          f"compares C (WAL encrypted) with B (loaded, WAL not encrypted).")
md.append("")
md.append("| synchronous_commit | state | TPS median | TPS min – max | latency median | TPS vs A | 90% interval | latency vs A | target | | C vs B (TPS) |")
md.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
for sc in ("on", "off"):
    w = f"sync_commit_{sc}"
    base_t = med(runs[("pgbench", w, "A", "tps")])
    base_l = med(runs[("pgbench", w, "A", "latency")])
    b_t = med(runs[("pgbench", w, "B", "tps")])
    for s in "ABC":
        t = runs[("pgbench", w, s, "tps")]
        lat = runs[("pgbench", w, s, "latency")]
        if not t:
            continue
        rt, rl = med(t) / base_t, med(lat) / base_l
        ci = None if s == "A" else ratio_ci(("pgbench", w, s, "tps"), ("pgbench", w, "A", "tps"))
        tgt, ver = ("", "") if s == "A" else ("≥ 0.98×", noisy_verdict(rt, ci, 0.98, True))
        cvb = f"{med(t) / b_t:.3f}×" if s == "C" else ""
        if s != "A":
            chart.append(("tps", f"pgbench sync_commit={sc}", s, rt, ci, 0.98))
        md.append(f"| {sc if s == 'A' else ''} | {s}: {LABEL[s]} | {fmt(med(t), 1)} | {fmt(min(t), 1)} – "
                  f"{fmt(max(t), 1)} | {med(lat):.3f} ms | {rt:.3f}× | {fmt_ci(ci) if s != 'A' else ''} | "
                  f"{rl:.3f}× | {tgt} | {ver} | {cvb} |")
        if ci:
            csv_rows.append(["pgbench", f"{w}_tps_ratio_ci90", s, "", f"{ci[0]:.4f}", f"{ci[1]:.4f}", "ratio",
                             "", "bootstrap over rounds", "", ""])
        csv_rows.append(["pgbench", f"{w}_tps", s, f"{med(t):.1f}", f"{min(t):.1f}", f"{max(t):.1f}", "tps",
                         f"{rt:.4f}", "median/median(A)", ">=0.98" if s != "A" else "", ver])
        csv_rows.append(["pgbench", f"{w}_latency", s, f"{med(lat):.3f}", f"{min(lat):.3f}",
                         f"{max(lat):.3f}", "ms", f"{rl:.4f}", "median/median(A)", "", ""])
        if s == "C":
            csv_rows.append(["pgbench", f"{w}_tps_wal_on_vs_off", "C/B", "", "", "", "ratio",
                             f"{med(t) / b_t:.4f}", "median(C)/median(B)", "", ""])
md.append("")

# ---------------------------------------------------------------- reconnects
if runs.get(("pgbench", "reconnect", "A", "tps")):
    cpu_key = lambda s: ("pgbench", "reconnect", s, "server_cpu_per_connection")
    have_cpu = bool(runs.get(cpu_key("A")))
    md.append("## Reconnects: `pgbench -C -S` (higher is better)")
    md.append("")
    md.append(f"A new connection for every read-only transaction, as short-lived clients make: {meta['pgb_clients']} "
              f"clients, 2 threads, {meta['pgb_secs']} s per run, {meta['pgb_rounds']} rounds, the order rotated. "
              f"Each connection forks a backend, which inherits the layer and claims a counter slot. "
              f"**Connections per server CPU-second** is A's server CPU per connection over the state's (the CPU "
              f"time of the postmaster's reaped children over the run, all backends exited, divided by the "
              f"connections made): pgbench runs on the same two cores, so TPS also moves with the client's share "
              f"of them, and the verdict, like the SQL workloads', uses CPU time. Target for both: ≥ 0.97× of A.")
    md.append("")
    md.append("| state | TPS median | min – max | TPS vs A | 90% interval | | server CPU per connection | "
              "connections per CPU-second vs A | 90% interval | target | |")
    md.append("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|")
    base_t = med(runs[("pgbench", "reconnect", "A", "tps")])
    base_c = med(runs[cpu_key("A")]) if have_cpu else None
    for s in "ABC":
        t = runs[("pgbench", "reconnect", s, "tps")]
        if not t:
            continue
        rt = med(t) / base_t
        ci = None if s == "A" else ratio_ci(("pgbench", "reconnect", s, "tps"), ("pgbench", "reconnect", "A", "tps"))
        tps_ver = "" if s == "A" else noisy_verdict(rt, ci, 0.97, True)
        c = runs[cpu_key(s)] if have_cpu else []
        rc = base_c / med(c) if c else None
        cci = None if s == "A" or not c else ratio_ci(cpu_key("A"), cpu_key(s))
        cpu_ver = "" if s == "A" or rc is None else noisy_verdict(rc, cci, 0.97, True)
        if s != "A":
            chart.append(("tps", "pgbench -C (reconnect), TPS", s, rt, ci, 0.97))
            if rc is not None:
                chart.append(("tps", "pgbench -C, connections per CPU-s", s, rc, cci, 0.97))
        md.append(f"| {s}: {LABEL[s]} | {fmt(med(t), 1)} | {fmt(min(t), 1)} – {fmt(max(t), 1)} | {rt:.3f}× | "
                  f"{fmt_ci(ci) if s != 'A' else ''} | {tps_ver} | "
                  f"{f'{med(c):.3f} ms' if c else 'n/a'} | {f'{rc:.3f}×' if rc is not None and s != 'A' else ''} | "
                  f"{fmt_ci(cci) if s != 'A' and cci else ''} | {'' if s == 'A' else '≥ 0.97×'} | {cpu_ver} |")
        csv_rows.append(["pgbench", "reconnect_tps", s, f"{med(t):.1f}", f"{min(t):.1f}", f"{max(t):.1f}", "tps",
                         f"{rt:.4f}", "median/median(A)", ">=0.97" if s != "A" else "", tps_ver])
        if c:
            csv_rows.append(["pgbench", "reconnect_server_cpu_per_connection", s, f"{med(c):.4f}",
                             f"{min(c):.4f}", f"{max(c):.4f}", "ms", f"{rc:.4f}",
                             "median(A)/median (connections per CPU-second)", ">=0.97" if s != "A" else "",
                             cpu_ver])
    md.append("")

# ---------------------------------------------------------------- engine
ssl_enc = runs[("engine", "openssl_speed_encrypt", "-", "bytes_per_second")]
ssl_dec = runs[("engine", "openssl_speed_decrypt", "-", "bytes_per_second")]
se, sd = med(ssl_enc), med(ssl_dec)
md.append("## Engine: aligned 8 KiB pages (higher is better)")
md.append("")
md.append(f"`build/engine_bench --benchmark_repetitions={meta['engine_reps']}` (medians; repetitions interleaved at random, so a drift in the machine's speed spreads over every benchmark instead of landing on one). The engine encrypts "
          f"with libgcrypt's AES-256-XTS; the references are raw OpenSSL EVP AES-256-XTS on the same buffers "
          f"(one call per 8 KiB page, and two 4 KiB data units per page as the format has them), raw libgcrypt "
          f"in the format's shape, and `openssl speed -evp aes-256-xts -bytes 8192` (median of {len(ssl_enc)} run{'s' if len(ssl_enc) != 1 else ''} of 3 s; "
          f"one 8 KiB data unit per call, the tweak set once): encrypt {se / MB:,.0f} MB/s (min–max {min(ssl_enc) / MB:,.0f}–{max(ssl_enc) / MB:,.0f}), "
          f"decrypt {sd / MB:,.0f} MB/s ({min(ssl_dec) / MB:,.0f}–{max(ssl_dec) / MB:,.0f}). "
          f"Target: engine ≥ 0.9× of `openssl speed` at 8 KiB.")
md.append("")
md.append("| operation | MB/s (median) | vs raw OpenSSL, 1 call per page | vs raw libgcrypt, same shape | vs openssl speed | target | |")
md.append("|---|---:|---:|---:|---:|---:|---|")
ENG = [("BM_EngineWrite8K", "engine write (encrypt), no storage copy", "BM_RawEvpXtsEncrypt8K_OneUnit", "BM_RawGcryptXtsEncrypt8K", se, True),
       ("BM_EngineWrite8K_Gcm", "GCM engine write (seal, entries), no storage copy", None, None, se, False),
       ("BM_EngineWrite8K_Gcm_MemoryFile", "GCM engine write into an in-memory file (+ copy)", None, None, se, False),
       ("BM_EngineRead8K_Gcm_MemoryFile", "GCM engine read from an in-memory file (+ copy)", None, None, sd, False),
       ("BM_EngineRead8K", "engine read (decrypt), no storage copy", "BM_RawEvpXtsDecrypt8K_OneUnit", "BM_RawGcryptXtsDecrypt8K", sd, True),
       ("BM_EngineWrite8K_MemoryFile", "engine write into an in-memory file (+ copy)", "BM_RawEvpXtsEncrypt8K_OneUnit", "BM_RawGcryptXtsEncrypt8K", se, False),
       ("BM_EngineRead8K_MemoryFile", "engine read from an in-memory file (+ copy)", "BM_RawEvpXtsDecrypt8K_OneUnit", "BM_RawGcryptXtsDecrypt8K", sd, False),
       ("BM_RawEvpXtsEncrypt8K_OneUnit", "raw OpenSSL XTS encrypt, one 8 KiB call (reference)", None, None, se, False),
       ("BM_RawEvpXtsDecrypt8K_OneUnit", "raw OpenSSL XTS decrypt, one 8 KiB call (reference)", None, None, sd, False),
       ("BM_RawEvpXtsEncrypt8K", "raw OpenSSL XTS encrypt, two 4 KiB units (reference)", None, None, se, False),
       ("BM_RawEvpXtsDecrypt8K", "raw OpenSSL XTS decrypt, two 4 KiB units (reference)", None, None, sd, False),
       ("BM_RawGcryptXtsEncrypt8K", "raw libgcrypt XTS encrypt, two 4 KiB units (reference)", None, None, se, False),
       ("BM_RawGcryptXtsDecrypt8K", "raw libgcrypt XTS decrypt, two 4 KiB units (reference)", None, None, sd, False)]
for name, title, raw, raw_gc, speed, targeted in ENG:
    if name not in eng:
        continue
    v = eng[name]
    r_raw = v / eng[raw] if raw and raw in eng else None
    r_gc = v / eng[raw_gc] if raw_gc and raw_gc in eng else None
    r_speed = v / speed
    tgt, ver = ("≥ 0.90×", verdict(r_speed >= 0.9)) if targeted else ("", "")
    if targeted:
        chart.append(("throughput", title.split(",")[0], "C", r_speed, None, 0.90))
    md.append(f"| {title} | {v / MB:,.0f} | {f'{r_raw:.3f}×' if r_raw else '—'} | "
              f"{f'{r_gc:.3f}×' if r_gc else '—'} | {r_speed:.3f}× | {tgt} | {ver} |")
    csv_rows.append(["engine", name, "-", f"{v:.0f}", "", "", "B/s",
                     f"{r_speed:.4f}", "median/openssl speed", ">=0.90" if targeted else "", ver])
    if r_raw:
        csv_rows.append(["engine", name + "_vs_raw_evp", "-", "", "", "", "ratio", f"{r_raw:.4f}",
                         "median/median(raw EVP)", "", ""])
csv_rows.append(["engine", "openssl_speed_encrypt", "-", f"{se:.0f}", f"{min(ssl_enc):.0f}",
                 f"{max(ssl_enc):.0f}", "B/s", "", "", "", ""])
csv_rows.append(["engine", "openssl_speed_decrypt", "-", f"{sd:.0f}", f"{min(ssl_dec):.0f}",
                 f"{max(ssl_dec):.0f}", "B/s", "", "", "", ""])
md.append("")

if gcm_libs:
    md.append("## AES-256-GCM: libgcrypt against OpenSSL at the format's shape (higher is better)")
    md.append("")
    md.append(f"`build/gcm_bench --benchmark_repetitions={meta['engine_reps']}` (medians, repetitions interleaved at random): one 4096-byte "
              f"unit per call under a fresh 96-bit nonce (the engine's pooled draw), 48 bytes of additional "
              f"data, a 16-byte tag. The engine uses the faster library; libgcrypt's XTS on the same unit is "
              f"the reference the authenticated mode's cost is judged against.")
    md.append("")
    md.append("| operation | MB/s (median) | vs OpenSSL GCM, same operation | vs libgcrypt XTS |")
    md.append("|---|---:|---:|---:|")
    for name, title, other in (("BM_GcryptGcmSeal4K", "libgcrypt GCM seal", "BM_EvpGcmSeal4K"),
                               ("BM_GcryptGcmOpen4K", "libgcrypt GCM open", "BM_EvpGcmOpen4K"),
                               ("BM_EvpGcmSeal4K", "OpenSSL GCM seal", None),
                               ("BM_EvpGcmOpen4K", "OpenSSL GCM open", None),
                               ("BM_GcryptXts4K", "libgcrypt XTS encrypt (reference)", None)):
        if name not in gcm_libs:
            continue
        v = gcm_libs[name]
        vs_other = f"{v / gcm_libs[other]:.3f}×" if other and other in gcm_libs else "—"
        vs_xts = f"{v / gcm_libs['BM_GcryptXts4K']:.3f}×" if "BM_GcryptXts4K" in gcm_libs else "—"
        md.append(f"| {title} | {v / MB:,.0f} | {vs_other} | {vs_xts} |")
        csv_rows.append(["gcm_library", name, "-", f"{v:.0f}", "", "", "B/s",
                         f"{v / gcm_libs[other]:.4f}" if other and other in gcm_libs else "",
                         "median/median(OpenSSL)" if other else "", "", ""])
# Opening a file: what each spill file, temp relation segment and WAL segment
# costs before its first byte, against the same run's raw libgcrypt page.
OPENS = [("BM_OpenCreateFile", "create: nonce, key derived into locked memory, cipher set up there, header MAC'd and written"),
         ("BM_OpenExistingFile", "open an existing file: header read and checked (checksum, MAC), key, cipher"),
         ("BM_OpenKeyAndCipher", "key derivation and cipher set-up alone"),
         ("BM_OpenCreateFile_Gcm", "create, AES-256-GCM (format v2): the same, with a GCM handle"),
         ("BM_OpenExistingFile_Gcm", "open an existing AES-256-GCM file")]
page = eng.get("BM_RawGcryptXtsEncrypt8K")
if any(name in opens for name, _ in OPENS):
    md.append("### Opening a file (lower is better)")
    md.append("")
    md.append("Same program and run (medians); each iteration also destroys the engine, which wipes its "
              "key and cipher state, as closing a file's last descriptor does. The yardstick is one 8 KiB "
              "page through raw libgcrypt XTS in the same run. No target is set for this figure.")
    md.append("")
    md.append("| operation | µs per file (median) | in 8 KiB pages of raw XTS |")
    md.append("|---|---:|---:|")
    for name, title in OPENS:
        if name not in opens or not opens[name]:
            continue
        us = 1e6 / opens[name]
        pages = us / (1e6 * 8192 / page) if page else None
        md.append(f"| {title} | {us:.2f} | {f'{pages:.1f}' if pages else '—'} |")
        csv_rows.append(["engine", name, "-", f"{us:.3f}", "", "", "us", f"{pages:.2f}" if pages else "",
                         "time / time of one 8 KiB raw libgcrypt page", "", ""])
    md.append("")
# ---------------------------------------------------------------- engine per release
def engine_row(name, json_path, speed_section, libs):
    e, _ = bench_medians(json_path)
    if "BM_EngineWrite8K" not in e:
        return
    enc = med(runs.get((speed_section, "openssl_speed_encrypt", "-", "bytes_per_second"), []))
    dec = med(runs.get((speed_section, "openssl_speed_decrypt", "-", "bytes_per_second"), []))
    for op, engine, one, two, gc, speed in (
            ("write", "BM_EngineWrite8K", "BM_RawEvpXtsEncrypt8K_OneUnit", "BM_RawEvpXtsEncrypt8K",
             "BM_RawGcryptXtsEncrypt8K", enc),
            ("read", "BM_EngineRead8K", "BM_RawEvpXtsDecrypt8K_OneUnit", "BM_RawEvpXtsDecrypt8K",
             "BM_RawGcryptXtsDecrypt8K", dec)):
        fastest = max(x for x in (e.get(one), e.get(two), e.get(gc), speed) if x and x == x)
        fastest_shape = max(x for x in (e.get(two), e.get(gc)) if x)
        r, rs = e[engine] / fastest, e[engine] / fastest_shape
        ver = verdict(r >= 0.9)
        md.append(f"| {name if op == 'write' else ''} | {libs if op == 'write' else ''} | {op} | "
                  f"{e[engine] / MB:,.0f} | {e.get(one, 0) / MB:,.0f} | {e.get(two, 0) / MB:,.0f} | "
                  f"{e.get(gc, 0) / MB:,.0f} | {speed / MB:,.0f} | {r:.3f}× | {rs:.3f}× | {ver} |")
        csv_rows.append(["engine_release", f"{name}_{op}", "-", f"{e[engine]:.0f}", "", "", "B/s", f"{r:.4f}",
                         "engine / fastest XTS of the release's libraries", ">=0.90", ver])


md.append("## Engine on each release's libraries (higher is better)")
md.append("")
md.append("The same `engine_bench` and `openssl speed -evp aes-256-xts -bytes 8192`, built and run in each "
          "release's chroot with its compiler, OpenSSL and libgcrypt (bookworm is this host; trixie carries "
          "PostgreSQL 17; sid carries 18 and 19). MB/s, medians. **Fastest** is the fastest AES-256-XTS among "
          "that release's libraries at 8 KiB pages, in any shape (OpenSSL with one 8 KiB call, as `openssl "
          "speed` measures, OpenSSL or libgcrypt with two 4 KiB data units); **same shape** is the fastest "
          "library doing the format's two 4 KiB units per page. Target: engine ≥ 0.9× of the fastest.")
md.append("")
md.append("| release | OpenSSL, libgcrypt | op | engine | OpenSSL, 1 call | OpenSSL, 2 units | libgcrypt, 2 units | openssl speed | engine / fastest | engine / same shape | |")
md.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
engine_row("bookworm (this host)", os.path.join(W, "engine.json"), "engine", meta.get("libs_host", ""))
for release in meta.get("engine_releases", "").split():
    path = os.path.join(W, f"engine_{release}.json")
    if os.path.exists(path):
        engine_row(release, path, f"engine_{release}", meta.get(f"libs_{release}", ""))
md.append("")


# ---------------------------------------------------------------- GCM per release
def gcm_release_row(name, gcm_json, engine_json, speed_section, libs):
    g, _ = bench_medians(gcm_json)
    e, _ = bench_medians(engine_json)
    if "BM_GcryptGcmSeal4K" not in g or "BM_EvpGcmSeal4K" not in g:
        return
    for op, gcry, evp, speed_metric, engine in (
            ("seal", "BM_GcryptGcmSeal4K", "BM_EvpGcmSeal4K", "openssl_speed_gcm_seal", "BM_EngineWrite8K_Gcm"),
            ("open", "BM_GcryptGcmOpen4K", "BM_EvpGcmOpen4K", "openssl_speed_gcm_open", None)):
        speed = med(runs.get((speed_section, speed_metric, "-", "bytes_per_second"), []))
        faster = "libgcrypt" if g[gcry] >= g[evp] else "OpenSSL"
        used = g[gcry] / max(g[gcry], g[evp])
        eng_v = e.get(engine) if engine else None
        md.append(f"| {name if op == 'seal' else ''} | {libs if op == 'seal' else ''} | {op} | "
                  f"{g[gcry] / MB:,.0f} | {g[evp] / MB:,.0f} | {f'{speed / MB:,.0f}' if speed == speed else '—'} | "
                  f"{f'{eng_v / MB:,.0f}' if eng_v else '—'} | {faster} | {used:.3f}× |")
        csv_rows.append(["gcm_release", f"{name.split()[0]}_{op}", "-", f"{g[gcry]:.0f}", "", "", "B/s",
                         f"{used:.4f}", "libgcrypt GCM / the faster library's GCM", "", ""])


gcm_releases = [("bookworm (this host)", os.path.join(W, "gcm.json"), os.path.join(W, "engine.json"), "engine",
                 meta.get("libs_host", ""))]
for release in meta.get("engine_releases", "").split():
    gcm_releases.append((release, os.path.join(W, f"gcm_{release}.json"), os.path.join(W, f"engine_{release}.json"),
                         f"engine_{release}", meta.get(f"libs_{release}", "")))
gcm_releases = [r for r in gcm_releases if os.path.exists(r[1]) and os.path.exists(r[2])]
if len(gcm_releases) > 1:
    md.append("## AES-256-GCM on each release's libraries (higher is better)")
    md.append("")
    md.append("`gcm_bench` (one 4096-byte unit per call under a fresh nonce, 48 bytes of additional data, a "
              "16-byte tag), the engine's GCM write (`engine_bench`, 8 KiB pages as two units and their entries, "
              "no storage copy) and `openssl speed -evp aes-256-gcm -bytes 4096` (median of its runs of 3 s; "
              "`-decrypt` for open), built and run in each release's chroot as above. MB/s, medians. The engine "
              "seals and opens with libgcrypt on every release, for the reason the XTS table gives (only "
              "libgcrypt's cipher state can live in the locked arena); the last column is libgcrypt's speed over "
              "the faster library's. No target is set for this table.")
    md.append("")
    md.append("| release | OpenSSL, libgcrypt | op | libgcrypt GCM | OpenSSL GCM | openssl speed | engine (GCM) | faster library | libgcrypt / faster |")
    md.append("|---|---|---|---:|---:|---:|---:|---|---:|")
    for row in gcm_releases:
        gcm_release_row(*row)
    md.append("")

lay, _ = bench_medians(os.path.join(W, "layer.json"))
md.append("## The libc layer: 8 KiB pwrite/pread on a real file (higher is better)")
md.append("")
md.append(f"`build/layer_bench --benchmark_repetitions={meta['engine_reps']}` (medians, repetitions interleaved at random): `ec_pwrite`/`ec_pread` "
          f"(the wrappers the GOT patcher installs) on an encrypted spill file, against `::pwrite`/`::pread` "
          f"on an ordinary file in the same directory, 8 MiB file, page-aligned offsets. \"pass-through\" is an "
          f"ordinary file through the wrapper (one table lookup). No target was set for this figure.")
md.append("")
md.append("| where | operation | libc MB/s | layer MB/s | layer / libc | pass-through / libc |")
md.append("|---|---|---:|---:|---:|---:|")
for arg, place in (("0", "tmpfs (/dev/shm)"), ("1", "page cache (/tmp on disk)")):
    for op, libc, layer, pt in (("pwrite", "BM_LibcPwrite8K", "BM_LayerPwrite8K", "BM_PassthroughPwrite8K"),
                                ("pread", "BM_LibcPread8K", "BM_LayerPread8K", "BM_PassthroughPread8K")):
        a, b, c = (lay.get(f"{n}/{arg}") for n in (libc, layer, pt))
        if not a or not b:
            continue
        md.append(f"| {place} | {op} | {a / MB:,.0f} | {b / MB:,.0f} | {b / a:.3f}× | "
                  f"{f'{c / a:.3f}×' if c else '—'} |")
        csv_rows.append(["layer", f"{op}_{'tmpfs' if arg == '0' else 'pagecache'}", "layer",
                         f"{b:.0f}", "", "", "B/s", f"{b / a:.4f}", "median/median(libc)", "", ""])
        if c:
            csv_rows.append(["layer", f"{op}_{'tmpfs' if arg == '0' else 'pagecache'}", "passthrough",
                             f"{c:.0f}", "", "", "B/s", f"{c / a:.4f}", "median/median(libc)", "", ""])
md.append("")
if ctx.get("library_build_type") == "debug":
    md.append("Google Benchmark prints \"Library was built as DEBUG\": that is Debian's libbenchmark package "
              "(the timing loop), not the code under test, which is built RelWithDebInfo (-O2).")
    md.append("")

# ---------------------------------------------------------------- concurrency
MODES = {"mode0": "libc `pwrite`", "mode1": "layer, a counter slot per process", "mode2": "layer, one shared counter block"}
if any(k[0] == "concurrency" for k in runs):
    md.append("## The libc layer under concurrency (higher is better)")
    md.append("")
    md.append(f"`build/concurrency_bench`: 1, 2, 4 and 8 processes at once, each writing 8 KiB pages to its own "
              f"encrypted spill file on a tmpfs through `ec_pwrite`, the counters in shared memory as the server "
              f"has them; the reference is `pwrite` on ordinary files at the same concurrency. Throughput per "
              f"process is its bytes over its own CPU time (this machine has {meta['cores']} cores, so 8 "
              f"processes are time-sliced; CPU time shows what each write costs, including any cache-line "
              f"traffic between cores). \"One shared block\" is the layout before per-process slots: every "
              f"process adds to the same counters. Medians of {meta['engine_reps']} repetitions. Target: the "
              f"layer's per-process throughput at 8 processes within 10% of its throughput at 1.")
    md.append("")
    md.append("| writers | 1 | 2 | 4 | 8 | 8 vs 1 | target | |")
    md.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for mode, title in MODES.items():
        vals = [med(runs.get(("concurrency", mode, str(p), "per_cpu_second"), [])) for p in (1, 2, 4, 8)]
        if any(v != v for v in vals):
            continue
        r81 = vals[3] / vals[0]
        ver = noisy_verdict(r81, None, 0.90, True) if mode == "mode1" else ""
        md.append(f"| {title} | " + " | ".join(f"{v:,.0f} MB/s" for v in vals) +
                  f" | {r81:.3f}× | {'≥ 0.90×' if mode == 'mode1' else ''} | {ver} |")
        csv_rows.append(["concurrency", f"{mode}_8_vs_1", "-", f"{vals[3]:.0f}", "", "", "MB/s per CPU-s",
                         f"{r81:.4f}", "8 processes / 1 process", ">=0.90" if mode == "mode1" else "", ver])
        if mode == "mode1":
            chart.append(("throughput", "layer, 8 writers vs 1", "C", r81, None, 0.90))
    libc = [med(runs.get(("concurrency", "mode0", str(p), "per_cpu_second"), [])) for p in (1, 2, 4, 8)]
    slots = [med(runs.get(("concurrency", "mode1", str(p), "per_cpu_second"), [])) for p in (1, 2, 4, 8)]
    if all(v == v for v in libc + slots):
        md.append("")
        md.append("Layer against libc at the same concurrency (per CPU-second): " +
                  ", ".join(f"{p} process{'es' if p > 1 else ''} {sl / lc:.3f}×"
                            for p, sl, lc in zip((1, 2, 4, 8), slots, libc)) + ".")
    md.append("")

# ---------------------------------------------------------------- startup
md.append("## Server start (lower is better)")
md.append("")
md.append(f"Time from just before `exec postgres` to the postmaster's own timestamp (`log_line_prefix` `%n`) on "
          f"\"database system is ready to accept connections\", {meta['starts']} starts per state alternated, "
          f"each on a fresh copy of one initdb'ed directory (a WAL-encrypted cluster cannot be restarted yet, "
          f"so every state gets a fresh copy alike; with WAL encryption the start also encrypts the plaintext "
          f"WAL segment initdb left). Target: added time < 50 ms.")
md.append("")
md.append("| state | median | min – max | added vs not loaded | target | |")
md.append("|---|---:|---:|---:|---:|---|")
base = med(runs[("startup", "server_start", "A", "ms")])
for s in ("A", "Cnw", "Cw"):
    v = runs[("startup", "server_start", s, "ms")]
    if not v:
        continue
    added = med(v) - base
    tgt, ver = ("", "") if s == "A" else ("< 50 ms", verdict(added < 50))
    md.append(f"| {LABEL[s]} | {med(v):.1f} ms | {min(v):.1f} – {max(v):.1f} ms | "
              f"{'' if s == 'A' else f'{added:+.1f} ms'} | {tgt} | {ver} |")
    csv_rows.append(["startup", "server_start", s, f"{med(v):.1f}", f"{min(v):.1f}", f"{max(v):.1f}", "ms",
                     f"{added:.1f}" if s != "A" else "", "added ms vs A" if s != "A" else "",
                     "<50ms" if s != "A" else "", ver])
md.append("")

# ---------------------------------------------------------------- encryption status
enc_path = os.path.join(W, "enc_status.csv")
if os.path.exists(enc_path):
    md.append("## What the loaded clusters encrypted during the run")
    md.append("")
    md.append("`ephemeral_crypt_encryption_status()` after the SQL workloads and pgbench (B must show nothing).")
    md.append("")
    md.append("| state | category | enabled | cipher | files encrypted | bytes encrypted | bytes decrypted | failures | plaintext fallbacks | integrity failures |")
    md.append("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    with open(enc_path) as f:
        for line in f:
            p = line.strip().split(",")
            if len(p) < 10:
                continue
            md.append(f"| {p[0]} | {p[1]} | {p[2]} | {p[8]} | {int(p[3]):,} | {int(p[4]) / 2**30:,.2f} GiB | "
                      f"{int(p[5]) / 2**30:,.2f} GiB | {p[6]} | {p[7]} | {p[9]} |")
    md.append("")

# ---------------------------------------------------------------- summary of targets
misses = [r for r in csv_rows if r[10] == "MISS"]
unclear = [r for r in csv_rows if r[10] == "UNCLEAR"]
passes = [r for r in csv_rows if r[10] == "PASS"]
md.append("## Targets")
md.append("")
md.append(f"{len(passes)} PASS, {len(unclear)} UNCLEAR, {len(misses)} MISS. A missed target is reported, "
          "not treated as a failure.")
if misses or unclear:
    md.append("")
    for r in misses + unclear:
        md.append(f"- {r[10]}: {r[0]} {r[1]} ({r[2]}): {r[7]} ({r[8]}), target {r[9]}")
md.append("")

for fname, title in (("profile_sql_dso.txt", "one sort on state C, its backend only, by library"),
                     ("profile_sql.txt", "one sort on state C, its backend only, top symbols"),
                     ("profile_layer.txt", "`layer_bench` (layer pwrite/pread on the page cache), top symbols")):
    p = os.path.join(W, fname)
    if os.path.exists(p) and os.path.getsize(p) > 0:
        if fname == "profile_sql_dso.txt":
            md.append("## Where the time goes")
            md.append("")
            notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "PROFILE_NOTES.md")
            if os.path.exists(notes):
                md.append(open(notes).read().strip())
                md.append("")
        md.append(f"`perf record -e cpu-clock`, {title} (share of samples):")
        md.append("")
        md.append("```")
        md.extend(l.rstrip() for l in open(p))
        md.append("```")
        md.append("")

md.append("## Files")
md.append("")
md.append("- `bench/RESULTS.md`: this report; `bench/results.csv`: one row per figure (median, min, max, ratio, "
          "target, verdict); `bench/results-runs.csv`: every single run; `bench/ratios.png`: the ratios as a "
          "chart (when gnuplot is installed).")
md.append("- Knobs: `BENCH_ROUNDS`, `BENCH_SCALE`, `BENCH_PGBENCH_ROUNDS`, `BENCH_PGBENCH_SECONDS`, "
          "`BENCH_PGBENCH_SCALE`, `BENCH_PGBENCH_CLIENTS`, `BENCH_STARTS`, `BENCH_ENGINE_REPS`, `BENCH_QUICK=1` "
          "(see the head of `bench/run.sh`).")
md.append("")

os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "RESULTS.md"), "w") as f:
    f.write("\n".join(md))
with open(os.path.join(OUT, "results.csv"), "w", newline="") as f:
    wr = csv.writer(f)
    wr.writerow(["section", "item", "state", "median", "min", "max", "unit", "ratio", "ratio_basis",
                 "target", "verdict"])
    wr.writerows(csv_rows)

# gnuplot: two panels, "lower is better" (time and CPU ratios against A,
# target 1.03) and "higher is better" (TPS and throughput ratios), each bar
# with its 90% interval where one exists and a dashed line at its target.
def panel_data(kinds, fname):
    items = []
    for kind, item, s, r, ci, target in chart:
        if kind not in kinds:
            continue
        label = f"{item} (CPU)" if kind == "cpu" else f"{item} (wall)" if kind == "time" else item
        row = next((i for i in items if i["label"] == label), None)
        if row is None:
            row = {"label": label, "target": target, "B": None, "C": None, "G": None}
            items.append(row)
        row[s if s in ("B", "C", "G") else "C"] = (r, ci)
    with open(os.path.join(W, fname), "w") as f:
        for i, row in enumerate(items):
            cells = []
            for s in ("B", "C", "G"):
                if row[s] is None:
                    cells += ["-", "-", "-"]
                else:
                    r, ci = row[s]
                    lo, hi = ci if ci else (r, r)
                    cells += [f"{r:.4f}", f"{lo:.4f}", f"{hi:.4f}"]
            f.write(f"{i} \"{row['label']}\" {row['target']} " + " ".join(cells) + "\n")
    return len(items)


n_low = panel_data(("time", "cpu"), "ratios_lower.dat")
n_high = panel_data(("tps", "throughput"), "ratios_higher.dat")
lowest = min([r for _, _, _, r, _, _ in chart if r == r] + [ci[0] for *_, ci, _ in chart if ci] + [1.0])
x_from = min(0.8, round(lowest - 0.05, 1))
png = os.path.join(os.path.abspath(OUT), "ratios.png")
low, high = os.path.join(W, "ratios_lower.dat"), os.path.join(W, "ratios_higher.dat")
# Three bars per row (B above, C in the middle, G below), each 0.24 high.
bars = r"""using (${v}):($1 + {c}):({x}):(${v}):($1 + {c} - 0.12):($1 + {c} + 0.12){tic} with boxxyerror lc rgb "{fill}" title "{title}", \
     "" using {v}:($1 + {c}):{lo}:{hi} with xerrorbars lc rgb "{line}" pt 0 notitle"""
def panel(path, x):
    return (f'plot "{path}" ' +
            bars.format(v=4, c=-0.27, x=x, tic=":ytic(2)", fill="#9ecae1", line="#08519c", lo=5, hi=6,
                        title="B: loaded, all off") + ", \\\n     \"\" " +
            bars.format(v=7, c=0, x=x, tic="", fill="#fc9272", line="#a50f15", lo=8, hi=9,
                        title="C: loaded, all on (XTS)") + ", \\\n     \"\" " +
            bars.format(v=10, c=0.27, x=x, tic="", fill="#a1d99b", line="#006d2c", lo=11, hi=12,
                        title="G: all on, GCM for spill and temp relations") + ", \\\n" +
            f'     "" using 3:($1 - 0.45):(0):(0.9) with vectors nohead dt 2 lw 1.5 lc rgb "black" title "target"\n')
with open(os.path.join(W, "ratios.gp"), "w") as f:
    f.write(f"""set terminal pngcairo size 1400,{420 + 22 * (n_low + n_high)} noenhanced font ",10"
set output "{png}"
set datafile missing '-'
set style fill solid 0.75 border -1
set grid xtics
set key outside right top vertical
set multiplot layout 2,1 title "ephemeral_crypt, ratios against PostgreSQL without the extension (bars: median; whiskers: 90% interval over rounds; dashed: target)"
set yrange [-0.7:{n_low - 0.3}]
set xrange [{x_from}:*]
set title "lower is better: SQL workloads, wall and CPU time against state A (target 1.03; the verdict uses CPU)"
{panel(low, x_from)}set yrange [-0.7:{n_high - 0.3}]
set xrange [0:*]
set title "higher is better: pgbench TPS and reconnects against A, engine against openssl speed, layer at 8 writers against 1"
{panel(high, 0)}unset multiplot
""")
print(f"wrote {os.path.join(OUT, 'RESULTS.md')} and results.csv "
      f"({len(passes)} PASS, {len(unclear)} UNCLEAR, {len(misses)} MISS)")
