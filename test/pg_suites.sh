#!/usr/bin/env bash
# PostgreSQL's own suites with and without ephemeral_crypt, compared for parity.
#
# Takes PostgreSQL 15's regression suite (src/test/regress, parallel schedule)
# and contrib/test_decoding's suites (regress and isolation) from Debian's
# source package, and runs each twice on a temporary instance of the installed
# server, both times with a tiny work_mem and logical_decoding_work_mem so that
# sorts, hashes and logical decoding spill to disk:
#
#   baseline   no extension
#   extension  shared_preload_libraries = 'ephemeral_crypt' and all three
#              categories encrypted (temp relations, spill files, WAL)
#
# The same tests must pass and the same tests fail in both runs. Parity, not
# zero failures, is the criterion: Debian's archive may serve an older 15.x
# source than the installed server, and a few tests can then fail even without
# the extension. Exits 0 on parity for every suite.
#
# Must be started as root (it may configure a deb-src entry and download the
# source; the servers run as $EC_TEST_USER) or as an unprivileged user once
# the source is cached.
#
# Environment:
#   EC_PRELOAD           library preloaded in the second run; a name in
#                        $(pg_config --pkglibdir) or an absolute path to a .so
#                        (default ephemeral_crypt; empty: the second run is a
#                        second baseline)
#   EC_EXTRA_CONF        further settings for the second run, one per line
#                        (default: the three ephemeral_crypt.encrypt_* = on)
#   EC_BASE_CONF         settings for both runs of every suite, one per line
#                        (default: logical_decoding_work_mem = 64kB and
#                        log_temp_files = 0, and work_mem = 64kB for the
#                        regression suite)
#   EC_PG_SUITES_LIST    suites to run (default
#                        "regress test_decoding test_decoding_isolation")
#   EC_PGSRC_CACHE       where the source package is downloaded, unpacked and
#                        built (default /var/tmp/ephemeral_crypt-pgsrc)
#   EC_PG_SRC_VERSION    Debian version of the postgresql-15 source to use
#                        (default: the installed server's if the archive has
#                        it, else the newest the archive has)
#   EC_PG_SUITES_RESULTS results directory, emptied first
#                        (default /tmp/ephemeral_crypt-pg-suites)
#   EC_PG_SUITE_TIMEOUT  seconds allowed for one run of one suite (default 1800)
#   EC_BUILD_PG_REGRESS  1: build pg_regress from the source even when the
#                        installed one (postgresql-server-dev-15) is there
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
SRC_PACKAGE=postgresql-15

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
# 1. The source package
# ---------------------------------------------------------------------------

installed_version=$(dpkg-query -W -f='${Version}' "$SRC_PACKAGE" 2>/dev/null) ||
    die "$SRC_PACKAGE is not installed"
server_version=$("$PG_CONFIG" --version)

# The unpacked tree for a Debian version, if it is in the cache.
cached_tree() {
    local dir=$CACHE/$1
    [ -f "$dir/.complete" ] || return 1
    cat "$dir/.complete"
}

# Adds deb-src entries mirroring the existing Debian deb entries, unless some
# deb-src entry is configured already.
ensure_deb_src() {
    if grep -qsE '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; then
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "no deb-src entry in apt's sources and not root to add one"
    local deb822=/etc/apt/sources.list.d/ephemeral_crypt-deb-src.sources
    local oneline=/etc/apt/sources.list.d/ephemeral_crypt-deb-src.list
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        [ "$f" = "$deb822" ] && continue
        # Every stanza of type deb pointing at a Debian archive, as deb-src.
        awk 'BEGIN { RS = "" }
             /(^|\n)Types:[^\n]*deb/ && /(^|\n)URIs:[^\n]*debian/ {
                 sub(/Types:[^\n]*/, "Types: deb-src"); print; print ""
             }' "$f"
    done >"$deb822.new"
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        [ "$f" = "$oneline" ] && continue
        sed -nE 's/^[[:space:]]*deb[[:space:]]+(.*debian.*)$/deb-src \1/p' "$f"
    done >"$oneline.new"
    local added=0
    for f in "$deb822" "$oneline"; do
        if [ -s "$f.new" ]; then
            mv "$f.new" "$f"
            say "added deb-src entries in $f"
            added=1
        else
            rm -f "$f.new"
        fi
    done
    [ $added -eq 1 ] || die "found no Debian deb entry in apt's sources to mirror as deb-src"
}

