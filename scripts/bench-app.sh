#!/usr/bin/env bash
# Desktop-app benchmark of issue 5 (docs/benchmarks.md, "Desktop app"): cold start to interactive UI
# and idle memory (PSS of the app and all its WebKit processes) of the real Sealpost app with a
# 100k-message history, against a bare Tauri hello app (benches/bare-tauri) built in the same run.
# Benchmarks stay out of CI: .ci/run never calls this.
#
#     scripts/bench-app.sh
#
# It installs what is missing (scripts/setup.sh: apt packages, the UI build; tauri-driver through
# cargo install), builds both apps and the bench tools in release, then inside Xvfb and a private
# D-Bus session with a throwaway unlocked gnome-keyring (scripts/with-keyring.sh):
#   1. seed-history: profile `bench` with a contact and the history in the real encrypted store
#      (seeded on tmpfs, where an fsync is free, then copied to the run's data directory on disk);
#   2. app-startup: N launches of each app, alternating, through a fresh tauri-driver each, and a
#      table of medians, p90s and ratios.
#
# Environment:
#   SEALPOST_BENCH_RUNS=10          measured launches per app
#   SEALPOST_BENCH_MESSAGES=100000  history size
#   SEALPOST_BENCH_IDLE_SECS=10     idle time before memory is read
#   SEALPOST_BENCH_SKIP_SETUP=1     skip scripts/setup.sh (system packages and UI already there)
#   SEALPOST_BENCH_BARE_ONLY=1      measure only the bare app (no Sealpost build, no seeding)
#   SEALPOST_BENCH_APP=PATH         measure this sealpost binary (e.g. an earlier commit's) instead
#                                   of building the tree's; the bench tools are still built
#   CARGO_TARGET_DIR                honoured as usual (binaries are taken from there)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

if [ "${1:-}" != "--inside-session" ]; then
  # ---- Outside: install, build, then re-enter this script inside Xvfb + D-Bus + keyring. ----
  if [ "${SEALPOST_BENCH_SKIP_SETUP:-0}" != 1 ]; then
    bash scripts/setup.sh
  fi
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
  if ! command -v tauri-driver >/dev/null; then
    echo "bench-app: installing tauri-driver"
    cargo install tauri-driver --locked
  fi
  command -v WebKitWebDriver >/dev/null || {
    echo "bench-app: WebKitWebDriver is missing (apt-get install webkit2gtk-driver)" >&2
    exit 1
  }

  target_dir="${CARGO_TARGET_DIR:-$repo/target}"
  case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
  export CARGO_TARGET_DIR="$target_dir"

  echo "bench-app: building the bench tools and the bare Tauri app (release)"
  cargo build --release --locked -p sealpost-app-bench
  (cd benches/bare-tauri && cargo build --release --locked)
  export SEALPOST_BENCH_BARE_BIN="$target_dir/release/bare-tauri"
  export SEALPOST_BENCH_TOOLS="$target_dir/release"
  if [ "${SEALPOST_BENCH_BARE_ONLY:-0}" != 1 ]; then
    if [ ! -f ui/dist/index.html ]; then
      echo "bench-app: ui/dist/index.html is missing: build the UI (scripts/setup.sh)" >&2
      exit 1
    fi
    # The UI's first bundle (what the webview loads before the chat list) and the lazy chunks.
    entry_js=$(grep -o 'assets/index-[^"]*\.js' ui/dist/index.html | head -n 1)
    all_js=$(cat ui/dist/assets/*.js | wc -c)
    echo "bench-app: UI first bundle $(wc -c < "ui/dist/$entry_js") bytes ($entry_js); all JS $all_js bytes"
    if [ -n "${SEALPOST_BENCH_APP:-}" ]; then
      echo "bench-app: measuring the given Sealpost binary $SEALPOST_BENCH_APP"
      export SEALPOST_BENCH_APP_BIN="$SEALPOST_BENCH_APP"
    else
      echo "bench-app: building Sealpost (release)"
      cargo build --release --locked -p sealpost
      export SEALPOST_BENCH_APP_BIN="$target_dir/release/sealpost"
    fi
  fi

  run_dir=$(mktemp -d "${TMPDIR:-/tmp}/sealpost-bench-app.XXXXXX")
  export SEALPOST_BENCH_RUN_DIR="$run_dir"
  export SEALPOST_DATA_DIR="$run_dir/data"
  export XDG_CONFIG_HOME="$run_dir/config"
  export XDG_DATA_HOME="$run_dir/share"
  export XDG_CACHE_HOME="$run_dir/cache"
  mkdir -p "$SEALPOST_DATA_DIR" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$run_dir/logs"
  echo "bench-app: run directory $run_dir"

  status=0
  xvfb-run -a -s "-screen 0 1280x800x24" \
    bash "$repo/scripts/with-keyring.sh" bash "$repo/scripts/bench-app.sh" --inside-session \
    || status=$?
  if [ "$status" -eq 0 ]; then
    rm -rf "$run_dir"
  else
    echo "bench-app: failed; logs kept in $run_dir/logs" >&2
  fi
  exit "$status"
fi

# ---- Inside Xvfb, a private D-Bus session and an unlocked gnome-keyring. ----
runs="${SEALPOST_BENCH_RUNS:-10}"
messages="${SEALPOST_BENCH_MESSAGES:-100000}"
idle="${SEALPOST_BENCH_IDLE_SECS:-10}"
tools="$SEALPOST_BENCH_TOOLS"

echo "bench-app: machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(uptime | sed 's/.*load average/load average/')"

app_args=()
if [ "${SEALPOST_BENCH_BARE_ONLY:-0}" != 1 ]; then
  # Seed on tmpfs: every store write is a synchronous=FULL transaction, and the copy is the same bytes.
  seed_parent=/dev/shm
  [ -d "$seed_parent" ] && [ -w "$seed_parent" ] || seed_parent="${TMPDIR:-/tmp}"
  seed_root=$(mktemp -d "$seed_parent/sealpost-bench-seed.XXXXXX")
  echo "bench-app: seeding $messages messages (on $seed_root)"
  SEALPOST_DATA_DIR="$seed_root" "$tools/seed-history" --messages "$messages"
  cp -a "$seed_root/." "$SEALPOST_DATA_DIR/"
  rm -rf "$seed_root"
  echo "bench-app: checking the copied profile"
  "$tools/seed-history" --check
  app_args=(--app "$SEALPOST_BENCH_APP_BIN")
fi

echo "bench-app: measuring ($runs launches per app, ${idle} s idle)"
"$tools/app-startup" "${app_args[@]}" --bare "$SEALPOST_BENCH_BARE_BIN" \
  --runs "$runs" --idle-secs "$idle" --log-dir "$SEALPOST_BENCH_RUN_DIR/logs"
echo "bench-app: after the run: $(uptime | sed 's/.*load average/load average/')"
