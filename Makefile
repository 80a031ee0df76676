# The two commands a newcomer needs: `make run` (serve the demo on SQLite) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEV := MORALCREDIT_ENV=development

.PHONY: run test lint bench profile install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.run-deps
install-dev: $(VENV)/.dev-deps

## Install, migrate, seed the demo county if the database is empty, serve on http://127.0.0.1:5000
run: install
	$(DEV) $(BIN)/flask --app wsgi db upgrade
	$(DEV) $(BIN)/flask --app wsgi demo seed
	$(DEV) $(BIN)/flask --app wsgi run --host 127.0.0.1 --port 5000

## Install everything and run the whole suite (SQLite, PostgreSQL when reachable, Chromium when installed)
test: install-dev
	scripts/test

lint: install-dev
	$(BIN)/ruff check .

## Benchmarks print figures; they are never part of the test suite. The hot paths need wrk (apt-get install wrk).
bench: install-dev
	@command -v wrk >/dev/null || { echo "make bench needs wrk: apt-get install wrk"; exit 1; }
	$(BIN)/python bench/bench_hotpaths.py
	$(BIN)/python bench/bench_auth.py
	$(BIN)/python bench/bench_signin_counts.py
	$(BIN)/python bench/bench_ledger.py
	$(BIN)/python bench/economy_long.py
	$(BIN)/python bench/bench_stats.py

## Where one check-in, check-out and redemption spend their time (pyinstrument, SQL statement counts)
profile: install-dev
	$(BIN)/python bench/profile_hotpaths.py sqlite --flat

clean:
	rm -rf $(VENV) instance .pytest_cache tests/artifacts
