#!/usr/bin/env bash
# PostgreSQL's own suites with and without ephemeral_crypt, compared for parity.
#
# Takes the regression suite (src/test/regress, parallel schedule) and
# contrib/test_decoding's suites (regress and isolation) of the installed
# server's major from Debian's archive (scripts/pg_source.sh), and runs each
# three times on a temporary instance of the installed server, each time
# with a tiny work_mem and logical_decoding_work_mem so that sorts, hashes
# and logical decoding spill to disk:
#
#   baseline   no extension
#   extension  shared_preload_libraries = 'ephemeral_crypt' and all three
#              categories encrypted (temp relations, spill files, WAL), in
#              the default AES-256-XTS
#   gcm        the same, with temporary relations and spill files in
#              AES-256-GCM (the authenticated mode; WAL stays XTS)
#
# The same tests must pass and the same tests fail in all runs. Parity, not
# zero failures, is the criterion: Debian's archive may serve an older minor
# release's source than the installed server's, and a few tests can then fail
# even without the extension. Exits 0 on parity for every suite, 1 on a
# difference, 2 on an error, and 3 when the archive serves no source of this
# major (the run cannot happen; the message says which versions were tried).
#
# Runs the servers as $EC_TEST_USER when started as root. Needs the
# installed major's postgresql-server-dev package (pg_regress and
# pg_isolation_regress).
#
# Environment:
#   EC_PRELOAD           library preloaded in the second run; a name in
#                        $(pg_config --pkglibdir) or an absolute path to a .so
#                        (default ephemeral_crypt; empty: the second run is a
#                        second baseline)
#   EC_EXTRA_CONF        further settings for the extension's runs, one per line
#                        (default: the three ephemeral_crypt.encrypt_* = on)
#   EC_GCM_CONF          what the gcm run adds to them (default: both
#                        *_cipher settings = aes-256-gcm); empty: no gcm run
#   EC_BASE_CONF         settings for both runs of every suite, one per line
#                        (default: logical_decoding_work_mem = 64kB and
#                        log_temp_files = 0, and work_mem = 64kB for the
#                        regression suite)
#   EC_PG_SUITES_LIST    suites to run (default
#                        "regress test_decoding test_decoding_isolation")
#   EC_PG_SRC_TREE       the unpacked source to take the suites from (default:
#                        fetched with scripts/pg_source.sh into EC_PGSRC_CACHE)
#   EC_PGSRC_CACHE       where sources are unpacked and the suites' test
#                        modules built (default /var/tmp/ephemeral_crypt-pgsrc)
#   EC_PG_SUITES_RESULTS results directory, emptied first
#                        (default /tmp/ephemeral_crypt-pg-suites)
#   EC_PG_SUITE_TIMEOUT  seconds allowed for one run of one suite (default 1800)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
source "$top/scripts/common.sh"
export LC_ALL=C  # for sort and join; the servers get C.UTF-8

PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
PGXS=$("$PG_CONFIG" --pgxs)
CACHE=${EC_PGSRC_CACHE:-/var/tmp/ephemeral_crypt-pgsrc}
RESULTS=${EC_PG_SUITES_RESULTS:-/tmp/ephemeral_crypt-pg-suites}
SUITES=${EC_PG_SUITES_LIST:-regress test_decoding test_decoding_isolation}
SUITE_TIMEOUT=${EC_PG_SUITE_TIMEOUT:-1800}
EC_PRELOAD=${EC_PRELOAD-ephemeral_crypt}
DEFAULT_EXTRA_CONF="ephemeral_crypt.encrypt_temp_relations = on
ephemeral_crypt.encrypt_spill_files = on
ephemeral_crypt.encrypt_wal = on"
EC_EXTRA_CONF=${EC_EXTRA_CONF-$DEFAULT_EXTRA_CONF}
DEFAULT_GCM_CONF="ephemeral_crypt.temp_relation_cipher = 'aes-256-gcm'
ephemeral_crypt.spill_cipher = 'aes-256-gcm'"
EC_GCM_CONF=${EC_GCM_CONF-$DEFAULT_GCM_CONF}
# The runs of each suite; the gcm run needs the extension.
MODES="baseline extension"
[ -n "$EC_PRELOAD" ] && [ -n "$EC_GCM_CONF" ] && MODES="$MODES gcm"

