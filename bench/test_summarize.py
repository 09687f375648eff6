#!/usr/bin/env python3
"""Unit tests of bench/summarize.py, in seconds and without a server: the
targets table has one source (bench/README.md's copy must equal it), the
verdicts mean what the report says they mean, and a small synthetic run
summarises with the beyond-the-cipher target judged in instructions.
    python3 bench/test_summarize.py
"""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import summarize  # noqa: E402


class TargetsTable(unittest.TestCase):
    def test_readme_table_is_the_one_from_targets(self):
        with open(os.path.join(HERE, "README.md")) as f:
            self.assertEqual(summarize.readme_targets_table(f.read()), summarize.targets_table())

    def test_check_readme_mode(self):
        self.assertEqual(summarize.main(["--check-readme", os.path.join(HERE, "README.md")]), 0)
        with tempfile.NamedTemporaryFile("w", suffix=".md") as f:
            f.write("| measure | target |\n|---|---|\n| pgbench | ≥ 0.5× |\n")
            f.flush()
            self.assertEqual(summarize.main(["--check-readme", f.name]), 1)

    def test_bounds_as_the_report_and_results_csv_write_them(self):
        target = summarize.TARGET
        self.assertEqual(target["sql_cpu"].csv_text, "<=1.03")
        self.assertEqual(target["beyond_cipher"].csv_text, "<=0.01")
        self.assertEqual(target["pgbench_tps"].mark, "≥ 0.98×")
        self.assertEqual(target["reconnect"].csv_text, ">=0.97")
        self.assertEqual(target["engine"].csv_text, ">=0.90")
        self.assertEqual(target["startup"].mark, "< 50 ms")
        self.assertEqual(target["startup"].csv_text, "<50ms")
        self.assertEqual(target["gcm_added"].csv_text, "<=2")
        self.assertEqual(summarize.FLOOR_GOVERNS_ABOVE, 1.02)
        self.assertIn(f"exceeds {summarize.FLOOR_GOVERNS_ABOVE}", target["sql_cpu"].qualifier)
        self.assertEqual(len({t.id for t in summarize.TARGETS}), len(summarize.TARGETS))


class Verdicts(unittest.TestCase):
    def test_lower_is_better(self):
        t = summarize.TARGET["sql_cpu"]
        self.assertEqual(summarize.judge(t, 1.02, (0.99, 1.05)), "PASS")
        self.assertEqual(summarize.judge(t, 1.05, (1.01, 1.09)), "UNCLEAR")
        self.assertEqual(summarize.judge(t, 1.05, (1.04, 1.09)), "MISS")
        self.assertEqual(summarize.judge(t, 1.05), "MISS")

    def test_higher_is_better_and_strict(self):
        self.assertEqual(summarize.judge(summarize.TARGET["pgbench_tps"], 0.97, (0.95, 0.99)), "UNCLEAR")
        self.assertEqual(summarize.judge(summarize.TARGET["startup"], 50.0), "MISS")
        self.assertEqual(summarize.judge(summarize.TARGET["startup"], 49.9), "PASS")

    def test_threshold_override(self):
        t = summarize.TARGET["gcm_added"]
        self.assertEqual(summarize.judge(t, 1.5, (-1, 3), threshold=0.0), "UNCLEAR")
        self.assertEqual(summarize.judge(t, -0.5, None, threshold=0.0), "PASS")


