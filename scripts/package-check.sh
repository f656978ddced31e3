#!/usr/bin/env bash
# Installer check for Linux, run by .ci/run: builds the release .deb and .rpm with the Tauri bundler,
# checks their metadata and the .deb's size budget, installs the .deb with apt, starts the INSTALLED
# /usr/bin/sealpost under Xvfb (local test relay mode, throwaway profile, private D-Bus session with an
# unlocked gnome-keyring), confirms its window comes up and the process stays alive, takes a
# screenshot, then uninstalls the package and checks that nothing is left behind.
#
# The check depends only on the window appearing and the process staying up, not on what the UI shows.
#
# Usage: scripts/package-check.sh            (as root, or a user with sudo for apt-get)
# Environment:
#   CARGO_TARGET_DIR          honoured as usual (bundles land in $CARGO_TARGET_DIR/release/bundle)
#   SEALPOST_SKIP_UI_BUILD=1  use the existing ui/dist (scripts/setup.sh has just built it in .ci/run)
# Output: target/screenshots/installed-app.png and target/package-check.log (the facts of this run:
# bundle paths and sizes, package metadata, window line).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

# The .deb size budget (issue 6): 10 MB.
readonly size_budget_bytes=$((10 * 1024 * 1024))
readonly profile=pkgcheck
readonly app=/usr/bin/sealpost

say() { echo "package-check: $*"; }
fail() {
  echo "package-check: FAILED: $*" >&2
  exit 1
}

if [ "${1:-}" = "--inside-session" ]; then
  # ---- Inside Xvfb and a private D-Bus session with an unlocked gnome-keyring (with-keyring.sh). ----
  run_dir=$2
  screenshot=$3
  app_log="$run_dir/app.log"
  "$app" --local-relay --profile "$profile" >"$app_log" 2>&1 &
  app_pid=$!
  stop_app() {
    if kill -0 "$app_pid" 2>/dev/null; then
      kill -TERM "$app_pid" 2>/dev/null || true
      for _ in $(seq 50); do
        kill -0 "$app_pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -KILL "$app_pid" 2>/dev/null || true
    fi
    wait "$app_pid" 2>/dev/null || true
  }
  trap stop_app EXIT

  # 1. The window comes up: an X window whose name or class says Sealpost, within 60 s.
  window=""
  for _ in $(seq 120); do
    window=$(xwininfo -root -tree 2>/dev/null | grep -i 'sealpost' | head -n 1 || true)
    [ -n "$window" ] && break
    if ! kill -0 "$app_pid" 2>/dev/null; then
      echo "--- app output:" >&2
      cat "$app_log" >&2
      fail "the installed app exited before showing a window"
    fi
    sleep 0.5
  done
  if [ -z "$window" ]; then
    echo "--- app output:" >&2
    cat "$app_log" >&2
    fail "no Sealpost window appeared within 60 s"
  fi
  say "window: $(echo "$window" | sed 's/^ *//')"

  # 2. The process is still alive a few seconds later (no crash after the first paint).
  sleep 5
  if ! kill -0 "$app_pid" 2>/dev/null; then
    echo "--- app output:" >&2
    cat "$app_log" >&2
    fail "the installed app died within 5 s of showing its window"
  fi
  say "process $app_pid still running 5 s after its window appeared"

  # 3. A screenshot of the whole screen. The first frames can be blank while the webview paints, so
  # retry for up to 15 s until the picture is not one flat colour (a blank picture is only a warning:
  # the check is about the window and the process, not the UI's content).
  painted=no
  for _ in $(seq 15); do
    import -window root "$screenshot"
    deviation=$(convert "$screenshot" -colorspace Gray -format '%[fx:standard_deviation]' info: 2>/dev/null || echo 0)
    if awk -v d="$deviation" 'BEGIN { exit !(d > 0.01) }'; then
      painted=yes
      break
    fi
    sleep 1
  done
  say "screenshot $screenshot (painted: $painted)"
  [ "$painted" = yes ] || echo "package-check: warning: the screenshot is a single flat colour" >&2
  if ! kill -0 "$app_pid" 2>/dev/null; then
    fail "the installed app died while the screenshot was taken"
  fi
  exit 0
fi

# ---- Outside: build, inspect, install, run (re-entering this script under Xvfb), uninstall. ----
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
screenshot_dir="$repo/target/screenshots"
log="$repo/target/package-check.log"
mkdir -p "$screenshot_dir"
: >"$log"
note() {
  say "$*"
  echo "$*" >>"$log"
}

# Tools of this check beyond scripts/setup.sh's list: xwininfo (x11-utils), desktop-file-validate
# (desktop-file-utils) and jq. The rest is listed again so that the script also runs on its own.
needed=(x11-utils desktop-file-utils imagemagick xvfb xauth dbus gnome-keyring rpm jq)
missing=()
for package in "${needed[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The UI is embedded into the binary at compile time.
if [ "${SEALPOST_SKIP_UI_BUILD:-0}" != 1 ]; then
  say "building the UI"
  (cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build)
