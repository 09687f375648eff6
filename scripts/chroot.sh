#!/usr/bin/env bash
# Debian chroots that carry the PostgreSQL majors Debian 12 does not ship, each
# one the stock packages of its own release: 17 from trixie, 18 from sid, 19
# from experimental on sid (so 18 and 19 share one root, which the pg_upgrade
# test needs). The extension is built inside them, with that release's
# compiler, OpenSSL, libgcrypt and libsodium; nothing built on the host ever
# runs there.
#
# Roots are made with debootstrap --variant=minbase from the Debian archive apt
# on this machine is configured with, and cached outside the source tree, so a
# second run on the same machine reuses them:
#
#   $EC_CHROOT_CACHE/base-RELEASE    minbase plus apt settings; copied to make a
#                                    clean root for package installation tests
#   $EC_CHROOT_CACHE/build-RELEASE   base plus the PostgreSQL majors and what
#                                    building and testing needs
#
# The archive is a frozen snapshot, so apt inside a root is told not to check
# Valid-Until (sid and experimental would otherwise be refused as expired).
#
# Sourced by test/run_all.sh and scripts/demo.sh; also a command (as root):
#   chroot.sh release MAJOR          the Debian release that ships MAJOR
#   chroot.sh ensure MAJOR           make or reuse the build root; print its path
#   chroot.sh run MAJOR CMD [ARG..]  run CMD in the build root, as root, with
#                                    /proc and /dev mounted, in the source copy
#   chroot.sh sync MAJOR             copy this source tree into the build root
#   chroot.sh clean-root RELEASE DIR make a pristine root of RELEASE at DIR

EC_CHROOT_CACHE=${EC_CHROOT_CACHE:-/var/tmp/ephemeral_crypt-chroots}
# Where the source tree is copied inside a root.
EC_CHROOT_SRC=/var/tmp/ephemeral_crypt-src
# Bumped whenever what goes into a root changes, so cached roots are redone.
EC_CHROOT_RECIPE=6

ec_chroot_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

chroot_say() { echo "chroot: $*" >&2; }
chroot_die() {
    echo "chroot: ERROR: $*" >&2
    return 1
}

# The Debian release whose own packages provide PostgreSQL MAJOR.
release_of_major() {
    case $1 in
    15) echo bookworm ;;
    17) echo trixie ;;
    18 | 19) echo sid ;;
    *) chroot_die "no Debian release ships PostgreSQL $1 (16 is in none this archive serves)" ;;
    esac
}

# The PostgreSQL majors installed together in a release's build root.
majors_of_release() {
    case $1 in
    bookworm) echo 15 ;;
    trixie) echo 17 ;;
    sid) echo "18 19" ;;
    esac
}

# The suite a major's packages are taken from (19 is only in experimental).
suite_of_major() {
    case $1 in
    19) echo experimental ;;
    *) release_of_major "$1" ;;
    esac
}

# The URI that apt on this machine takes SUITE from (a deb entry naming it),
# or nothing.
apt_uri_of_suite() {
    local suite=$1 f uri=
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk -v suite="$suite" 'BEGIN { RS = "" }
            {
                types = uris = suites = ""
                n = split($0, lines, "\n")
                for (i = 1; i <= n; i++) {
                    if (lines[i] ~ /^Types:/) types = lines[i]
                    if (lines[i] ~ /^URIs:/) uris = lines[i]
                    if (lines[i] ~ /^Suites:/) suites = lines[i]
                }
                if (types ~ /[ \t]deb([ \t]|$)/ && suites ~ ("[ \t]" suite "([ \t]|$)")) {
                    sub(/^URIs:[ \t]*/, "", uris); split(uris, u, /[ \t]+/); print u[1]; exit
                }
            }' "$f")
        [ -n "$uri" ] && break
    done
    if [ -z "$uri" ]; then
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$f" ] || continue
            uri=$(awk -v suite="$suite" '$1 == "deb" {
                    for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /=/) break
                    if ($(i + 1) == suite) { print $i; exit }
                }' "$f")
            [ -n "$uri" ] && break
        done
    fi
    echo "${uri%/}"
}

host_codename() { (. /etc/os-release && echo "$VERSION_CODENAME"); }

# The URI of the Debian archive that apt on this machine uses: where it takes
# the host's own release from. EC_DEBIAN_ARCHIVE overrides it.
debian_archive_uri() {
    if [ -n "${EC_DEBIAN_ARCHIVE:-}" ]; then
        echo "$EC_DEBIAN_ARCHIVE"
        return 0
    fi
    local uri
    uri=$(apt_uri_of_suite "$(host_codename)")
    [ -n "$uri" ] || chroot_die "found no Debian archive for $(host_codename) in apt's sources"
    echo "$uri"
}

