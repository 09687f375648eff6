#!/usr/bin/env bash
# The main job: build and install ephemeral_crypt, start two throwaway
# clusters as an unprivileged user (one without the extension, one with every
# category encrypted), drive the same workload through every category while
# the files exist, scan the disk for the workload's canary strings, and print
# the status report and the evidence.
#
#   bash scripts/demo.sh                   on this Debian 12 host, PostgreSQL 15
#   PG_MAJOR=18 bash scripts/demo.sh       in the chroot of the release that
#                                          ships that major (scripts/chroot.sh)
#   EC_DEMO_INSTALLED=1 bash scripts/demo.sh
#                                          against the extension already
#                                          installed (a postgresql-NN-ephemeral-crypt
#                                          package): nothing is built; PG_CONFIG
#                                          names the major's pg_config
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ -n "${PG_MAJOR:-}" ] && [ "${EC_IN_CHROOT:-0}" != 1 ] && [ "$PG_MAJOR" != 15 ]; then
    source scripts/chroot.sh
    bash scripts/install-deps.sh
    sync_source "$(ensure_build_root "$PG_MAJOR")"
    run_in_build_root "$PG_MAJOR" bash scripts/demo.sh
    exit
fi
source scripts/common.sh

step() { printf '\n==> %s\n' "$*"; }

if [ "${EC_DEMO_INSTALLED:-0}" = 1 ]; then
    step "using the installed extension: $("$PG_CONFIG" --pkglibdir)/ephemeral_crypt.so ($("$PG_CONFIG" --version))"
    [ -f "$("$PG_CONFIG" --pkglibdir)/ephemeral_crypt.so" ] || {
        echo "ephemeral_crypt is not installed for $("$PG_CONFIG" --version)" >&2
        exit 1
    }
else
    if [ "${EC_IN_CHROOT:-0}" != 1 ]; then
        step "installing build dependencies (Debian packages)"
        bash scripts/install-deps.sh
    fi
    step "building and installing the extension ($("$PG_CONFIG" --version))"
    make -s -j"$(nproc)" >/dev/null
    make -s install >/dev/null
fi

work=$(mktemp -d /tmp/ephemeral_crypt-demo.XXXXXX)
chmod 755 "$work"
[ "$(id -u)" -eq 0 ] && chown "$EC_TEST_USER" "$work"
keep=${EC_DEMO_KEEP:-0}
cleanup() {
    for dir in "$work"/plain "$work"/encrypted; do
        [ -f "$dir/data/postmaster.pid" ] && as_test_user pg_ctl -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    done
    [ "$keep" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

run_id=$(od -An -tx4 -N4 /dev/urandom | tr -d ' ')
port=$((54000 + RANDOM % 1000))

start_cluster() {  # name port with_extension
    local name=$1 cluster_port=$2 extension=$3 dir="$work/$1"
    as_test_user mkdir -p "$dir"
    as_test_user initdb -D "$dir/data" -A trust >/dev/null
    {
        echo "port = $cluster_port"
        echo "unix_socket_directories = '$dir'"
        echo "listen_addresses = ''"
        echo "work_mem = 64kB"
        echo "temp_buffers = 800kB"
        echo "wal_level = logical"
        echo "logical_decoding_work_mem = 64kB"
        echo "max_replication_slots = 4"
        echo "max_wal_senders = 4"
        echo "max_parallel_workers_per_gather = 2"
        echo "parallel_setup_cost = 0"
        echo "parallel_tuple_cost = 0"
        echo "min_parallel_table_scan_size = 0"
        echo "log_temp_files = 0"
        if [ "$extension" = on ]; then
            echo "shared_preload_libraries = 'ephemeral_crypt'"
            echo "ephemeral_crypt.encrypt_temp_relations = on"
            echo "ephemeral_crypt.encrypt_spill_files = on"
            echo "ephemeral_crypt.encrypt_wal = on"
            echo "ephemeral_crypt.policy_version = 'demo-1'"
        fi
    } | as_test_user tee -a "$dir/data/postgresql.conf" >/dev/null
    as_test_user pg_ctl -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
}

psql_on() {  # name, then psql arguments
    local name=$1
    shift
    as_test_user psql -X -q -v ON_ERROR_STOP=1 -h "$work/$name" -p "$(port_of "$name")" -d postgres "$@"
}
port_of() { [ "$1" = plain ] && echo "$port" || echo $((port + 1)); }

# Counts the files of one category under a data directory, and how many of
# them contain the marker in plaintext.
scan() {  # datadir category marker -> "files hits"
    local data=$1 category=$2 marker=$3 files=() hits=0
    case $category in
    spill) mapfile -t files < <(find "$data" -path '*pgsql_tmp/*' -type f 2>/dev/null
                                find "$data/pg_replslot" -name 'xid-*.spill' -type f 2>/dev/null) ;;
    temp_relation) mapfile -t files < <(find "$data/base" "$data/pg_tblspc/" -regextype posix-extended \
                                           -regex '.*/t[0-9]+_[0-9]+(_(fsm|vm|init))?(\.[0-9]+)?' -type f 2>/dev/null) ;;
    wal) mapfile -t files < <(find "$data/pg_wal" -maxdepth 1 -type f -regextype posix-extended \
                                 -regex '.*/[0-9A-F]{24}(\.partial)?' 2>/dev/null) ;;
    esac
    for f in "${files[@]}"; do
        grep -q -a -F "$marker" "$f" 2>/dev/null && hits=$((hits + 1))
    done
    echo "${#files[@]} $hits"
}

