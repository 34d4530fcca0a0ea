#!/usr/bin/env bash
# The demo command: install what is needed, then run Tracklane with simulated devices until
# Ctrl-C. Extra arguments go to `tracklane demo`, e.g. `scripts/demo.sh --for 60`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/tracklane demo "$@"