# Downloads and unpacks $SRC_PACKAGE at version $1 into the cache.
download_source() {
    local version=$1 dir=$CACHE/$1 tmp
    command -v dpkg-source >/dev/null || {
        say "installing dpkg-dev (for dpkg-source)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg-dev >/dev/null ||
            die "cannot install dpkg-dev"
    }
    tmp=$(mktemp -d "$CACHE/download.XXXXXX")
    chmod 755 "$tmp"
    say "downloading the source of $SRC_PACKAGE $version into $dir"
    if ! (cd "$tmp" && apt-get source -qq "$SRC_PACKAGE=$version") >"$tmp.log" 2>&1; then
        grep -v '^W: Download is performed unsandboxed' "$tmp.log" | sed 's/^/    /'

        rm -rf "$tmp" "$tmp.log"
        return 1
    fi
    rm -f "$tmp.log"
    local tree
    tree=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name "$SRC_PACKAGE-*" | head -1)
    [ -n "$tree" ] && [ -f "$tree/src/test/regress/parallel_schedule" ] || {
        rm -rf "$tmp"
        die "apt-get source gave no usable tree"
    }
    rm -rf "$dir"
    mv "$tmp" "$dir"
    echo "$dir/$(basename "$tree")" >"$dir/.complete"
}

# Sets SRC to the unpacked tree to use, downloading it when needed.
obtain_source() {
    local want=${EC_PG_SRC_VERSION:-} fallback=$CACHE/fallback-for-$installed_version
    mkdir -p "$CACHE"
    chmod 755 "$CACHE" 2>/dev/null
    if [ -n "$want" ]; then
        SRC=$(cached_tree "$want") && return 0
    else
        SRC=$(cached_tree "$installed_version") && return 0
        # An earlier run found the installed version's source missing from
        # the archive and took the newest there was.
        if [ -f "$fallback" ]; then
            SRC=$(cached_tree "$(cat "$fallback")") && return 0
        fi
    fi
    [ "$(id -u)" -eq 0 ] || die "the source is not cached in $CACHE and only root may download it"
    ensure_deb_src
    say "apt-get update"
    apt-get update -qq || die "apt-get update failed"
    local available
    available=$(apt-cache showsrc "$SRC_PACKAGE" 2>/dev/null | sed -n 's/^Version: //p' | sort -u)
    [ -n "$available" ] || die "the archive serves no source for $SRC_PACKAGE"
    say "source versions in the archive: $(echo $available)"
    if [ -n "$want" ]; then
        download_source "$want" || die "apt-get source $SRC_PACKAGE=$want failed"
    else
        # The installed server's version first, then the others, newest
        # first: an index may list a version whose files the mirror lacks.
        local v candidates
        candidates=$( (grep -xF "$installed_version" <<<"$available"
            for v in $available; do
                [ "$v" = "$installed_version" ] && continue
                echo "$v"
            done | sort -r -V) )
        for v in $candidates; do
            if download_source "$v"; then
                want=$v
                break
            fi
            say "could not download the source of $SRC_PACKAGE $v"
        done
        [ -n "$want" ] || die "could not download any source of $SRC_PACKAGE"
        if [ "$want" != "$installed_version" ]; then
            say "using the source of $want for the installed server $installed_version"
            echo "$want" >"$fallback"
        fi
    fi
    SRC=$(cached_tree "$want") || die "no source tree"
}