# Mounts what servers and tools need inside ROOT: /proc, and /dev with its
# shared memory and pseudo-terminal file systems.
mount_root() {
    local root=$1
    mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
    mountpoint -q "$root/dev" || mount --bind /dev "$root/dev"
    mountpoint -q "$root/dev/pts" || mount --bind /dev/pts "$root/dev/pts"
    mountpoint -q "$root/dev/shm" || mount --bind /dev/shm "$root/dev/shm"
}

# Stops whatever still runs inside ROOT, then unmounts what mount_root mounted.
unmount_root() {
    local root=$1 p
    root=$(readlink -f "$root")
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null
    done
    local m
    for m in dev/shm dev/pts dev proc; do
        mountpoint -q "$root/$m" && { umount "$root/$m" 2>/dev/null || umount -l "$root/$m"; }
    done
    return 0
}

# Runs CMD inside ROOT with a clean environment plus the NAME=VALUE pairs in
# the array ROOT_ENV, mounting and unmounting around it.
run_in_root() {
    local root=$1
    shift
    mount_root "$root"
    local rc=0
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive "${ROOT_ENV[@]}" "$@" || rc=$?
    unmount_root "$root"
    return $rc
}
ROOT_ENV=()

apt_in_root() {
    local root=$1
    shift
    run_in_root "$root" apt-get -q -o Dpkg::Use-Pty=0 "$@"
}

# Writes apt's settings for RELEASE into ROOT.
configure_apt() {
    local root=$1 release=$2 uri
    uri=$(debian_archive_uri)
    {
        echo "deb $uri $release main"
        [ "$release" = sid ] && echo "deb $uri experimental main"
        # The host's own release gets the updates this host gets, so that a
        # package built here installs in a clean root of it.
        if [ "$release" = "$(host_codename)" ]; then
            local suite suite_uri
            for suite in "$release-updates" "$release-security"; do
                suite_uri=$(apt_uri_of_suite "$suite")
                [ -n "$suite_uri" ] && echo "deb $suite_uri $suite main"
            done
        fi
    } >"$root/etc/apt/sources.list"
    cat >"$root/etc/apt/apt.conf.d/90ephemeral-crypt" <<'EOF'
// The archive is a frozen snapshot: its Release files are past Valid-Until.
Acquire::Check-Valid-Until "false";
APT::Install-Recommends "false";
APT::Get::Assume-Yes "true";
EOF
    if [ "$release" = sid ]; then
        # PostgreSQL 19 is only in experimental: take it, and only it, from
        # there (as a whole, experimental would pull in newer base packages).
        cat >"$root/etc/apt/preferences.d/90ephemeral-crypt" <<'EOF'
Package: src:postgresql-19
Pin: release a=experimental
Pin-Priority: 990
EOF
    fi
    # Packages must not start services inside the root.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
}

# Makes (or reuses) the minbase root of RELEASE; prints its path.
ensure_base_root() {
    local release=$1 dir=$EC_CHROOT_CACHE/base-$1
    local stamp="recipe $EC_CHROOT_RECIPE $release"
    mkdir -p "$EC_CHROOT_CACHE"
    (
        flock 9
        if [ -f "$dir/.ec-base" ] && [ "$(cat "$dir/.ec-base")" = "$stamp" ]; then
            exit 0
        fi
        command -v debootstrap >/dev/null || {
            chroot_say "installing debootstrap"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
        }
        unmount_root "$dir" 2>/dev/null || true
        rm -rf "$dir" "$dir.new"
        local uri started=$SECONDS
        uri=$(debian_archive_uri)
        chroot_say "debootstrap --variant=minbase $release (into $dir)"
        debootstrap --variant=minbase "$release" "$dir.new" "$uri" >"$EC_CHROOT_CACHE/debootstrap-$release.log" 2>&1 || {
            tail -20 "$EC_CHROOT_CACHE/debootstrap-$release.log" >&2
            exit 1
        }
        configure_apt "$dir.new" "$release"
        apt_in_root "$dir.new" update -qq >/dev/null
        echo "$stamp" >"$dir.new/.ec-base"
        mv "$dir.new" "$dir"
        chroot_say "base root $release ready ($((SECONDS - started)) s)"
    ) 9>"$EC_CHROOT_CACHE/base-$release.lock" >&2 || return 1
    echo "$dir"
}