# Both runs: small enough that sorts, hashes and tuplestores spill to
# pgsql_tmp, and reorder buffers to pg_replslot/*/*.spill. test_decoding keeps
# the default work_mem: its reorder buffers spill through
# logical_decoding_work_mem alone, and under a 64kB work_mem its queries'
# GROUP BY spills and reorders array_agg, which makes its spill test (the one
# that reads .spill files back) fail in every run and so prove nothing.
# log_temp_files only writes to the server log, where the number of temporary
# files shows that the spills happened.
REGRESS_BASE_CONF="work_mem = 64kB
logical_decoding_work_mem = 64kB
log_temp_files = 0"
DECODING_BASE_CONF="logical_decoding_work_mem = 64kB
log_temp_files = 0"

script_start=$SECONDS
stage_start=$SECONDS
say() { echo "pg_suites: $*"; }
die() {
    echo "pg_suites: ERROR: $*" >&2
    echo "pg suites parity: ERROR ($*)"
    exit 2
}
stage() {
    stage_start=$SECONDS
    say "$*"
}
stage_done() { say "$* ($((SECONDS - stage_start)) s)"; }

# ---------------------------------------------------------------------------
# 1. The source
# ---------------------------------------------------------------------------

MAJOR=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
server_version=$("$PG_CONFIG" --version)
installed_version=$(dpkg-query -W -f='${Version}' "postgresql-$MAJOR" 2>/dev/null) ||
    die "postgresql-$MAJOR is not installed"

# Sets SRC to the unpacked tree to use, fetching it when needed.
obtain_source() {
    if [ -n "${EC_PG_SRC_TREE:-}" ]; then
        [ -f "$EC_PG_SRC_TREE/src/test/regress/parallel_schedule" ] ||
            die "EC_PG_SRC_TREE=$EC_PG_SRC_TREE holds no regression suite"
        SRC=$EC_PG_SRC_TREE
        return 0
    fi
    local out rc
    out=$(bash "$top/scripts/pg_source.sh" fetch "$MAJOR" "$CACHE")
    rc=$?
    if [ $rc -eq 3 ]; then
        say "the archive serves no source of postgresql-$MAJOR: $out"
        echo "pg suites parity: NOT RUN (no source of postgresql-$MAJOR is served: $out)"
        exit 3
    fi
    [ $rc -eq 0 ] || die "could not fetch the source of postgresql-$MAJOR"
    SRC=$out
}

# ---------------------------------------------------------------------------
# 2. What the suites need from the source: the C test modules of
#    src/test/regress, built with PGXS against the installed server's headers
# ---------------------------------------------------------------------------

build_modules() {
    local src=$1 build=$2
    local stamp="$build/.built-for $server_version"
    if [ -f "$build/.stamp" ] && [ "$(cat "$build/.stamp")" = "$stamp" ] &&
        [ -f "$build/regress.so" ] && [ -f "$build/autoinc.so" ] && [ -f "$build/refint.so" ]; then
        say "test modules: cached in $build"
        return 0
    fi
    rm -rf "$build"
    mkdir -p "$build"
    cp "$src/src/test/regress/regress.c" "$src/contrib/spi/autoinc.c" "$src/contrib/spi/refint.c" "$build/"
    cat >"$build/Makefile" <<EOF
# regress.so and contrib/spi's autoinc.so and refint.so, which the regression
# suite loads from --dlpath, built against the installed server.
MODULES = regress autoinc refint
override with_llvm = no
PG_CONFIG = $PG_CONFIG
PGXS := \$(shell \$(PG_CONFIG) --pgxs)
include \$(PGXS)
EOF
    make -C "$build" -j"$(nproc)" >"$build/build.log" 2>&1 || {
        tail -30 "$build/build.log" >&2
        return 1
    }
    echo "$stamp" >"$build/.stamp"
}

# ---------------------------------------------------------------------------
# 3. Running a suite
# ---------------------------------------------------------------------------

# A make variable's value from a Makefile, with continuation lines joined.
make_var() {
    awk -v name="$2" '
        { line = $0 }
        cont { buf = buf " " line } !cont { buf = line }
        { cont = sub(/\\$/, "", buf) }
        !cont && buf ~ "^" name "[ \t]*[:+]?=" { sub("^" name "[ \t]*[:+]?=", "", buf); print buf }
    ' "$1" | tr -s ' \t' '  ' | xargs
}

# Writes the --temp-config file of one run.
write_conf() {
    local file=$1 mode=$2 extra_file=$3 base=${EC_BASE_CONF-$4}
    {
        echo "# written by test/pg_suites.sh ($mode run)"
        [ -n "$extra_file" ] && cat "$extra_file"
        [ -n "$base" ] && echo "$base"
        if [ "$mode" != baseline ]; then
            [ -n "$EC_PRELOAD" ] && echo "shared_preload_libraries = '$EC_PRELOAD'"
            [ -n "$EC_EXTRA_CONF" ] && echo "$EC_EXTRA_CONF"
        fi
        [ "$mode" = gcm ] && echo "$EC_GCM_CONF"
        true
    } >"$file"
}