# Runs the workload on one cluster and records, per category, what the disk
# showed while the files existed.
workload() {  # name
    local name=$1 dir="$work/$1" marker="EC_CANARY_${run_id}"
    local ready="$dir/held.ready" done_flag="$dir/held.done"
    psql_on "$name" -c "CREATE TABLE canary AS SELECT g AS id, '${marker}_row_' || g AS payload FROM generate_series(1, 300000) g; ANALYZE canary;"
    if [ "$name" = encrypted ]; then psql_on "$name" -c "CREATE EXTENSION ephemeral_crypt;"; fi

    # A logical slot waits for every open transaction when it is created, so
    # it comes before the sessions below open theirs.
    psql_on "$name" -c "SELECT pg_create_logical_replication_slot('demo_slot', 'test_decoding');" >/dev/null

    # One session holds a spilled sort, a spilled hash aggregate (through a
    # materialized CTE), and a temp table larger than temp_buffers with an
    # index, until the scan is done.
    cat >"$dir/held.sql" <<SQL
BEGIN;
CREATE TEMP TABLE canary_temp AS SELECT id, payload || '_temp' AS payload FROM canary;
CREATE INDEX ON canary_temp (payload);
DECLARE sorted SCROLL CURSOR FOR SELECT payload FROM canary ORDER BY payload DESC;
FETCH 1 FROM sorted;
DECLARE hashed CURSOR FOR WITH m AS MATERIALIZED (SELECT payload || '_cte' AS p FROM canary) SELECT p, count(*) FROM m GROUP BY p;
FETCH 1 FROM hashed;
FETCH BACKWARD 1 FROM sorted;
\\! touch $ready; while [ ! -f $done_flag ]; do sleep 0.1; done
COMMIT;
SQL
    rm -f "$ready" "$done_flag"
    psql_on "$name" -f "$dir/held.sql" >/dev/null &
    local held=$!

    # Logical decoding spills an open transaction to pg_replslot while a
    # walsender decodes it.
    as_test_user pg_recvlogical --no-loop -h "$dir" -p "$(port_of "$name")" -d postgres -S demo_slot \
        --start -f /dev/null >"$dir/recvlogical.log" 2>&1 &
    local recv=$!
    cat >"$dir/txn.sql" <<SQL
BEGIN;
INSERT INTO canary SELECT g, '${marker}_decoded_' || g FROM generate_series(1, 100000) g;
\\! touch $dir/txn.ready; while [ ! -f $done_flag ]; do sleep 0.1; done
COMMIT;
SQL
    psql_on "$name" -f "$dir/txn.sql" >/dev/null &
    local txn=$!

    for _ in $(seq 1 600); do [ -f "$ready" ] && [ -f "$dir/txn.ready" ] && break; sleep 0.1; done
    for _ in $(seq 1 300); do
        compgen -G "$dir/data/pg_replslot/demo_slot/xid-*.spill" >/dev/null && break
        sleep 0.1
    done
    psql_on "$name" -c "CHECKPOINT;" >/dev/null
    for category in temp_relation spill wal; do
        echo "$category $(scan "$dir/data" "$category" "$marker")" >>"$dir/evidence"
    done
    touch "$done_flag"
    wait "$held" "$txn"
    # Ending the walsender ends pg_recvlogical (--no-loop).
    psql_on "$name" -c "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'demo_slot' AND active_pid IS NOT NULL;" >/dev/null
    wait "$recv" 2>/dev/null || true
    psql_on "$name" -c "SELECT pg_drop_replication_slot('demo_slot');" >/dev/null

    # Parallel hash join and parallel CREATE INDEX run to completion; the
    # counters show what they encrypted.
    psql_on "$name" -c "SET enable_hashjoin = on; SELECT count(*) FROM canary a JOIN canary b USING (id);" >/dev/null
    psql_on "$name" -c "SET maintenance_work_mem = '1MB'; CREATE INDEX ON canary (payload);" >/dev/null
}

step "starting a cluster without the extension (port $port) and one with it (port $((port + 1)))"
start_cluster plain "$port" off
start_cluster encrypted $((port + 1)) on
step "running the workload: sort, hash aggregate, materialized CTE, scroll cursor, temp table with index, logical decoding, parallel hash join, parallel CREATE INDEX, WAL"
workload plain
workload encrypted

step "ephemeral_crypt status (encrypted cluster)"
psql_on encrypted -c "SELECT ready, instance_key_id, key_created_at, key_age, policy_version, cipher FROM ephemeral_crypt_status();"
psql_on encrypted -c "SELECT category, enabled, degradation, files_encrypted, files_open, pg_size_pretty(bytes_encrypted) AS encrypted, pg_size_pretty(bytes_decrypted) AS decrypted, failures, plaintext_fallbacks FROM ephemeral_crypt_encryption_status();"
grep -h "ephemeral_crypt: ready" "$work/encrypted/server.log" | sed 's/^/  log: /'

step "evidence from the disk: files holding the canary \"EC_CANARY_${run_id}\" in plaintext, scanned while they existed"
printf '  %-14s %28s %28s\n' category "without extension" "with ephemeral_crypt"
failed=0
while read -r category files hits; do
    read -r _ efiles ehits < <(grep "^$category " "$work/encrypted/evidence")
    printf '  %-14s %28s %28s\n' "$category" "$hits of $files files" "$ehits of $efiles files"
    if [ "$ehits" -ne 0 ] || [ "$efiles" -eq 0 ] || [ "$hits" -eq 0 ]; then failed=1; fi
done <"$work/plain/evidence"

if [ "$failed" -eq 0 ]; then
    echo
    echo "RESULT: every category held the canary in plaintext without the extension, and nowhere with it."
else
    echo
    echo "RESULT: the evidence is incomplete or plaintext was found (see the table above)." >&2
    exit 1
fi
