#!/usr/bin/env bash
# Runs CMD... inside a private D-Bus session bus with a freshly created, unlocked gnome-keyring
# Secret Service, so code that uses the real OS keychain (sealpost-client's vault) can run headless
# in CI and in developer shells:
#
#     scripts/with-keyring.sh cargo test -p sealpost-client
#
# The keyring lives in a throwaway directory (XDG_DATA_HOME of the daemon only) that is removed
# afterwards, so every run starts empty and never touches the user's real login keyring.
# Exit status: CMD's own; 127 when a required tool is missing; 75 when CMD failed and the keyring
# daemon died during the run (an environment failure, see below).
#
# Needs (Debian): apt-get install -y dbus gnome-keyring libsecret-tools (dbus-send is in dbus)
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

for tool in dbus-run-session gnome-keyring-daemon; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "with-keyring.sh: '$tool' not found; install it: apt-get install -y dbus gnome-keyring libsecret-tools" >&2
        exit 127
    fi
done

# gnome-keyring fails to start when these directories are missing (fresh containers lack them).
mkdir -p "$HOME/.cache" "$HOME/.local/share"

keyring_home="$(mktemp -d "${TMPDIR:-/tmp}/sealpost-keyring.XXXXXX")"
cleanup() { rm -rf "$keyring_home"; }
trap cleanup EXIT

SEALPOST_KEYRING_HOME="$keyring_home"
export SEALPOST_KEYRING_HOME
SEALPOST_KEYRING_PASSWORD="${SEALPOST_KEYRING_PASSWORD:-sealpost-test-keyring}"
export SEALPOST_KEYRING_PASSWORD

# The bus: the standard session configuration, except that the Secret Service (and
# gnome-keyring's own name) can never be started by D-Bus activation. Only the daemon started
# below, with its data in the throwaway directory, serves them. If it crashes, callers get a clear
# "not available" error instead of a second daemon activated on the user's real (or an empty,
# locked) keyring, whose answer would look like "no key stored".
mkdir -p "$keyring_home/dbus-services"
for name in org.freedesktop.secrets org.gnome.keyring; do
    printf '[D-BUS Service]\nName=%s\nExec=/bin/false\n' "$name" \
        >"$keyring_home/dbus-services/$name.service"
done
cat >"$keyring_home/session.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <!-- Listed before the standard directories, so these files win for their names. -->
  <servicedir>$keyring_home/dbus-services</servicedir>
  <include>/usr/share/dbus-1/session.conf</include>
</busconfig>
CONF

status=0
dbus-run-session --config-file="$keyring_home/session.conf" -- bash -c '
    set -euo pipefail
    # Start the daemon with its data in the throwaway directory and unlock (create) the login
    # collection with the password on stdin. It prints VAR=value lines; export each on its own line.
    daemon_env="$(printf "%s\n" "$SEALPOST_KEYRING_PASSWORD" \
        | XDG_DATA_HOME="$SEALPOST_KEYRING_HOME" gnome-keyring-daemon --unlock --components=secrets)"
    while IFS= read -r line; do
        case "$line" in
            *=*)
                name="${line%%=*}"
                value="${line#*=}"
                export "$name=$value"
                ;;
        esac
    done <<< "$daemon_env"
    unset SEALPOST_KEYRING_PASSWORD
    # The daemon registers on the bus a moment after --unlock returns: wait for it (up to 5 s),
    # so CMD never races it into a D-Bus activation of a second daemon.
    bus_call() {
        dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus "$@"
    }
    for _ in $(seq 50); do
        if bus_call org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null \
            | grep -q "boolean true"; then
            break
        fi
        sleep 0.1
    done
    # The daemon forks away from this shell and would outlive the bus: ask the bus for its pid
    # now, and stop exactly that process when CMD is done.
    keyring_pid="$(dbus-send --session --print-reply --dest=org.freedesktop.DBus \
        /org/freedesktop/DBus org.freedesktop.DBus.GetConnectionUnixProcessID \
        string:org.freedesktop.secrets 2>/dev/null | awk "/uint32/ {print \$2}")" || keyring_pid=""
    command_status=0
    "$@" || command_status=$?
    if [ -n "$keyring_pid" ]; then
        # Gone, or a zombie (its parent here has not reaped it): it died.
        keyring_state="$(awk "{print \$3}" "/proc/$keyring_pid/stat" 2>/dev/null || true)"
        if [ -z "$keyring_state" ] || [ "$keyring_state" = Z ]; then
            # gnome-keyring 42 sometimes aborts (SIGTRAP in GLib) under a long run of Secret
            # Service connections; the callers then see "not available". Say so, and give a
            # failed CMD the distinct status 75 (EX_TEMPFAIL) so a runner can tell it apart.
            echo "with-keyring.sh: the gnome-keyring daemon (pid $keyring_pid) died during the run" >&2
            if [ "$command_status" -ne 0 ]; then
                command_status=75
            fi
        fi
        kill "$keyring_pid" 2>/dev/null || true
    fi
    exit "$command_status"
' with-keyring "$@" || status=$?
exit "$status"
