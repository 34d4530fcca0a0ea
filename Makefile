# Shorthands for the scripts the README names (scripts/demo.sh and scripts/test.sh need no
# make; these are for those who have it).
.PHONY: setup demo test test-fast lint bench clean

setup:
	@scripts/setup.sh

demo:
	scripts/demo.sh

test:
	scripts/test.sh

test-fast:
	scripts/test.sh -m "not slow"

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports --no-cache

bench: setup
	.venv/bin/tracklane bench ingest

clean:
	rm -rf .tracklane .pytest_cache .ruff_cache