fi
[ -f ui/dist/index.html ] || fail "ui/dist/index.html is missing: the app would have no UI to embed"

# The Tauri CLI, locked in packaging/tauri-cli (prebuilt binary from npm; works offline once installed).
say "installing the Tauri CLI (packaging/tauri-cli)"
npm ci --prefix packaging/tauri-cli --no-audit --no-fund --loglevel=error
tauri_cli=(node "$repo/packaging/tauri-cli/node_modules/@tauri-apps/cli/tauri.js")

# One version source: [workspace.package] version. tauri.conf.json must not carry its own (without
# one, the bundler takes the app crate's version, which is the workspace's).
version=$(cargo metadata --no-deps --format-version 1 --locked |
  jq -r '.packages[] | select(.name == "sealpost") | .version')
[ -n "$version" ] || fail "cannot read the sealpost crate's version from cargo metadata"
if jq -e 'has("version")' src-tauri/tauri.conf.json >/dev/null; then
  fail "src-tauri/tauri.conf.json sets \"version\": remove it, the version comes from [workspace.package] in Cargo.toml"
fi
note "workspace version $version"

# Release build and bundles. `tauri build` turns on tauri's custom-protocol feature (assets served from
# the binary), so this build never shares artefacts with plain `cargo build --release`.
say "building the release .deb and .rpm (tauri build)"
build_started=$(date +%s)
(cd src-tauri && "${tauri_cli[@]}" build --ci --bundles deb,rpm -- --locked)
note "tauri build took $(($(date +%s) - build_started)) s"

