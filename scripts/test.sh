#!/usr/bin/env bash
# The test command: install what is needed, then lint and run the whole suite (slow fault
# tests included). Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser  # chromium too, for tests/test_dashboard_browser.py
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports --no-cache  # the direction of imports: pyproject.toml [tool.importlinter]
exec .venv/bin/python -m pytest "$@"
