#!/usr/bin/env bash
# Sets everything up and runs every Sealpost test: the Rust workspace (against a real Secret Service
# and real relays on loopback) and the UI's unit tests. This is the README's test command and the core
# of .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== Rust workspace tests (real Secret Service via dbus-run-session + gnome-keyring)"
# The WebDriver crate drives real app windows and needs Xvfb and tauri-driver: it runs below,
# through its own script, and fails loudly if started without them.
# One build for all (the same feature set as the WebDriver step's), then each test binary in its
# own private D-Bus session with a fresh gnome-keyring: gnome-keyring 42 has been seen to exit
# after a long run of unrelated tests in one daemon (one run of local_relay then vault_keychain
# in one session lost it about every other time), and a fresh
# daemon per binary keeps one binary's keychain use from breaking the next one's.
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
  if ! (cd "$package_dir" && CARGO_MANIFEST_DIR="$package_dir" bash "$OLDPWD/scripts/with-keyring.sh" "$bin"); then
    failed+=("$(basename "$bin")")
  fi
done < "$bins_file"
echo "== Rust doc tests"
cargo test --workspace --locked --exclude sealpost-webdriver-tests --doc || failed+=("doc tests")
if [ "${#failed[@]}" -gt 0 ]; then
  echo "test.sh: failing test binaries: ${failed[*]}" >&2
  exit 1
fi

echo "== UI tests"
(cd ui && npm test)

echo "== End-to-end tests of the real window (WebDriver under Xvfb)"
SEALPOST_SKIP_UI_BUILD=1 bash scripts/webdriver.sh
