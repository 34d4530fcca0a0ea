# The two commands: `make demo` runs the system with simulated devices; `make test` tests it.
# Each installs what it needs first (scripts/setup.sh).
BIN := .venv/bin

.PHONY: setup demo test test-fast lint bench clean

setup:
	@scripts/setup.sh

demo: setup
	$(BIN)/tracklane demo

test: setup lint
	$(BIN)/python -m pytest

test-fast: setup lint
	$(BIN)/python -m pytest -m "not slow"

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/tracklane bench ingest

clean:
	rm -rf .tracklane .pytest_cache .ruff_cache
