#!/usr/bin/env bash
# End-to-end tests of the real Sealpost window: builds the UI and the app, then runs the
# sealpost-webdriver-tests test binaries (two_profiles: alice and bob; group_chat: three people;
# image_and_file: an image and a file sent, previewed and saved)
# against app instances driven through tauri-driver + WebKitWebDriver (one driver per window), under Xvfb, a private D-Bus session and an unlocked
# gnome-keyring. Needs the system packages of scripts/setup.sh (xvfb, webkit2gtk-driver, dbus,
# gnome-keyring, the WebKitGTK build libraries).
#
# Environment:
#   SEALPOST_SCREENSHOT_DIR  where screenshots go (default: target/screenshots in the repo)
#   CARGO_TARGET_DIR         honoured as usual (the app binary is taken from there)
#   SEALPOST_SKIP_UI_BUILD=1 use the existing ui/dist (no npm ci / npm run build)
#   SEALPOST_WEBDRIVER_TESTS the test targets to run, in order (default: two_profiles group_chat
#                            image_and_file)
#
# Each run gets fresh XDG config/data/cache directories (window state, keyring) and a fresh
# SEALPOST_DATA_DIR (profiles), so runs never see each other's state. HOME is left alone so that
# cargo and rustup keep working.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

if [ "${1:-}" != "--inside-session" ]; then
  # ---- Outside: build everything, then re-enter this script inside Xvfb + D-Bus. ----
  if [ -f ui/package.json ] && [ "${SEALPOST_SKIP_UI_BUILD:-0}" != 1 ]; then
    echo "webdriver: building the UI"
    (cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build)
  fi
  if [ ! -f ui/dist/index.html ]; then
    echo "webdriver: ui/dist/index.html is missing: the app would have no UI to embed" >&2
    exit 1
  fi

  # One build for everything: the same `cargo test --workspace` build as scripts/test.sh (a no-op
  # after it). Selecting one package (`-p sealpost`, `-p sealpost-webdriver-tests`) or one test
  # target (`--test two_profiles`) changes cargo's unified feature set and rebuilt ~120 crates
  # (12 CPU-minutes here). src-tauri's integration test (tests/cli.rs) makes this build produce
  # the app binary too, and the test binary is run directly.
  echo "webdriver: building the app and the tests (the workspace test build)"
  artifacts=$(cargo test --workspace --locked --no-run --message-format=json)
  test_bins=()
  for test_name in ${SEALPOST_WEBDRIVER_TESTS:-two_profiles group_chat image_and_file}; do
    test_bin=$(jq -r --arg name "$test_name" 'select(.reason == "compiler-artifact"
        and .target.name == $name and .executable != null) | .executable' <<<"$artifacts")
    [ -x "$test_bin" ] || { echo "webdriver: the $test_name test binary was not built" >&2; exit 1; }
    test_bins+=("$test_bin")
  done
  export SEALPOST_WEBDRIVER_TEST_BINS="${test_bins[*]}"
  target_dir="${CARGO_TARGET_DIR:-$repo/target}"
  case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
  export SEALPOST_APP_BIN="$target_dir/debug/sealpost"
  [ -x "$SEALPOST_APP_BIN" ] || { echo "webdriver: $SEALPOST_APP_BIN was not built" >&2; exit 1; }

  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
  if ! command -v tauri-driver >/dev/null; then
    echo "webdriver: installing tauri-driver"
    cargo install tauri-driver --locked
  fi
  command -v WebKitWebDriver >/dev/null || {
    echo "webdriver: WebKitWebDriver is missing (apt-get install webkit2gtk-driver)" >&2
    exit 1
  }

  run_dir=$(mktemp -d "${TMPDIR:-/tmp}/sealpost-webdriver.XXXXXX")
  export SEALPOST_DATA_DIR="$run_dir/data"
  export XDG_CONFIG_HOME="$run_dir/config"
  export XDG_DATA_HOME="$run_dir/share"
  export XDG_CACHE_HOME="$run_dir/cache"
  # Saved attachments go here, not to a developer's Downloads, and with no dialog.
  export SEALPOST_DOWNLOAD_DIR="$run_dir/downloads"
  export SEALPOST_SCREENSHOT_DIR="${SEALPOST_SCREENSHOT_DIR:-$repo/target/screenshots}"
  mkdir -p "$SEALPOST_DATA_DIR" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" \
    "$SEALPOST_DOWNLOAD_DIR" "$SEALPOST_SCREENSHOT_DIR"
  echo "webdriver: run directory $run_dir"

  # Xvfb outside D-Bus, so DISPLAY is known to everything D-Bus starts (notification daemons).
  status=0
  xvfb-run -a -s "-screen 0 1280x800x24" \
    dbus-run-session -- bash "$repo/scripts/webdriver.sh" --inside-session || status=$?
  if [ "$status" -eq 0 ]; then rm -rf "$run_dir"; fi
  echo "webdriver: screenshots in $SEALPOST_SCREENSHOT_DIR"
  exit "$status"
fi

# ---- Inside Xvfb and a private D-Bus session. ----
# An unlocked Secret Service (gnome-keyring) for the engine's keychain.
eval "$(printf 'sealpost-test\n' | gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$(( 20000 + RANDOM % 40000 ))
    if ! port_in_use "$port" && ! port_in_use "$((port + 1))"; then
      echo "$port"
      return 0
    fi
  done
  echo "webdriver: no free port found" >&2
  return 1
}

driver_groups=()
cleanup() {
  for group in "${driver_groups[@]}"; do
    kill -- "-$group" 2>/dev/null || true
  done
}
trap cleanup EXIT

# One tauri-driver (with its own WebKitWebDriver) per app window: the apps run side by side (at
# most three at once, in group_chat).
urls=()
for instance in one two three; do
  port=$(free_port)
  setsid tauri-driver --port "$port" --native-port "$((port + 1))" \
    >"$SEALPOST_DATA_DIR/../tauri-driver-$instance.log" 2>&1 &
  driver_groups+=("$!")
  for _ in $(seq 1 100); do
    port_in_use "$port" && break
    sleep 0.1
  done
  port_in_use "$port" || { echo "webdriver: tauri-driver did not start on $port" >&2; exit 1; }
  urls+=("http://127.0.0.1:$port")
done
SEALPOST_WEBDRIVER_URLS=$(IFS=,; echo "${urls[*]}")
# The apps' shared local test relay gets a free port too, so a developer's own running Sealpost
# (on the default 47474) is never disturbed.
SEALPOST_LOCAL_RELAY_PORT=$(free_port)
export SEALPOST_LOCAL_RELAY_PORT
export SEALPOST_WEBDRIVER_URLS
echo "webdriver: tauri-driver at $SEALPOST_WEBDRIVER_URLS, local relay port $SEALPOST_LOCAL_RELAY_PORT"

# Run from the package directory, as `cargo test` would; each test's windows are closed when it ends.
cd "$repo/tests/webdriver"
for test_bin in $SEALPOST_WEBDRIVER_TEST_BINS; do
  echo "webdriver: running $(basename "$test_bin")"
  "$test_bin" --nocapture
done