def synthetic_run(work, with_instructions):
    """A run of three rounds whose figures are chosen, not measured."""
    meta = dict(date="today", duration="1m", cpu_model="cpu", cores="2", mem="1 GiB", cpu_aes="yes",
                cpu_vaes="yes", cpu_avx512f="no", kernel="k", pg_version="pg", openssl_version="ssl",
                so_sha="0", so_mtime="now", git_rev="0", tmp_fs="tmpfs", load_start="0", load_end="0",
                rows="300000", table_size="31 MB", rounds="3", quick="0", pgb_scale="1", pgb_clients="2",
                pgb_secs="5", pgb_rounds="3", engine_reps="1", starts="3", libs_host="3.0, libgcrypt 1.10")
    with open(os.path.join(work, "meta.env"), "w") as f:
        f.writelines(f"{k}\t{v}\n" for k, v in meta.items())
    cpu = {"A": 1000.0, "B": 1005.0, "C": 1060.0, "G": 1100.0}
    with open(os.path.join(work, "runs.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["section", "workload", "state", "round", "metric", "value", "unit"])
        for workload, _ in summarize.SQL_WORKLOADS:
            w.writerow(["sql", workload, "C", 0, "cipher_ns", 50e6, "ns"])  # floor 1.05: beyond governs
            for r in (1, 2, 3):
                for s, v in cpu.items():
                    w.writerow(["sql", workload, s, r, "ms", v + r, "ms"])
                    w.writerow(["sql", workload, s, r, "cpu_ms", v + r, "ms"])
        for r in (1, 2, 3):
            for sc in ("on", "off"):
                for s in "ABC":
                    w.writerow(["pgbench", f"sync_commit_{sc}", s, r, "tps", 1000 - r, "tps"])
                    w.writerow(["pgbench", f"sync_commit_{sc}", s, r, "latency", 1.0, "ms"])
            for s in ("A", "Cnw", "Cw"):
                w.writerow(["startup", "server_start", s, r, "ms", 40 + 10 * (s != "A"), "ms"])
            w.writerow(["engine", "openssl_speed_encrypt", "-", r, "bytes_per_second", 6e9, "B/s"])
            w.writerow(["engine", "openssl_speed_decrypt", "-", r, "bytes_per_second", 6e9, "B/s"])
    engine = {"BM_EngineWrite8K": 9.0e9, "BM_EngineRead8K": 9.5e9, "BM_RawGcryptXtsEncrypt8K": 9.3e9,
              "BM_RawGcryptXtsDecrypt8K": 9.6e9, "BM_RawEvpXtsEncrypt8K": 12e9, "BM_RawEvpXtsDecrypt8K": 12e9,
              "BM_RawEvpXtsEncrypt8K_OneUnit": 13e9, "BM_RawEvpXtsDecrypt8K_OneUnit": 13e9}
    for name, values in (("engine.json", engine), ("layer.json", {"BM_LibcPwrite8K/0": 4e9, "BM_LayerPwrite8K/0": 2e9})):
        with open(os.path.join(work, name), "w") as f:
            json.dump({"benchmarks": [{"run_name": k, "run_type": "iteration", "bytes_per_second": v}
                                      for k, v in values.items()]}, f)
    if with_instructions:
        with open(os.path.join(work, "INSTRUCTIONS.csv"), "w") as f:
            f.write("workload,state,total,cipher,extension,libc,postgres,other\n")
            for workload in summarize.INSTRUCTION_WORKLOADS:
                extra = 200 if workload == "hashagg" else 50   # hashagg: 0.02 beyond the cipher, a MISS
                f.write(f"{workload},A,10000,0,0,0,10000,0\n{workload},C,{11000 + extra},1000,{extra},0,10000,0\n")


class SyntheticRun(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="summarize-test.")
        self.addCleanup(shutil.rmtree, self.work)

    def summarise(self, with_instructions):
        synthetic_run(self.work, with_instructions)
        out = os.path.join(self.work, "out")
        done = subprocess.run([sys.executable, os.path.join(HERE, "summarize.py"), "--work", self.work,
                               "--out", out, "--instructions", os.path.join(self.work, "INSTRUCTIONS.csv")],
                              capture_output=True, text=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(os.path.join(out, "RESULTS.md")) as f:
            report = f.read()
        with open(os.path.join(out, "results.csv")) as f:
            rows = list(csv.DictReader(f))
        return report, rows

    def test_beyond_the_cipher_judged_in_instructions(self):
        report, rows = self.summarise(True)
        judged = {r["item"]: r["verdict"] for r in rows if r["section"] == "instructions"}
        self.assertEqual(judged["sort_beyond_cipher"], "PASS")
        self.assertEqual(judged["hashagg_beyond_cipher"], "MISS")
        self.assertNotIn("parallel_hashjoin_beyond_cipher", judged)
        # The CPU figure stays, as the whole cost, without a verdict of its own.
        sort_cpu = next(r for r in rows if r["item"] == "sort_beyond_cipher" and r["section"] == "sql")
        self.assertEqual((sort_cpu["ratio"], sort_cpu["verdict"]), ("0.0100", ""))
        self.assertIn("judged in instructions: +0.0050", report)
        self.assertIn("## Beyond the cipher, in instructions", report)
        counts = re.search(r"^(\d+) PASS, (\d+) UNCLEAR, (\d+) MISS", report, re.M)
        verdicts = [r["verdict"] for r in rows]
        self.assertEqual(counts.groups(), tuple(str(verdicts.count(v)) for v in ("PASS", "UNCLEAR", "MISS")))
        self.assertIn("| measure | target |", report)

    def test_without_instructions_the_cpu_figure_is_judged(self):
        report, rows = self.summarise(False)
        self.assertNotIn("## Beyond the cipher, in instructions", report)
        sort_cpu = next(r for r in rows if r["item"] == "sort_beyond_cipher")
        self.assertEqual(sort_cpu["target"], "<=0.01")
        self.assertIn(sort_cpu["verdict"], ("PASS", "UNCLEAR", "MISS"))

    def test_engine_judged_against_the_locked_arena_library(self):
        report, rows = self.summarise(False)
        release = {r["item"]: r for r in rows if r["section"] == "engine_release"}
        write = release["bookworm (this host)_write"]
        self.assertEqual((write["ratio"], write["target"], write["verdict"]), (f"{9.0 / 9.3:.4f}", ">=0.90", "PASS"))
        self.assertEqual(release["bookworm (this host)_write_openssl_instead"]["ratio"], f"{12 / 9.0:.4f}")
        self.assertIn("core dumps", report)
        self.assertIn("C: loaded, all on (WAL too)", report)


if __name__ == "__main__":
    unittest.main()
