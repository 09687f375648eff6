#!/usr/bin/env bash
# Runs the whole test suite on every PostgreSQL major the project supports and
# ends with one "N passed, N failed" line counting the suites.
#
#   bash test/run_all.sh                   everything
#   PG_MAJOR=18 bash test/run_all.sh       one major alone (or a list: "18 19")
#
# PostgreSQL 15 is Debian 12's, on this host; 17, 18 and 19 are the stock
# packages of trixie, sid and experimental, in chroots of those releases
# (scripts/chroot.sh), where the extension is built with that release's own
# compiler and libraries.
#
# It installs the Debian packages it needs first (scripts/install-deps.sh);
# this is the one place that does.
#
# Once, on the host (skipped when PG_MAJOR is set): the unit tests plain and
# under ASan+UBSan, the fuzzers, clang-format, and smoke runs of the
# benchmark harness and the instruction-count harness. Then for each major,
# against its own stock server:
#   - the extension's build and install (PGXS);
#   - pg_regress and every TAP test (make installcheck);
#   - PostgreSQL's own regression, test_decoding and isolation suites, with
#     and without the extension, for parity (test/pg_suites.sh); not run, and
#     said so, where the archive serves no source of that major;
#   - the Debian package: built with dpkg-buildpackage, installed with apt into
#     a clean root of its release, and the main job (scripts/demo.sh) run
#     against the installed files.
# With 18 and 19 both in the run: pg_upgrade from 18 to 19 (test/upgrade).
#
# Inside a build root, "run_all.sh --step NAME" runs one per-major step.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
source scripts/common.sh
source scripts/chroot.sh

