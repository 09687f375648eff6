#!/usr/bin/env bash
# Fetches the parts of PostgreSQL's source that the parity run needs (the
# regression suite, the isolation tester's specs, test_decoding and the spi
# test modules) for one major, from the Debian archive apt on this machine is
# configured with.
#
# The archive's index lists only the newest source of each package, and the
# frozen snapshot served here does not hold the files of every version it
# lists. So the candidates are every version the release's index names for
# postgresql-MAJOR, the installed server's version, and the earlier minor
# releases of each; the newest whose upstream tarball is served wins. An
# older source than the server's is fine for parity: both runs use it.
#
#   pg_source.sh fetch MAJOR [CACHE]
#
# Prints the unpacked tree (CACHE/MAJOR/postgresql-VERSION) and exits 0; or
# prints the versions tried and exits 3 when the archive serves none of them.
# CACHE defaults to /var/tmp/ephemeral_crypt-pgsrc. Needs curl, bzip2/xz.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
source "$top/scripts/chroot.sh"

say() { echo "pg_source: $*" >&2; }

# Upstream versions named for postgresql-MAJOR in SUITE's source index.
indexed_versions() {
    local major=$1 suite=$2 uri
    uri=$(debian_archive_uri) || return 1
    curl -fsS "$uri/dists/$suite/main/source/Sources.xz" | xz -dc |
        awk -v pkg="postgresql-$major" 'BEGIN { RS = "" } $0 ~ ("(^|\n)Package: " pkg "\n") {
            if (match($0, /\nVersion: [^\n]+/)) print substr($0, RSTART + 10, RLENGTH - 10) }' |
        sed -E 's/^[0-9]+://; s/-[^-]*$//'
}

# Candidate upstream versions, newest first: those given, and for a release
# X.Y every X.Y-1 down to X.0.
candidates() {
    local v
    for v in "$@"; do
        echo "$v"
        if [[ $v =~ ^([0-9]+)\.([0-9]+)$ ]]; then
            local minor
            for ((minor = BASH_REMATCH[2] - 1; minor >= 0; minor--)); do
                echo "${BASH_REMATCH[1]}.$minor"
            done
        fi
    done | sort -u -V -r
}

fetch() {
    local major=$1 cache=${2:-/var/tmp/ephemeral_crypt-pgsrc}/$1
    mkdir -p "$cache"
    local cached
    for cached in "$cache"/postgresql-*/.complete; do
        [ -f "$cached" ] && { dirname "$cached"; return 0; }
    done
    local suite installed uri
    suite=$(suite_of_major "$major") || return 1
    uri=$(debian_archive_uri) || return 1
    installed=$(dpkg-query -W -f='${Version}' "postgresql-$major" 2>/dev/null | sed -E 's/^[0-9]+://; s/-[^-]*$//')
    local listed
    listed=$(indexed_versions "$major" "$suite")
    say "postgresql-$major sources listed in $suite: $(echo $listed)${installed:+; installed server: $installed}"
    local tried=() v ext
    for v in $(candidates $listed $installed); do
        for ext in bz2 xz gz; do
            local url="$uri/pool/main/p/postgresql-$major/postgresql-${major}_$v.orig.tar.$ext"
            if curl -fsS -o "$cache/download.tar.$ext" "$url" 2>/dev/null; then
                local tree=$cache/postgresql-$v
                rm -rf "$tree" "$cache/unpack"
                mkdir -p "$cache/unpack"
                # Only the suites and their test modules: a fraction of the tree.
                tar -C "$cache/unpack" -xf "$cache/download.tar.$ext" --wildcards \
                    '*/src/test/regress/*' '*/src/test/isolation/*' '*/contrib/test_decoding/*' \
                    '*/contrib/spi/*' || { rm -rf "$cache/unpack" "$cache/download.tar.$ext"; return 1; }
                mv "$cache"/unpack/postgresql-* "$tree"
                rm -rf "$cache/unpack" "$cache/download.tar.$ext"
                echo "$v" >"$tree/.complete"
                say "postgresql-$major $v: served; unpacked into $tree"
                echo "$tree"
                return 0
            fi
        done
        tried+=("$v")
    done
    say "no source of postgresql-$major is served by the archive (tried: ${tried[*]:-none})"
    echo "none served (tried ${tried[*]:-none})"
    return 3
}

case ${1:-} in
fetch) fetch "${@:2}" ;;
*)
    sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
