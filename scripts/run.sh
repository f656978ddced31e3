#!/usr/bin/env bash
# Sets everything up and runs Sealpost with its local test relay on this machine.
# Usage: scripts/run.sh [--profile NAME]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

# The desktop app (src-tauri) is not built yet; until it lands this starts what exists: the relay, in the
# same place and on the same fixed loopback port the app's local test relay mode will use.
data_dir="${XDG_DATA_HOME:-$HOME/.local/share}/sealpost/local-relay"
mkdir -p "$data_dir"
echo "Sealpost local test relay: ws://127.0.0.1:47474 (database in $data_dir). Ctrl-C stops it."
exec cargo run --release --locked -p sealpost-relay -- --listen 127.0.0.1:47474 --database "$data_dir/relay.db"