# run_suite SUITE MODE: runs one suite once; leaves NAME OUTCOME lines in
# $RESULTS/SUITE-MODE.results and the diffs, output and server log next to it.
run_suite() {
    local suite=$1 mode=$2
    local work=$RESULTS/work/$suite-$mode out=$RESULTS/$suite-$mode
    local conf=$work/temp.conf regress=$PG_REGRESS
    local -a args
    rm -rf "$work"
    mkdir -p "$work"
    case $suite in
    regress)
        write_conf "$conf" "$mode" "" "$REGRESS_BASE_CONF"
        args=(--inputdir="$SRC/src/test/regress" --dlpath="$MODULES_DIR"
            --schedule="$SRC/src/test/regress/parallel_schedule"
            --max-concurrent-tests=20)
        ;;
    test_decoding)
        write_conf "$conf" "$mode" "$SRC/contrib/test_decoding/logical.conf" "$DECODING_BASE_CONF"
        # shellcheck disable=SC2207
        args=(--inputdir="$SRC/contrib/test_decoding" --dlpath="$PKGLIBDIR"
            $(make_var "$SRC/contrib/test_decoding/Makefile" REGRESS))
        ;;
    test_decoding_isolation)
        regress=$PG_ISOLATION_REGRESS
        write_conf "$conf" "$mode" "$SRC/contrib/test_decoding/logical.conf" "$DECODING_BASE_CONF"
        # shellcheck disable=SC2207
        args=(--inputdir="$SRC/contrib/test_decoding" --dlpath="$PKGLIBDIR"
            $(make_var "$SRC/contrib/test_decoding/Makefile" ISOLATION))
        ;;
    *) die "unknown suite $suite" ;;
    esac
    [ "$(id -u)" -eq 0 ] && chown -R "$EC_TEST_USER" "$work"
    local started=$SECONDS rc
    (cd "$work" && as_test_user env LC_ALL=C.UTF-8 LANG=C.UTF-8 \
        timeout --kill-after=60 "$SUITE_TIMEOUT" "$regress" \
        --temp-instance="$work/tmp_check" --bindir="$PG_BINDIR" \
        --temp-config="$conf" --outputdir="$work" "${args[@]}") >"$out.out" 2>&1
    rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        echo "pg_suites: TIMEOUT after $SUITE_TIMEOUT s" >>"$out.out"
        as_test_user "$PG_BINDIR/pg_ctl" stop -D "$work/tmp_check/data" -m immediate >/dev/null 2>&1
    fi
    # pg_regress 15: "test name ... ok 12 ms", "     name ... FAILED 12 ms",
    # "     name ... failed (ignored)"; 16 and later: "ok 12 - name 12 ms",
    # "not ok 12 - name 12 ms", "ok 12 - name # SKIP".
    sed -nE \
        -e 's/^(test +| +)([^ ]+) +\.\.\. (ok|FAILED|failed \(ignored\)).*/\2 \3/p' \
        -e 's/^(not ok|ok) +[0-9]+ +[-+] +([^ ]+) .*/\2 \1/p' "$out.out" |
        sed -E 's/ (FAILED|not ok)$/ fail/; s/ ok$/ pass/; s/ failed \(ignored\)$/ fail(ignored)/' |
        sort -u -k1,1 >"$out.results"
    # A failure whose output holds exactly the lines of an expected file in
    # another order (a query without ORDER BY whose plan or physical row order
    # moved, as partition_info's do under a 64kB work_mem, in either run) is
    # marked fail(order); the comparison counts it as a pass.
    local inputdir=${args[0]#--inputdir=} t outcome exp
    while read -r t outcome; do
        [ "$outcome" = fail ] && [ -f "$work/results/$t.out" ] || continue
        for exp in "$inputdir/expected/$t.out" "$inputdir/expected/$t"_[0-9].out; do
            if [ -f "$exp" ] && cmp -s <(sort "$exp") <(sort "$work/results/$t.out"); then
                echo "$t"
                break
            fi
        done
    done <"$out.results" >"$work/order-only"
    if [ -s "$work/order-only" ]; then
        awk 'NR == FNR { order[$1] = 1; next } ($1 in order) { $2 = "fail(order)" } { print }' \
            "$work/order-only" "$out.results" >"$out.results.new" && mv "$out.results.new" "$out.results"
    fi
    cp "$conf" "$out.conf"
    [ -f "$work/regression.diffs" ] && cp "$work/regression.diffs" "$out.diffs"
    [ -f "$work/log/postmaster.log" ] && cp "$work/log/postmaster.log" "$out.postmaster.log"
    # Settings the server did not take (an unknown ephemeral_crypt.* name, a
    # library that does not load) void the run.
    if [ -f "$out.postmaster.log" ]; then
        # pg_regress's own readiness probes, turned away while the server
        # starts, are not complaints about the configuration.
        awk '/database system is ready to accept connections/ { exit }
             /FATAL:  the database system is (starting up|not yet accepting connections)/ { next }
             /(WARNING|ERROR|FATAL|PANIC): / { print }' "$out.postmaster.log" >"$out.startup-problems"
    fi
    [ -s "$out.startup-problems" ] || rm -f "$out.startup-problems"
    local passed failed
    passed=$(grep -c ' pass$' "$out.results")
    failed=$(grep -vc ' pass$' "$out.results")
    local order
    order=$(grep -c ' fail(order)$' "$out.results")
    say "$suite, $mode: $passed passed, $failed failed$([ "$order" -gt 0 ] && echo " ($order on row order only)"), pg_regress exit $rc ($((SECONDS - started)) s)"
    if [ -f "$out.postmaster.log" ]; then
        say "$suite, $mode: $(grep -c 'LOG:  temporary file: ' "$out.postmaster.log") temporary files (pgsql_tmp) logged"
        # What the preloaded library said when the server started.
        if [ "$mode" != baseline ] && [ -n "$EC_PRELOAD" ]; then
            local lib
            lib=$(basename "$EC_PRELOAD" .so)
            awk '/database system is ready to accept connections/ { exit } { print }' "$out.postmaster.log" |
                grep -F "$lib" | head -3 | cut -c1-400 | sed 's/^/    /'
        fi
    fi
    if [ -f "$out.startup-problems" ]; then
        say "$suite, $mode: the server complained while starting:"
        sed 's/^/    /' "$out.startup-problems"
    fi
    if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
        say "$suite, $mode: no test ran; the end of pg_regress's output:"
        tail -15 "$out.out" | sed 's/^/    /'
    fi
    # Keep the instance only if asked: it holds a whole cluster.
    [ "${EC_KEEP_INSTANCES:-0}" = 1 ] || rm -rf "$work/tmp_check"
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

say "server $server_version (package $installed_version)"
say "second run: shared_preload_libraries = '${EC_PRELOAD}'$( [ -n "$EC_EXTRA_CONF" ] && printf ', %s' "$(echo "$EC_EXTRA_CONF" | paste -sd, -)")"
[[ " $MODES " == *" gcm "* ]] && say "third run: the second's, and $(echo "$EC_GCM_CONF" | paste -sd, -)"
if [ -n "$EC_PRELOAD" ] && [[ $EC_PRELOAD != /* ]] && [ ! -f "$PKGLIBDIR/$EC_PRELOAD.so" ]; then
    say "warning: $PKGLIBDIR/$EC_PRELOAD.so does not exist (is the extension installed?)"
fi

stage "stage 1: PostgreSQL source (cache $CACHE)"
obtain_source
src_version=$(cat "$SRC/.complete" 2>/dev/null || basename "$SRC")
stage_done "source: $SRC (PostgreSQL $src_version)"

stage "stage 2: building what the suites need"
MODULES_DIR=$CACHE/$MAJOR/modules-$src_version
build_modules "$SRC" "$MODULES_DIR" || die "building regress.so, autoinc.so and refint.so failed"
PG_REGRESS=$(readlink -f "$(dirname "$PGXS")/../test/regress/pg_regress")
PG_ISOLATION_REGRESS=$(readlink -f "$(dirname "$PGXS")/../test/isolation/pg_isolation_regress")
[ -x "$PG_REGRESS" ] && [ -x "$PG_ISOLATION_REGRESS" ] ||
    die "pg_regress or pg_isolation_regress is missing (install postgresql-server-dev-$MAJOR)"
say "pg_regress: $PG_REGRESS"
stage_done "built"

rm -rf "$RESULTS"
mkdir -p "$RESULTS/work"
chmod 755 "$RESULTS" "$RESULTS/work"
for suite in $SUITES; do
    for mode in $MODES; do
        stage "running $suite, $mode"
        run_suite "$suite" "$mode"
    done
done
rm -rf "$RESULTS/work"

# ---------------------------------------------------------------------------
# 4. Comparison
# ---------------------------------------------------------------------------

# pass/fail counts of a results file; failures on row order only count as
# passes here, as in the comparison.
counts() {
    echo "$(grep -cE ' (pass|fail\(order\))$' "$1")/$(grep -vcE ' (pass|fail\(order\))$' "$1")"
}

# The tests of a suite whose outcome differs between the baseline and
# another run, or which ran in one of them only.
differing_from_baseline() {
    join -a1 -a2 -e missing -o 0,1.2,2.2 "$1" "$2" |
        awk '{ b = $2; e = $3; sub(/^fail\(order\)$/, "pass", b); sub(/^fail\(order\)$/, "pass", e) }
             b != e { printf "%s%s (%s -> %s)", sep, $1, $2, $3; sep = ", " }'
}

echo
printf '%-24s %6s' suite tests
for mode in $MODES; do printf ' | %-14s' "$mode pass/fail"; done
printf ' | %s\n' "tests whose outcome differs from the baseline"
printf '%s\n' "--------------------------------------------------------------------------------------------------------"
all_parity=1
summary=()
for suite in $SUITES; do
    base=$RESULTS/$suite-baseline.results
    total=$(for mode in $MODES; do cut -d' ' -f1 "$RESULTS/$suite-$mode.results"; done | sort -u | wc -l)
    differing=""
    summary_counts=""
    row=""
    for mode in $MODES; do
        results=$RESULTS/$suite-$mode.results
        row+=$(printf ' | %-14s' "$(counts "$results")")
        passes=$(grep -cE ' (pass|fail\(order\))$' "$results")
        label=""
        [ "$mode" = gcm ] && label="GCM "
        summary_counts+="${summary_counts:+ vs }$label$passes/$total"
        if [ "$mode" != baseline ]; then
            d=$(differing_from_baseline "$base" "$results")
            [ -n "$d" ] && differing="${differing:+$differing; }$mode: $d"
        fi
        if [ -f "$RESULTS/$suite-$mode.startup-problems" ]; then
            differing="${differing:+$differing; }server complained at startup in the $mode run"
        fi
    done
    verdict=PARITY
    if [ -n "$differing" ] || [ "$total" -eq 0 ]; then
        verdict=DIFFERENT
    fi
    [ "$total" -eq 0 ] && differing="no test ran"
    [ $verdict = PARITY ] || all_parity=0
    printf '%-24s %6s%s | %s\n' "$suite" "$total" "$row" "${differing:-none}"
    summary+=("$suite $summary_counts")
done
echo
for suite in $SUITES; do
    fails=$(grep -vE ' (pass|fail\(order\))$' "$RESULTS/$suite-baseline.results" | cut -d' ' -f1 | paste -sd' ' -)
    [ -n "$fails" ] && say "$suite: failing without the extension: $fails"
    for mode in $MODES; do
        order=$(grep ' fail(order)$' "$RESULTS/$suite-$mode.results" | cut -d' ' -f1 | paste -sd' ' -)
        [ -n "$order" ] && say "$suite: $mode run: failing on row order only (counted as passes for parity): $order"
    done
    # Failures common to the baseline and another run whose diffs differ:
    # informational, since a diff may hold run-dependent detail, but worth a
    # look.
    for mode in $MODES; do
        [ "$mode" = baseline ] && continue
        for t in $(join "$RESULTS/$suite-baseline.results" "$RESULTS/$suite-$mode.results" |
            awk '$2 != "pass" && $3 != "pass" { print $1 }'); do
            a=$(awk -v t="$t" '/^diff / { on = ($0 ~ "/" t "\\.out ") } on' "$RESULTS/$suite-baseline.diffs" 2>/dev/null | grep -E '^[-+][^-+]')
            b=$(awk -v t="$t" '/^diff / { on = ($0 ~ "/" t "\\.out ") } on' "$RESULTS/$suite-$mode.diffs" 2>/dev/null | grep -E '^[-+][^-+]')
            [ "$a" = "$b" ] || say "$suite: note: $t fails in the baseline and $mode runs, but its diffs differ"
        done
    done
done
say "results (diffs, outputs, server logs, configurations): $RESULTS"
say "total time $((SECONDS - script_start)) s"
[ $all_parity = 1 ] && verdict=PARITY || verdict=DIFFERENT
echo "pg suites parity, PostgreSQL $MAJOR (server $installed_version, suites from $src_version): $(printf '%s, ' "${summary[@]}" | sed 's/, $//'): $verdict"
[ $all_parity = 1 ]