deb=$(ls -t "$target_dir"/release/bundle/deb/*_"$version"_*.deb 2>/dev/null | head -n 1 || true)
rpm_file=$(ls -t "$target_dir"/release/bundle/rpm/*-"$version"-*.rpm 2>/dev/null | head -n 1 || true)
[ -n "$deb" ] && [ -f "$deb" ] || fail "no .deb for version $version under $target_dir/release/bundle/deb"
[ -n "$rpm_file" ] && [ -f "$rpm_file" ] || fail "no .rpm for version $version under $target_dir/release/bundle/rpm"
deb_size=$(stat -c %s "$deb")
rpm_size=$(stat -c %s "$rpm_file")
note "deb: $deb ($deb_size bytes, $(numfmt --to=iec-i --suffix=B "$deb_size"))"
note "rpm: $rpm_file ($rpm_size bytes, $(numfmt --to=iec-i --suffix=B "$rpm_size"))"

# Size budget.
if [ "$deb_size" -ge "$size_budget_bytes" ]; then
  fail "the .deb is $deb_size bytes ($(numfmt --to=iec-i --suffix=B "$deb_size")), over the budget of $size_budget_bytes bytes (10 MiB): $deb"
fi
note "size budget: $deb_size < $size_budget_bytes bytes (10 MiB) OK"

# Package metadata: name, version, dependencies, description, licence, desktop entry with the
# sealpost: URL scheme.
package=$(dpkg-deb -f "$deb" Package)
deb_version=$(dpkg-deb -f "$deb" Version)
depends=$(dpkg-deb -f "$deb" Depends)
note "deb control: Package=$package Version=$deb_version Section=$(dpkg-deb -f "$deb" Section)"
note "deb Depends: $depends"
[ "$deb_version" = "$version" ] || fail ".deb version $deb_version differs from the workspace version $version"
for dependency in libwebkit2gtk-4.1-0 libgtk-3-0 libssl3 libayatana-appindicator3-1; do
  grep -qw -- "$dependency" <<<"$depends" || fail ".deb does not depend on $dependency (Depends: $depends)"
done
# Captured first: `dpkg-deb | grep -q` fails under pipefail when grep exits at the first matching
# line and dpkg-deb then gets SIGPIPE writing the rest (it did, once, in CI).
description=$(dpkg-deb -f "$deb" Description)
grep -qi "encrypted" <<<"$description" || fail ".deb has no proper Description"
# Member names in the data archive, without a leading "./" (the bundler writes them bare).
deb_files=$(dpkg-deb --fsys-tarfile "$deb" | tar -tf - | sed 's|^\./||')
grep -qx 'usr/bin/sealpost' <<<"$deb_files" || fail ".deb has no /usr/bin/sealpost"
desktop_member=$(grep -x 'usr/share/applications/[^/]*\.desktop' <<<"$deb_files" | head -n 1 || true)
[ -n "$desktop_member" ] || fail ".deb has no desktop entry under /usr/share/applications"
desktop_path="/$desktop_member"
desktop_entry=$(dpkg-deb --fsys-tarfile "$deb" | tar -xOf - --wildcards "$desktop_member" "./$desktop_member" 2>/dev/null || true)
[ -n "$desktop_entry" ] || fail "cannot read $desktop_path from the .deb"
note "desktop entry $desktop_path:"
echo "$desktop_entry" | sed 's/^/    /' | tee -a "$log"
# The sealpost: scheme (tauri.conf.json > plugins > deep-link) is registered, and the link reaches the
# app as its argument (%u), which is how the app reads invite links on Linux.
scheme=$(jq -r '.plugins["deep-link"].desktop.schemes[0]' src-tauri/tauri.conf.json)
grep -q "^MimeType=.*x-scheme-handler/$scheme" <<<"$desktop_entry" ||
  fail "desktop entry $desktop_path does not register x-scheme-handler/$scheme"
grep -q '^Exec=sealpost %u$' <<<"$desktop_entry" || fail "desktop entry does not pass the link (Exec=sealpost %u)"
grep -q '^Categories=Network;InstantMessaging;' <<<"$desktop_entry" || fail "desktop entry lacks Network;InstantMessaging;"
if command -v desktop-file-validate >/dev/null 2>&1; then
  validation=$(printf '%s\n' "$desktop_entry" >"${TMPDIR:-/tmp}/sealpost-check.desktop" &&
    desktop-file-validate "${TMPDIR:-/tmp}/sealpost-check.desktop" 2>&1 || true)
  rm -f "${TMPDIR:-/tmp}/sealpost-check.desktop"
  if grep -q 'error:' <<<"$validation"; then fail "desktop-file-validate: $validation"; fi
  note "desktop-file-validate: ${validation:-no findings}"
fi
rpm_license=$(rpm -qp --queryformat '%{LICENSE}' "$rpm_file" 2>/dev/null)
rpm_requires=$(rpm -qp --requires "$rpm_file" 2>/dev/null | tr '\n' ' ')
note "rpm License=$rpm_license Requires: $rpm_requires"
[ "$rpm_license" = "MIT OR Apache-2.0" ] || fail ".rpm licence is '$rpm_license'"
grep -qw 'webkit2gtk4.1' <<<"$rpm_requires" || fail ".rpm does not require webkit2gtk4.1"

# Install the .deb with apt (which pulls its dependencies). A copy from an earlier run is removed first
# so that the binary under test is this build's.
installed=no
cleanup() {
  if [ "$installed" = yes ]; then
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get remove -y -qq "$package" >/dev/null 2>&1 || true
  fi
  if [ -n "${run_dir:-}" ] && [ "${keep_run_dir:-no}" = no ]; then rm -rf "$run_dir"; fi
}
trap cleanup EXIT
if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
  say "removing an earlier install of $package"
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get remove -y -qq "$package"
fi
say "installing $deb"
# apt needs a path with a slash to treat the argument as a file; _apt cannot read /root, so the
# package is copied somewhere world-readable first (avoids the "unsandboxed download" warning).
deb_copy_dir=$(mktemp -d /tmp/sealpost-deb.XXXXXX)
cp "$deb" "$deb_copy_dir/"
chmod 755 "$deb_copy_dir"
chmod 644 "$deb_copy_dir/$(basename "$deb")"
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "$deb_copy_dir/$(basename "$deb")"
rm -rf "$deb_copy_dir"
installed=yes
[ -x "$app" ] || fail "$app is missing after installing $deb"
installed_version=$(dpkg-query -W -f='${Version}' "$package")
note "installed $package $installed_version; $app is $(stat -c %s "$app") bytes"
version_line=$("$app" --version)
[ "$version_line" = "sealpost $version" ] || fail "$app --version printed '$version_line', expected 'sealpost $version'"
note "$app --version: $version_line"

# Start the installed app under Xvfb in a fresh, throwaway environment: its own data directory
# (profiles, local relay), XDG config/data/cache (window state, webview) and keyring. HOME stays.
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/sealpost-package-check.XXXXXX")
export SEALPOST_DATA_DIR="$run_dir/data"
export XDG_CONFIG_HOME="$run_dir/config"
export XDG_DATA_HOME="$run_dir/share"
export XDG_CACHE_HOME="$run_dir/cache"
mkdir -p "$SEALPOST_DATA_DIR" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME"
screenshot="$screenshot_dir/installed-app.png"
rm -f "$screenshot"
say "starting $app --local-relay --profile $profile under Xvfb (SEALPOST_DATA_DIR=$SEALPOST_DATA_DIR)"
# Xvfb outside D-Bus, so DISPLAY is known to everything the session bus starts.
status=0
xvfb-run -a -s "-screen 0 1280x800x24" \
  bash "$repo/scripts/with-keyring.sh" bash "$repo/scripts/package-check.sh" --inside-session \
  "$run_dir" "$screenshot" 2>&1 | tee -a "$log" || status=$?
if [ "$status" -ne 0 ]; then
  keep_run_dir=yes
  fail "the installed app did not come up (exit $status); its files are in $run_dir"
fi
[ -s "$screenshot" ] || fail "no screenshot at $screenshot"
note "screenshot: $screenshot"

# Uninstall and check that the package's files are gone.
say "removing $package"
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get remove -y -qq "$package"
installed=no
[ ! -e "$app" ] || fail "$app is still there after apt-get remove"
[ ! -e "$desktop_path" ] || fail "$desktop_path is still there after apt-get remove"
if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
  fail "dpkg still lists $package as installed"
fi
note "uninstalled: $app and $desktop_path are gone"
note "PASSED: .deb $deb ($deb_size bytes) built, installed, started, uninstalled"
