#!/usr/bin/env bash
# Prepare this machine for Tracklane: a Python 3.11+ virtualenv with the project installed,
# and Mosquitto (the broker the demo and tests start privately). Safe to run again.
# `scripts/setup.sh --browser` (what scripts/test.sh runs) also installs Debian's `chromium`
# for the dashboard's browser tests; the demo needs no browser.
set -euo pipefail
cd "$(dirname "$0")/.."

WANT_BROWSER=0
for arg in "$@"; do
  case "$arg" in
    --browser) WANT_BROWSER=1 ;;
    *) echo "setup: unknown option '$arg' (known: --browser)" >&2; exit 2 ;;
  esac
done

PY="${PYTHON:-python3}"
VENV=".venv"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@";
  elif command -v sudo >/dev/null 2>&1; then sudo "$@";
  else return 1; fi
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: Tracklane needs Python 3.11 or newer; '$PY' is $("$PY" --version 2>&1)." >&2
  echo "       Install python3.11+ and run again, or set PYTHON=/path/to/python3.11." >&2
  exit 1
fi

if [ ! -x /usr/sbin/mosquitto ] && ! command -v mosquitto >/dev/null 2>&1; then
  echo "setup: installing Mosquitto (broker) with apt-get"
  apt_install mosquitto mosquitto-clients || {
    echo "setup: could not install Mosquitto. Install it yourself:" >&2
    echo "         Debian/Ubuntu: sudo apt-get install mosquitto mosquitto-clients" >&2
    echo "         macOS:         brew install mosquitto" >&2
    echo "       or point TRACKLANE_MQTT_URL at an MQTT 5 broker." >&2
    exit 1
  }
fi
if ! command -v mosquitto_pub >/dev/null 2>&1; then
  apt_install mosquitto-clients || echo "setup: mosquitto-clients missing; only 'bench' needs them" >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    echo "setup: python venv module missing; installing python3-venv"
    apt_install python3-venv || { echo "setup: install python3-venv and run again" >&2; exit 1; }
    rm -rf "$VENV"; "$PY" -m venv "$VENV"
  fi
fi

stamp="$VENV/.installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[dev]'
  touch "$stamp"
fi

# The browser tests (tests/test_dashboard_browser.py) drive Debian's chromium through
# Playwright; Playwright's own browser download is not used.
if [ "$WANT_BROWSER" -eq 1 ] && [ ! -x /usr/bin/chromium ] && [ -z "${TRACKLANE_CHROMIUM:-}" ] &&
  ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing chromium (for the dashboard's browser tests) with apt-get"
  apt_install chromium || {
    echo "setup: could not install chromium. The dashboard's browser tests need it:" >&2
    echo "         Debian/Ubuntu: sudo apt-get install chromium" >&2
    echo "       or set TRACKLANE_CHROMIUM=/path/to/a/chromium and run again." >&2
    exit 1
  }
fi
# A CJK font, so the tracking page's zh-CN screenshots show characters, not boxes (the tests
# pass without it; a failure here is only a warning).
if [ "$WANT_BROWSER" -eq 1 ] && [ ! -d /usr/share/fonts/truetype/wqy ] && command -v apt-get >/dev/null 2>&1; then
  apt_install fonts-wqy-zenhei || echo "setup: no CJK font installed; zh-CN screenshots show boxes" >&2
fi
