#!/usr/bin/env bash
# The Rust half of scripts/test.sh (the README's test command), run by it inside the throwaway
# PostgreSQL server of scripts/with-postgres.sh (the relay's PostgreSQL tests need it and fail
# without it). Builds the workspace tests once and runs each test binary in its own keyring session.
set -euo pipefail
cd "$(dirname "$0")/.."

# One build for all (the same feature set as the WebDriver step's), then each test binary in its
# own private D-Bus session with a fresh gnome-keyring, so one binary's keychain use cannot
# break the next one's. gnome-keyring 42 itself sometimes aborts (SIGTRAP in GLib, in the kernel
# log) under a long run of Secret Service connections, more often on a loaded machine: a binary
# that failed while its daemon died is run once more (below).
bins_file="$(mktemp)"
trap 'rm -f "$bins_file"' EXIT
cargo test --workspace --locked --exclude sealpost-webdriver-tests --no-run --message-format=json \
  | jq -r 'select(.reason == "compiler-artifact" and .profile.test and .executable != null) | "\(.manifest_path)\t\(.executable)"' \
  | sort -u > "$bins_file"
count=$(wc -l < "$bins_file")
echo "$count test binaries"
[ "$count" -gt 0 ] || { echo "test.sh: no test binaries were built" >&2; exit 1; }
failed=()
while IFS=$'\t' read -r manifest bin; do
  echo "== $(basename "$bin")"
  # As `cargo test` runs it: from its package's directory, with CARGO_MANIFEST_DIR set.
  package_dir="$(dirname "$manifest")"
  run_binary() {
    (cd "$package_dir" && CARGO_MANIFEST_DIR="$package_dir" bash "$OLDPWD/scripts/with-keyring.sh" "$bin")
  }
  status=0
  run_binary || status=$?
  attempt=1
  while [ "$status" -eq 75 ] && [ "$attempt" -lt 3 ]; do
    # The binary failed because the gnome-keyring daemon itself died (with-keyring.sh says so;
    # the kernel log shows `trap int3 … libglib` in gnome-keyring-daemon): an environment failure,
    # not a test's. Run it again in a fresh session, at most three times in all; any other
    # failure, or a third daemon death, fails the run. (On a loaded 2-core machine the daemon
    # died under vault_keychain in 1 of 4 runs, so one retry was not enough.)
    echo "test.sh: the keyring daemon died under $(basename "$bin"); running it again" >&2
    attempt=$((attempt + 1))
    status=0
    run_binary || status=$?
  done
  if [ "$status" -ne 0 ]; then
    failed+=("$(basename "$bin")")
  fi
done < "$bins_file"
echo "== Rust doc tests"
cargo test --workspace --locked --exclude sealpost-webdriver-tests --doc || failed+=("doc tests")
if [ "${#failed[@]}" -gt 0 ]; then
  echo "test.sh: failing test binaries: ${failed[*]}" >&2
  exit 1
fi
