# Two commands for a newcomer: `make dev` runs the engine with its UI, `make test` passes the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint typecheck pytest browser bench bench-calcom bench-api chaos clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/callbacks dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# The console's browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download does not work here). Installed when missing, as root with apt-get; otherwise say what to run.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "the console's browser tests need $(CHROMIUM): run 'sudo apt-get install -y chromium'" >&2; \
		exit 1; \
	fi

browser: $(CHROMIUM)

pytest: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench.callbacks $(BENCH_ARGS)

bench-calcom: $(STAMP)
	$(BIN)/python -m bench.calcom $(BENCH_ARGS)

bench-api: $(STAMP)
	$(BIN)/python -m bench.api $(BENCH_ARGS)

# Break real processes (worker, Temporal, PostgreSQL, the fakes of Cal.com, SMTP and webhooks) and check
# that every failure ends in a defined state (docs/operations.md "Chaos runs"). Not part of `make test`.
# CHAOS_ARGS="--only worker-sigkill" runs one scenario, "--list" names them.
chaos: $(STAMP)
	$(BIN)/python -m chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