# ---------------------------------------------------------------------------
# 2. What the suites need from the source: the C test modules of
#    src/test/regress (built with PGXS against the installed server's
#    headers) and, when the installed one is missing, pg_regress
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

build_pg_regress() {
    local src=$1 build=$2
    if [ -x "$build/src/test/regress/pg_regress" ] && [ -x "$build/src/test/isolation/pg_isolation_regress" ]; then
        say "pg_regress: cached in $build"
        return 0
    fi
    rm -rf "$build"
    mkdir -p "$build"
    say "configuring the source for pg_regress (VPATH build in $build)"
    (cd "$build" && "$src/configure" --without-readline --without-icu --without-zlib \
        --without-llvm --prefix="$("$PG_CONFIG" --bindir)/..") >"$build/configure.log" 2>&1 || {
        tail -30 "$build/configure.log" >&2
        return 1
    }
    say "building pg_regress and pg_isolation_regress"
    (make -C "$build/src/test/regress" -j"$(nproc)" pg_regress &&
        make -C "$build/src/test/isolation" -j"$(nproc)" pg_isolation_regress isolationtester) \
        >"$build/make.log" 2>&1 || {
        tail -30 "$build/make.log" >&2
        return 1
    }
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
        if [ "$mode" = extension ]; then
            [ -n "$EC_PRELOAD" ] && echo "shared_preload_libraries = '$EC_PRELOAD'"
            [ -n "$EC_EXTRA_CONF" ] && echo "$EC_EXTRA_CONF"
        fi
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
        sed -E 's/ (ok)$/ pass/; s/ (FAILED|not ok)$/ fail/; s/ failed \(ignored\)$/ fail(ignored)/' |
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
        awk '/database system is ready to accept connections/ { exit }
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
        if [ "$mode" = extension ] && [ -n "$EC_PRELOAD" ]; then
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
if [ -n "$EC_PRELOAD" ] && [[ $EC_PRELOAD != /* ]] && [ ! -f "$PKGLIBDIR/$EC_PRELOAD.so" ]; then
    say "warning: $PKGLIBDIR/$EC_PRELOAD.so does not exist (is the extension installed?)"
fi

stage "stage 1: PostgreSQL source (cache $CACHE)"
obtain_source
src_version=$(basename "$(dirname "$SRC")")
stage_done "source: $SRC (Debian $src_version)"

stage "stage 2: building what the suites need"
MODULES_DIR=$CACHE/$src_version/modules
build_modules "$SRC" "$MODULES_DIR" || die "building regress.so, autoinc.so and refint.so failed"
installed_regress=$(dirname "$PGXS")/../test/regress/pg_regress
installed_isolation=$(dirname "$PGXS")/../test/isolation/pg_isolation_regress
if [ "${EC_BUILD_PG_REGRESS:-0}" != 1 ] && [ -x "$installed_regress" ] && [ -x "$installed_isolation" ]; then
    PG_REGRESS=$(readlink -f "$installed_regress")
    PG_ISOLATION_REGRESS=$(readlink -f "$installed_isolation")
    say "pg_regress: the installed one, $PG_REGRESS"
else
    build_pg_regress "$SRC" "$CACHE/$src_version/build" || die "building pg_regress failed"
    PG_REGRESS=$CACHE/$src_version/build/src/test/regress/pg_regress
    PG_ISOLATION_REGRESS=$CACHE/$src_version/build/src/test/isolation/pg_isolation_regress
fi
stage_done "built"

rm -rf "$RESULTS"
mkdir -p "$RESULTS/work"
chmod 755 "$RESULTS" "$RESULTS/work"
for suite in $SUITES; do
    for mode in baseline extension; do
        stage "running $suite, $mode"
        run_suite "$suite" "$mode"
    done
done
rm -rf "$RESULTS/work"

# ---------------------------------------------------------------------------
# 4. Comparison
# ---------------------------------------------------------------------------

echo
printf '%-24s %6s | %-18s | %-18s | %s\n' suite tests "without: pass/fail" "with: pass/fail" "tests whose outcome differs"
printf '%s\n' "--------------------------------------------------------------------------------------------"
all_parity=1
summary=()
for suite in $SUITES; do
    base=$RESULTS/$suite-baseline.results
    ext=$RESULTS/$suite-extension.results
    # Failures on row order only count as passes here, as in the comparison.
    bp=$(grep -cE ' (pass|fail\(order\))$' "$base")
    bf=$(grep -vcE ' (pass|fail\(order\))$' "$base")
    ep=$(grep -cE ' (pass|fail\(order\))$' "$ext")
    ef=$(grep -vcE ' (pass|fail\(order\))$' "$ext")
    total=$(cut -d' ' -f1 "$base" "$ext" | sort -u | wc -l)
    # Tests whose outcome differs, or which ran in one run only.
    differing=$(join -a1 -a2 -e missing -o 0,1.2,2.2 "$base" "$ext" |
        awk '{ b = $2; e = $3; sub(/^fail\(order\)$/, "pass", b); sub(/^fail\(order\)$/, "pass", e) }
             b != e { printf "%s%s (%s -> %s)", sep, $1, $2, $3; sep = ", " }')
    verdict=PARITY
    if [ -n "$differing" ] || [ "$total" -eq 0 ]; then
        verdict=DIFFERENT
    fi
    for mode in baseline extension; do
        if [ -f "$RESULTS/$suite-$mode.startup-problems" ]; then
            verdict=DIFFERENT
            differing="${differing:+$differing; }server complained at startup in the $mode run"
        fi
    done
    [ "$total" -eq 0 ] && differing="no test ran"
    [ $verdict = PARITY ] || all_parity=0
    printf '%-24s %6s | %8s/%-9s | %8s/%-9s | %s\n' "$suite" "$total" "$bp" "$bf" "$ep" "$ef" "${differing:-none}"
    summary+=("$suite $bp/$total vs $ep/$total")
done
echo
for suite in $SUITES; do
    fails=$(grep -vE ' (pass|fail\(order\))$' "$RESULTS/$suite-baseline.results" | cut -d' ' -f1 | paste -sd' ' -)
    [ -n "$fails" ] && say "$suite: failing without the extension: $fails"
    for mode in baseline extension; do
        order=$(grep ' fail(order)$' "$RESULTS/$suite-$mode.results" | cut -d' ' -f1 | paste -sd' ' -)
        [ -n "$order" ] && say "$suite: $mode run: failing on row order only (counted as passes for parity): $order"
    done
    # Failures common to both runs whose diffs differ: informational, since
    # a diff may hold run-dependent detail, but worth a look.
    for t in $(join "$RESULTS/$suite-baseline.results" "$RESULTS/$suite-extension.results" |
        awk '$2 != "pass" && $3 != "pass" { print $1 }'); do
        a=$(awk -v t="$t" '/^diff / { on = ($0 ~ "/" t "\\.out ") } on' "$RESULTS/$suite-baseline.diffs" 2>/dev/null | grep -E '^[-+][^-+]')
        b=$(awk -v t="$t" '/^diff / { on = ($0 ~ "/" t "\\.out ") } on' "$RESULTS/$suite-extension.diffs" 2>/dev/null | grep -E '^[-+][^-+]')
        [ "$a" = "$b" ] || say "$suite: note: $t fails in both runs, but its diffs differ"
    done
done
say "results (diffs, outputs, server logs, configurations): $RESULTS"
say "total time $((SECONDS - script_start)) s"
[ $all_parity = 1 ] && verdict=PARITY || verdict=DIFFERENT
echo "pg suites parity: $(printf '%s, ' "${summary[@]}" | sed 's/, $//'): $verdict"
[ $all_parity = 1 ]