# What a build root of RELEASE holds besides the base.
build_packages() {
    local release=$1 m
    echo build-essential g++ pkg-config libssl-dev libsodium-dev libgcrypt20-dev
    echo libipc-run-perl perl procps gdb dpkg-dev debhelper fakeroot postgresql-server-dev-all
    # bench/run.sh builds engine_bench in each root, against that release's
    # OpenSSL and libgcrypt.
    echo cmake libbenchmark-dev openssl
    # The fleet's own tools, for the backup and high-availability tests.
    echo pgbackrest barman-cli patroni etcd-server etcd-client python3-etcd
    for m in $(majors_of_release "$release"); do
        echo "postgresql-$m postgresql-server-dev-$m"
    done
}

# Makes (or reuses) the build root of RELEASE; prints its path.
ensure_build_root_of_release() {
    local release=$1 dir=$EC_CHROOT_CACHE/build-$1 base
    base=$(ensure_base_root "$release") || return 1
    local packages stamp
    packages=$(build_packages "$release" | xargs -n1 | sort | xargs)
    stamp="recipe $EC_CHROOT_RECIPE $release: $packages"
    (
        flock 9
        if [ -f "$dir/.ec-build" ] && [ "$(cat "$dir/.ec-build")" = "$stamp" ]; then
            exit 0
        fi
        local started=$SECONDS
        unmount_root "$dir" 2>/dev/null || true
        rm -rf "$dir" "$dir.new"
        cp -a "$base" "$dir.new"
        rm -f "$dir.new/.ec-base"
        chroot_say "installing into the $release build root: $packages"
        apt_in_root "$dir.new" install -qq $packages >"$EC_CHROOT_CACHE/build-$release.log" 2>&1 || {
            tail -30 "$EC_CHROOT_CACHE/build-$release.log" >&2
            exit 1
        }
        echo "$stamp" >"$dir.new/.ec-build"
        mv "$dir.new" "$dir"
        chroot_say "build root $release ready ($((SECONDS - started)) s)"
    ) 9>"$EC_CHROOT_CACHE/build-$release.lock" >&2 || return 1
    echo "$dir"
}

ensure_build_root() {
    local release
    release=$(release_of_major "$1") || return 1
    ensure_build_root_of_release "$release"
}

# Copies the source tree (what git tracks, or every file when this is not a
# checkout) into ROOT at $EC_CHROOT_SRC, replacing an earlier copy.
sync_source() {
    local root=$1 dest=$1$EC_CHROOT_SRC
    rm -rf "$dest"
    mkdir -p "$dest"
    if git -C "$ec_chroot_top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$ec_chroot_top" && git ls-files -z --cached --others --exclude-standard |
            xargs -0 -r tar -cf - --no-recursion --ignore-failed-read 2>/dev/null) | tar -C "$dest" -xf -
    else
        tar -C "$ec_chroot_top" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$dest" -xf -
    fi
}

# Makes a pristine root of RELEASE at DIR: a copy of the base root.
make_clean_root() {
    local release=$1 dir=$2 base
    base=$(ensure_base_root "$release") || return 1
    rm -rf "$dir"
    cp -a "$base" "$dir"
    rm -f "$dir/.ec-base"
}

remove_root() {
    unmount_root "$1"
    rm -rf "$1"
}

# Runs CMD in MAJOR's build root, in the source copy, with PG_CONFIG set to
# that major's pg_config.
run_in_build_root() {
    local major=$1 root
    shift
    root=$(ensure_build_root "$major") || return 1
    local saved=("${ROOT_ENV[@]}") rc=0
    ROOT_ENV=(PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" PG_MAJOR="$major"
        EC_IN_CHROOT=1 "${saved[@]}")
    run_in_root "$root" /bin/bash -c 'cd "$0" && exec "$@"' "$EC_CHROOT_SRC" "$@" || rc=$?
    ROOT_ENV=("${saved[@]}")
    return $rc
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    [ "$(id -u)" -eq 0 ] || chroot_die "must run as root"
    command=${1:-}
    shift || true
    case $command in
    release) release_of_major "$1" ;;
    ensure) ensure_build_root "$1" ;;
    sync) sync_source "$(ensure_build_root "$1")" ;;
    run)
        major=$1
        shift
        run_in_build_root "$major" "$@"
        ;;
    clean-root) make_clean_root "$1" "$2" ;;
    *)
        sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
    esac
fi
