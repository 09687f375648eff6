#!/usr/bin/env bash
# Runs the whole test suite: unit tests (plain and under ASan/UBSan), the
# fuzzers, clang-format, the extension's pg_regress and TAP tests against real
# servers, a smoke run of the benchmark harness, and PostgreSQL's own suites
# for parity (run by default; EC_PG_SUITES=0 leaves them out). Installs the
# Debian packages it needs first (scripts/install-deps.sh); this is the one
# place that does. Ends with one "N passed, N failed" line counting the suites.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
source scripts/common.sh

bash scripts/install-deps.sh || exit 1
jobs=$(nproc)
passed=0
failed=0
failures=()

run_suite() {
    local name=$1
    shift
    echo "=== $name"
    if "$@"; then
        passed=$((passed + 1))
        echo "=== $name: passed"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "=== $name: FAILED"
    fi
}

unit_plain() {
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
        cmake --build build -j"$jobs" >/dev/null &&
        (cd build && ctest --output-on-failure -j"$jobs")
}

unit_sanitized() {
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DEPHEMERAL_CRYPT_SANITIZE=ON \
        -DEPHEMERAL_CRYPT_BENCH=OFF >/dev/null &&
        cmake --build build-asan -j"$jobs" >/dev/null &&
        (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$jobs")
}

# Builds the libFuzzer target $1 (with clang) and runs it for
# EC_FUZZ_SECONDS (default 30) on its own corpus.
run_fuzzer() {
    local target=$1
    CC=clang CXX=clang++ cmake -S . -B build-fuzz -DEPHEMERAL_CRYPT_BENCH=OFF >/dev/null || return 1
    cmake --build build-fuzz --target "$target" -j"$jobs" >/dev/null || return 1
    mkdir -p "build-fuzz/corpus-$target"
    "./build-fuzz/$target" -max_total_time="${EC_FUZZ_SECONDS:-30}" -print_final_stats=1 \
        "build-fuzz/corpus-$target" >"build-fuzz/$target.log" 2>&1
    local rc=$?
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==ERROR)' "build-fuzz/$target.log"
    return $rc
}

format_check() {
    git ls-files '*.cpp' '*.hpp' 2>/dev/null | xargs clang-format --dry-run -Werror
}

extension_install() {
    make -j"$jobs" EC_TEST_HOOKS=1 >/dev/null && make install EC_TEST_HOOKS=1 >/dev/null
}

extension_installcheck() {
    local scratch
    scratch=$(make_scratch_tree "$top")
    as_test_user make -C "$scratch" installcheck EC_REGRESS_TMP="$scratch/tmp_regress"
    local rc=$?
    if [ $rc -ne 0 ]; then
        cat "$scratch"/regression.diffs 2>/dev/null | head -100
        ls "$scratch"/tmp_check/log/ 2>/dev/null
    else
        rm -rf "$scratch"
    fi
    return $rc
}

run_suite "unit tests (ctest)" unit_plain
run_suite "unit tests under ASan+UBSan (ctest)" unit_sanitized
run_suite "header fuzzer (libFuzzer, ${EC_FUZZ_SECONDS:-30} s)" run_fuzzer fuzz_header
run_suite "restart seed fuzzer (libFuzzer, ${EC_FUZZ_SECONDS:-30} s)" run_fuzzer fuzz_restart_seed
run_suite "clang-format" format_check

# The benchmark harness must keep running from a fresh clone. Its figures are
# not checked (timings never go into tests): only that it completes and
# writes a report with every section.
bench_smoke() {
    local out
    out=$(mktemp -d /tmp/ephemeral_crypt-bench-smoke.XXXXXX)
    BENCH_QUICK=1 BENCH_OUT_DIR="$out" bash bench/run.sh >"$out/run.log" 2>&1 || {
        tail -30 "$out/run.log"
        return 1
    }
    local section missing=0
    for section in "## SQL workloads" "## pgbench" "## Engine" "## The libc layer" "## Server start" "## Targets"; do
        grep -q "^$section" "$out/RESULTS.md" || { echo "RESULTS.md lacks '$section'"; missing=1; }
    done
    grep -E '^[0-9]+ PASS, [0-9]+ UNCLEAR, [0-9]+ MISS' "$out/RESULTS.md" || missing=1
    [ $missing -eq 0 ] && rm -rf "$out"
    return $missing
}
run_suite "extension build and install (PGXS)" extension_install
run_suite "pg_regress and TAP (make installcheck)" extension_installcheck
run_suite "benchmark harness smoke run (BENCH_QUICK=1; figures not checked)" bench_smoke
if [ "${EC_PG_SUITES:-1}" = 1 ]; then
    run_suite "PostgreSQL's own suites, parity with and without the extension" make -s pg-suite-parity
fi

echo
for name in "${failures[@]}"; do
    echo "FAILED: $name"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
