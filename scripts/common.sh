# Shared by the scripts that start PostgreSQL: where its binaries are, and how
# to run a command as an unprivileged user when invoked as root (initdb and
# postgres refuse to run as root).
PG_CONFIG=${PG_CONFIG:-pg_config}
PG_BINDIR=$("$PG_CONFIG" --bindir)
export PATH="$PG_BINDIR:$PATH"
EC_TEST_USER=${EC_TEST_USER:-postgres}

as_test_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$EC_TEST_USER" -- env PATH="$PATH" "$@"
    else
        "$@"
    fi
}

# A scratch copy of the source tree the unprivileged user can write to
# (pg_regress and prove write their results next to the sources).
make_scratch_tree() {
    local scratch
    scratch=$(mktemp -d /tmp/ephemeral_crypt.XXXXXX)
    tar -C "$1" --exclude=./build --exclude=./build-asan --exclude=./.git -cf - . | tar -C "$scratch" -xf -
    if [ "$(id -u)" -eq 0 ]; then
        chown -R "$EC_TEST_USER" "$scratch"
    fi
    echo "$scratch"
}
