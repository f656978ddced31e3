#!/usr/bin/env bash
# Sets everything up and runs every Sealpost test: the Rust workspace (against a real Secret Service
# and real relays on loopback) and the UI's unit tests. This is the README's test command and the core
# of .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== Rust workspace tests (real Secret Service via dbus-run-session + gnome-keyring, real PostgreSQL)"
# The WebDriver crate drives real app windows and needs Xvfb and tauri-driver: it runs below,
# through its own script, and fails loudly if started without them. The relay's PostgreSQL tests
# use the throwaway server scripts/with-postgres.sh starts (and fail without it).
# The Rust tests themselves: scripts/rust-tests.sh (one build, each binary in its own keyring session).
bash scripts/with-postgres.sh bash scripts/rust-tests.sh

echo "== UI tests"
(cd ui && npm test)

echo "== End-to-end tests of the real window (WebDriver under Xvfb)"
SEALPOST_SKIP_UI_BUILD=1 bash scripts/webdriver.sh
