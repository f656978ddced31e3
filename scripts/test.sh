#!/usr/bin/env bash
# Sets everything up and runs every Sealpost test: the Rust workspace (against a real Secret Service
# and real relays on loopback) and the UI's unit tests. This is the README's test command and the core
# of .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== Rust workspace tests (real Secret Service via dbus-run-session + gnome-keyring)"
bash scripts/with-keyring.sh cargo test --workspace --locked

if [ -f ui/package.json ]; then
  echo "== UI tests"
  (cd ui && npm test)
fi
