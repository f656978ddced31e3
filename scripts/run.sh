#!/usr/bin/env bash
# Sets everything up (system packages, the UI) and runs the Sealpost app in local test relay mode:
# the app starts the embedded relay on 127.0.0.1:47474 (or joins the one another profile runs), so
# two profiles on this desktop can chat with no server anywhere.
#
# Usage: scripts/run.sh [--profile NAME] [other sealpost arguments]
#   bash scripts/run.sh --profile alice &
#   bash scripts/run.sh --profile bob
#
# Needs a graphical session (DISPLAY or WAYLAND_DISPLAY) with a Secret Service (GNOME Keyring,
# KWallet or KeePassXC): that is where the app keeps your keys. On a machine without either, run
#   SEALPOST_HEADLESS=1 bash scripts/run.sh
# which starts a virtual display, a throwaway unlocked keyring and throwaway profiles (for trying
# it out only: keys and profiles are gone when the app exits).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "run: building Sealpost (release; the first build takes several minutes)"
cargo build --release --locked -p sealpost
target_dir="${CARGO_TARGET_DIR:-target}"
app="$target_dir/release/sealpost"

if [ "${SEALPOST_HEADLESS:-0}" = 1 ]; then
  # The keyring is thrown away when the app exits, and with it every profile's keys: the
  # profiles go too (a profile whose database key is gone could never open again).
  data_dir=$(mktemp -d "${TMPDIR:-/tmp}/sealpost-headless.XXXXXX")
  trap 'rm -rf "$data_dir"' EXIT
  export SEALPOST_DATA_DIR="$data_dir"
  echo "run: virtual display, throwaway keyring and throwaway profiles in $data_dir (SEALPOST_HEADLESS=1)"
  xvfb-run -a -s "-screen 0 1280x800x24" bash scripts/with-keyring.sh "$app" --local-relay "$@"
  exit
fi

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "run: no graphical display (DISPLAY/WAYLAND_DISPLAY are unset)." >&2
  echo "run: start this from a desktop session, or try it with SEALPOST_HEADLESS=1." >&2
  exit 1
fi

echo "run: starting Sealpost in local test relay mode (ws://127.0.0.1:47474)"
exec "$app" --local-relay "$@"
