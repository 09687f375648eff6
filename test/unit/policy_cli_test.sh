#!/usr/bin/env bash
# End-to-end run of the ephemeral_crypt_policy CLI, registered with ctest:
# keygen, sign, verify, tamper, verify again, digest, plus the refusals an
# operator relies on (no key overwrite, secret file mode, usage exit code).
# Usage: policy_cli_test.sh /path/to/ephemeral_crypt_policy
set -euo pipefail

tool=${1:?usage: $0 /path/to/ephemeral_crypt_policy}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# Runs the tool, keeps its output and exit status without tripping set -e.
run() {
    set +e
    output=$("$tool" "$@" 2>&1)
    status=$?
    set -e
}

# The last run exited with status $1; else fail, saying what ran ($2).
expect_exit() {
    [ "$status" -eq "$1" ] || fail "$2 exited $status: $output"
}

# The last run printed a line that is all of the basic regular expression $1.
expect_line() {
    grep -qx -- "$1" <<<"$output" || fail "no line '$1' in the output: $output"
}

run keygen --public "$work/policy.pub" --secret "$work/policy.sec"
expect_exit 0 "keygen"
[ "$(stat -c %a "$work/policy.sec")" = 600 ] || fail "secret key mode is not 0600"
grep -Eqx '[0-9a-f]{64}' "$work/policy.pub" || fail "public key is not 64 hex digits"

run keygen --public "$work/other.pub" --secret "$work/policy.sec"
[ "$status" -eq 1 ] || fail "keygen overwrote an existing secret (exit $status)"
[ ! -e "$work/other.pub" ] || fail "refused keygen left a public key behind"

cat >"$work/policy.conf" <<'POLICY'
# fleet policy, written by the control plane
version = 2026-11-01.3
temp_relation = on
spill = on
spill_degradation = fail_open_audit
wal = off
POLICY

run sign --secret "$work/policy.sec" "$work/policy.conf"
expect_exit 0 "sign"
grep -q '^signature = ' "$work/policy.conf" || fail "no signature line after sign"

run verify --public "$work/policy.pub" "$work/policy.conf"
expect_exit 0 "verify of a signed file"
expect_line 'status: ok'
expect_line 'version: 2026-11-01.3'
expect_line 'digest: [0-9a-f]\{64\}'

run digest "$work/policy.conf"
expect_exit 0 "digest"
expect_line '[0-9a-f]\{64\}'
signed_digest=$output

# Comments do not count: the signature still verifies after adding one.
sed -i '1a # reviewed' "$work/policy.conf"
run verify --public "$work/policy.pub" "$work/policy.conf"
[ "$status" -eq 0 ] || fail "a comment invalidated the signature: $output"

sed -i 's/^spill = on$/spill = off/' "$work/policy.conf"
run verify --public "$work/policy.pub" "$work/policy.conf"
[ "$status" -eq 1 ] || fail "verify of a tampered file exited $status: $output"
grep -q 'bad signature' <<<"$output" || fail "tampered file not reported as bad signature: $output"

run digest "$work/policy.conf"
[ "$status" -eq 0 ] && [ "$output" != "$signed_digest" ] ||
    fail "digest did not change with a setting"

run sign --secret "$work/policy.sec" "$work/policy.conf" -o "$work/resigned.conf"
[ "$status" -eq 0 ] || fail "re-sign to -o exited $status: $output"
[ "$(grep -c '^signature = ' "$work/resigned.conf")" -eq 1 ] || fail "re-sign kept two signatures"
run verify --public "$work/policy.pub" "$work/resigned.conf"
[ "$status" -eq 0 ] || fail "re-signed file does not verify: $output"

printf 'version = x\ntemp_relation = on\nspill = on\nwal = on\nwal_degradation = fail_open_audit\n' \
    >"$work/bad.conf"
run sign --secret "$work/policy.sec" "$work/bad.conf"
[ "$status" -eq 1 ] || fail "sign accepted a malformed file (exit $status)"
grep -q 'WAL accepts only fail_closed' <<<"$output" || fail "unclear malformed error: $output"

# The lifecycle keys: signed, shown as the server reads them, and covered by
# the signature.
cat >"$work/lifecycle.conf" <<'POLICY'
version = 2026-12-06.1
temp_relation = on
spill = on
wal = off
serial = 42
not_after = 2999-01-01T00:00:00Z
max_key_age = 720h
POLICY
run sign --secret "$work/policy.sec" "$work/lifecycle.conf"
[ "$status" -eq 0 ] && grep -q 'serial 42' <<<"$output" || fail "sign with serial: $output"
run verify --public "$work/policy.pub" "$work/lifecycle.conf"
expect_exit 0 "verify with lifecycle keys"
expect_line 'serial: 42'
expect_line 'not_after: 2999-01-01T00:00:00Z'
expect_line 'max_key_age: 30d (2592000 seconds)'
run show "$work/lifecycle.conf"
expect_exit 0 "show"
grep -qx 'serial: 42' <<<"$output" && grep -qx 'spill: encrypted, fail_closed, AES-256-XTS' <<<"$output" &&
    grep -qx 'signature: line 8' <<<"$output" || fail "show output: $output"
sed 's/^serial = 42$/serial = 43/' "$work/lifecycle.conf" >"$work/bumped.conf"
run verify --public "$work/policy.pub" "$work/bumped.conf"
[ "$status" -eq 1 ] && grep -q 'bad signature' <<<"$output" || fail "a changed serial still verified: $output"
sed 's/^not_after = .*$/not_after = 2000-01-01T00:00:00Z/' "$work/lifecycle.conf" | grep -v '^signature' >"$work/expired.conf"
run sign --secret "$work/policy.sec" "$work/expired.conf"
run verify --public "$work/policy.pub" "$work/expired.conf"
[ "$status" -eq 0 ] && grep -q '^not_after: 2000-01-01T00:00:00Z (passed' <<<"$output" ||
    fail "a passed not_after is not marked: $output"
run show "$work/policy.conf"
grep -qx 'serial: 0' <<<"$output" && grep -qx 'not_after: none' <<<"$output" ||
    fail "a file without lifecycle keys: $output"
printf 'version = x\ntemp_relation = on\nspill = on\nwal = off\nnot_after = 2027-02-30T00:00:00Z\n' \
    >"$work/baddate.conf"
run sign --secret "$work/policy.sec" "$work/baddate.conf"
[ "$status" -eq 1 ] && grep -q 'line 5: not_after must be a UTC time' <<<"$output" ||
    fail "sign accepted an impossible date: $output"

run verify --public "$work/policy.pub" "$work/missing.conf"
[ "$status" -eq 1 ] && grep -q '^status: missing$' <<<"$output" || fail "missing file: $output"

run frobnicate
[ "$status" -eq 2 ] && grep -q '^usage:' <<<"$output" || fail "unknown command not a usage error"
run verify "$work/policy.conf"
[ "$status" -eq 2 ] || fail "verify without --public exited $status"

echo "policy CLI: all checks passed"