jobs=$(nproc)
host_major=$("$PG_CONFIG" --version 2>/dev/null | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
EC_DEB_OUT=/var/tmp/ephemeral_crypt-debs

# ---------------------------------------------------------------------------
# Steps that run once per major, inside that major's environment
# ---------------------------------------------------------------------------

step_install() {
    make -j"$jobs" EC_TEST_HOOKS=1 >/dev/null && make install EC_TEST_HOOKS=1 >/dev/null
}

# pg_regress and TAP in a scratch copy the unprivileged user can write to.
# Extra make arguments (REGRESS=, PROVE_TESTS=...) are passed through.
step_installcheck() {
    local scratch
    scratch=$(make_scratch_tree "$top")
    as_test_user make -C "$scratch" installcheck EC_REGRESS_TMP="$scratch/tmp_regress" "$@"
    local rc=$?
    if [ $rc -ne 0 ]; then
        head -100 "$scratch"/regression.diffs 2>/dev/null
        ls "$scratch"/tmp_check/log/ 2>/dev/null
    else
        rm -rf "$scratch"
    fi
    return $rc
}

step_parity() {
    make -s pg-suite-parity
}

# Builds the Debian packages (one per installed major) from a copy of the
# source tree and leaves them in $EC_DEB_OUT.
step_package() {
    local scratch version
    scratch=$(mktemp -d /tmp/ephemeral_crypt-deb.XXXXXX)
    version=$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
    mkdir "$scratch/ephemeral-crypt-$version"
    tar -C "$top" --exclude='./build*' --exclude=./.git --exclude='./tmp_*' -cf - . |
        tar -C "$scratch/ephemeral-crypt-$version" -xf -
    (cd "$scratch/ephemeral-crypt-$version" && make -s distclean >/dev/null 2>&1
        dpkg-buildpackage -us -uc) >"$scratch/build.log" 2>&1 || {
        tail -40 "$scratch/build.log"
        return 1
    }
    grep -E '^dpkg-deb: building package' "$scratch/build.log"
    rm -rf "$EC_DEB_OUT"
    mkdir -p "$EC_DEB_OUT"
    cp "$scratch"/*.deb "$EC_DEB_OUT"/
    rm -rf "$scratch"
}

step_upgrade() {
    step_installcheck REGRESS= PROVE_TESTS="$(echo test/upgrade/*.pl)" \
        EC_UPGRADE_OLD_INSTALL="/usr/lib/postgresql/$EC_UPGRADE_FROM"
}

if [ "${1:-}" = --step ]; then
    "step_$2" "${@:3}"
    exit
fi

# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------

bash scripts/install-deps.sh || exit 1
passed=0
failed=0
failures=()
not_run=()
started=$SECONDS

run_suite() {
    local name=$1
    shift
    local t0=$SECONDS
    echo "=== $name"
    if "$@"; then
        passed=$((passed + 1))
        echo "=== $name: passed ($((SECONDS - t0)) s)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "=== $name: FAILED ($((SECONDS - t0)) s)"
    fi
}

# in_env MAJOR [NAME=VALUE...] STEP [ARG...]: runs a step in MAJOR's
# environment (this host for its own major, else the build root of the
# release that ships it), with the given variables set.
in_env() {
    local major=$1 vars=()
    shift
    while [[ ${1:-} == *=* ]]; do
        vars+=("$1")
        shift
    done
    if [ "$major" = "$host_major" ]; then
        env "${vars[@]}" bash test/run_all.sh --step "$@"
    else
        local rc=0
        ROOT_ENV=("${vars[@]}")
        run_in_build_root "$major" bash test/run_all.sh --step "$@" || rc=$?
        ROOT_ENV=()
        return $rc
    fi
}

# The filesystem root of MAJOR's environment ("" for this host).
env_root() {
    [ "$1" = "$host_major" ] && return 0
    echo "$EC_CHROOT_CACHE/build-$(release_of_major "$1")"
}

prepare_env() {
    local major=$1
    [ "$major" = "$host_major" ] && return 0
    local root
    root=$(ensure_build_root "$major") || return 1
    sync_source "$root"
    run_in_root "$root" sh -c "pg_config_major=\$(/usr/lib/postgresql/$major/bin/pg_config --version); echo \"  \$pg_config_major, \$(. /etc/os-release; echo \$PRETTY_NAME), \$(dpkg-query -W -f='\${Package} \${Version}' postgresql-$major)\""
}

# Fetches the major's source on the host and runs the parity step in its
# environment; a major whose source the archive does not serve is listed as
# not run instead of counted.
parity() {
    local major=$1 tree rc root
    tree=$(bash scripts/pg_source.sh fetch "$major")
    rc=$?
    if [ $rc -eq 3 ]; then
        not_run+=("PostgreSQL $major: PostgreSQL's own suites (parity): the archive serves no source of postgresql-$major ($tree)")
        echo "=== PostgreSQL $major: PostgreSQL's own suites: NOT RUN, the archive serves no source of postgresql-$major ($tree)"
        return 0
    fi
    local name="PostgreSQL $major: PostgreSQL's own suites, parity with and without the extension"
    if [ $rc -ne 0 ]; then
        run_suite "$name" false
        return 0
    fi
    root=$(env_root "$major")
    if [ -n "$root" ]; then
        local inside=/var/tmp/ephemeral_crypt-pgsrc/$major
        rm -rf "$root$inside"
        mkdir -p "$root$inside"
        cp -a "$tree" "$root$inside/"
        tree=$inside/$(basename "$tree")
    fi
    run_suite "$name" in_env "$major" EC_PG_SRC_TREE="$tree" parity
}

# Builds the packages in the major's environment (once per release and run),
# installs this major's into a clean root of its release with apt, and runs
# the main job there against the installed files.
package_test() {
    local major=$1 release root debs clean
    release=$(release_of_major "$major") || return 1
    root=$(env_root "$major")
    debs=$root$EC_DEB_OUT
    if [ ! -f "$debs/.run-$run_id" ]; then
        in_env "$major" package || return 1
        touch "$debs/.run-$run_id"
    fi
    local deb
    deb=$(ls "$debs"/postgresql-"$major"-ephemeral-crypt_*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || { echo "no postgresql-$major-ephemeral-crypt package was built"; return 1; }
    clean=$EC_CHROOT_CACHE/clean-$release-$major
    make_clean_root "$release" "$clean" || return 1
    mkdir -p "$clean/root/ephemeral_crypt"
    cp "$deb" "$clean/root/"
    cp -a scripts "$clean/root/ephemeral_crypt/"
    local rc=0
    echo "  installing $(basename "$deb") into a clean $release root"
    apt_in_root "$clean" install -qq "/root/$(basename "$deb")" >"$clean.log" 2>&1 ||
        { tail -20 "$clean.log"; rc=1; }
    if [ $rc -eq 0 ]; then
        ROOT_ENV=(PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" EC_DEMO_INSTALLED=1)
        run_in_root "$clean" bash -c 'dpkg -L "postgresql-$0-ephemeral-crypt" | grep -E "(\.so|\.control|ephemeral_crypt_policy)$" | sed "s/^/  installed: /" &&
            bash /root/ephemeral_crypt/scripts/demo.sh' "$major" >"$clean-demo.log" 2>&1 || rc=1
        ROOT_ENV=()
        grep -E '^  installed: |^  (category|temp_relation|spill|wal) |^RESULT' "$clean-demo.log"
        [ $rc -eq 0 ] || tail -30 "$clean-demo.log"
    fi
    remove_root "$clean"
    return $rc
}

version_suites() {
    local major=$1 release
    release=$(release_of_major "$major") || { run_suite "PostgreSQL $major" false; return; }
    local where="this host"
    [ "$major" != "$host_major" ] && where="a $release chroot"
    echo
    echo "##### PostgreSQL $major: Debian $release's stock packages, on $where"
    if [ "$major" != "$host_major" ]; then
        local before=$failed
        run_suite "PostgreSQL $major: $release build root" prepare_env "$major"
        [ $failed -gt $before ] && return
    fi
    run_suite "PostgreSQL $major: extension build and install (PGXS)" in_env "$major" install
    run_suite "PostgreSQL $major: pg_regress and TAP (make installcheck)" in_env "$major" installcheck
    parity "$major"
    run_suite "PostgreSQL $major: Debian package, installed into a clean $release root, main job" \
        package_test "$major"
}

# --- once, on the host ------------------------------------------------------

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

# Runs a command with its output in LOG; when it fails, shows the log's end.
run_logged() {  # log command...
    local log=$1
    shift
    "$@" >"$log" 2>&1 || {
        tail -30 "$log"
        return 1
    }
}

# The benchmark harness must keep running from a fresh clone. Its figures are
# not checked (timings never go into tests): only that it completes and
# writes a report with every section.
bench_smoke() {
    local out
    out=$(mktemp -d /tmp/ephemeral_crypt-bench-smoke.XXXXXX)
    run_logged "$out/run.log" env BENCH_QUICK=1 BENCH_OUT_DIR="$out" bash bench/run.sh || return 1
    local section missing=0
    for section in "## SQL workloads" "## pgbench" "## Engine" "## The libc layer" "## Server start" "## Targets"; do
        grep -q "^$section" "$out/RESULTS.md" || { echo "RESULTS.md lacks '$section'"; missing=1; }
    done
    grep -E '^[0-9]+ PASS, [0-9]+ UNCLEAR, [0-9]+ MISS' "$out/RESULTS.md" || missing=1
    [ $missing -eq 0 ] && rm -rf "$out"
    return $missing
}

# The archiving benchmark, one short round: it completes and reports both
# states (figures not checked).
archiving_smoke() {
    local out
    out=$(mktemp -d /tmp/ephemeral_crypt-archiving-smoke.XXXXXX)
    run_logged "$out/run.log" env BENCH_ARCHIVE_ROUNDS=1 BENCH_ARCHIVE_SECONDS=5 \
        BENCH_ARCHIVE_OUT="$out/ARCHIVING.md" bash bench/archiving.sh || return 1
    local rows
    rows=$(grep -cE '^\| (A|C) \| [1-9]' "$out/ARCHIVING.md")
    [ "$rows" -eq 2 ] || { echo "ARCHIVING.md has $rows state rows with archived segments, expected 2"; return 1; }
    rm -rf "$out"
}

# The instruction-count harness, on a small table: it completes and reports
# every workload (figures not checked).
instructions_smoke() {
    local out
    out=$(mktemp -d /tmp/ephemeral_crypt-insn-smoke.XXXXXX)
    run_logged "$out/run.log" env BENCH_INSN_ROWS=10000 BENCH_INSN_OUT="$out/INSTRUCTIONS.md" \
        bash bench/instructions.sh || return 1
    local rows
    rows=$(grep -c '^| [^-w|]' "$out/INSTRUCTIONS.md")
    [ "$rows" -eq 6 ] || { echo "INSTRUCTIONS.md has $rows workload rows, expected 6"; return 1; }
    rm -rf "$out"
}

run_id=$$-$(date +%s)
majors=${PG_MAJOR:-15 17 18 19}
if [ -z "${PG_MAJOR:-}" ]; then
    echo "##### Once, on this host"
    run_suite "unit tests (ctest)" unit_plain
    run_suite "unit tests under ASan+UBSan (ctest)" unit_sanitized
    run_suite "header fuzzer (libFuzzer, ${EC_FUZZ_SECONDS:-30} s)" run_fuzzer fuzz_header
    run_suite "clang-format" format_check
    run_suite "version: ephemeral_crypt.control and debian/changelog agree" make -s check-version
fi
for major in $majors; do
    version_suites "$major"
    if [ "$major" = "$host_major" ] && [ -z "${PG_MAJOR:-}" ]; then
        run_suite "benchmark summarizer unit tests (bench/test_summarize.py; targets table, verdicts)" \
            python3 bench/test_summarize.py
        # Uses the host's installed test build of the extension.
        run_suite "benchmark harness smoke run (BENCH_QUICK=1; figures not checked)" bench_smoke
        run_suite "instruction-count harness smoke run (callgrind; figures not checked)" instructions_smoke
        run_suite "archiving benchmark smoke run (figures not checked)" archiving_smoke
    fi
done
if [[ " $majors " == *" 18 "* ]] && [[ " $majors " == *" 19 "* ]]; then
    echo
    echo "##### pg_upgrade from PostgreSQL 18 to 19 (sid chroot, both installed)"
    run_suite "pg_upgrade 18 -> 19 with the extension and encrypted WAL" \
        in_env 19 EC_UPGRADE_FROM=18 upgrade
fi

echo
echo "total time $((SECONDS - started)) s"
for name in "${not_run[@]}"; do
    echo "NOT RUN: $name"
done
for name in "${failures[@]}"; do
    echo "FAILED: $name"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
