#!/usr/bin/env bash
# Installs, from Debian's archive, everything ephemeral_crypt needs on this
# Debian 12 host to build, test, package and benchmark, and to make the
# chroots of the other releases (scripts/chroot.sh installs what goes into
# those). Idempotent: it does nothing when all packages are there.
set -euo pipefail

packages=(
    build-essential g++ cmake pkg-config clang clang-format libclang-rt-14-dev
    libssl-dev libsodium-dev libgcrypt20-dev googletest libgtest-dev libgmock-dev libbenchmark-dev
    postgresql-15 postgresql-server-dev-15 postgresql-contrib libipc-run-perl
    openssl valgrind binutils gdb
    debootstrap curl xz-utils bzip2 dpkg-dev debhelper fakeroot postgresql-server-dev-all
    gnuplot-nox
    pgbackrest barman-cli patroni etcd-server etcd-client python3-etcd
)

missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run as root (or with sudo)" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
