#!/usr/bin/env bash
# Installs everything Sealpost needs to build, run and test on Debian/Ubuntu, beyond git, a Rust
# toolchain and Node 20+: the C toolchain, the WebKitGTK/Tauri libraries, a headless display, D-Bus and a
# real Secret Service (gnome-keyring), and the UI's npm packages. Safe to run again: it only installs
# what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # C toolchain and pkg-config: SQLCipher, ring and the GTK bindings build C code.
  build-essential pkg-config ca-certificates
  # Tauri v2 on Linux: WebKitGTK, xdo, appindicator (tray), rsvg (icons).
  libwebkit2gtk-4.1-dev libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev
  # D-Bus and a real Secret Service for the OS keychain (keyring's sync-secret-service backend).
  dbus dbus-x11 libdbus-1-dev gnome-keyring libsecret-tools
  # A headless display and the WebDriver bridge for end-to-end tests of the real window.
  xvfb xauth webkit2gtk-driver
  # Window focus for the WebDriver test (a person clicks a window; Xvfb has no window manager) and
  # window checks of the installed package.
  xdotool x11-utils
  # A real PostgreSQL server for the relay's second store (scripts/with-postgres.sh starts a
  # throwaway cluster from it; the Debian service itself is not used).
  postgresql
  # Checks of the built .deb (scripts/package-check.sh).
  desktop-file-utils jq
  # Screenshots and .rpm bundles.
  imagemagick rpm
  # Japanese glyphs in the WebDriver screenshots (the attachment test sends a Japanese file name).
  fonts-ipafont-gothic
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: system packages already installed"
fi

# gnome-keyring refuses to start without these.
mkdir -p "$HOME/.cache" "$HOME/.local/share"

# The desktop app embeds ui/dist at compile time (tauri's generate_context!), so the UI is built
# before anything compiles the app, clippy included. Both steps are skipped when up to date: a
# rebuilt ui/dist would also make cargo relink the app, and a second `scripts/run.sh` should start
# in seconds.
newer_than() { # newer_than FILE PATH...: is any PATH (recursively) newer than FILE (or FILE missing)?
  local stamp=$1
  shift
  [ ! -e "$stamp" ] || [ -n "$(find "$@" -newer "$stamp" -print -quit 2>/dev/null)" ]
}
if [ -f ui/package.json ]; then
  # npm writes node_modules/.package-lock.json on every install.
  if newer_than ui/node_modules/.package-lock.json ui/package.json ui/package-lock.json; then
    echo "setup: installing the UI's npm packages"
    (cd ui && npm ci --no-audit --no-fund --loglevel=error)
  else
    echo "setup: the UI's npm packages are up to date"
  fi
  if newer_than ui/dist/index.html ui/src ui/public ui/index.html ui/package-lock.json \
      ui/vite.config.ts ui/tsconfig.json ui/node_modules/.package-lock.json; then
    echo "setup: building the UI"
    (cd ui && npm run build)
  else
    echo "setup: the UI build (ui/dist) is up to date"
  fi
fi
