# Two commands for a fresh machine with Python 3.11:  `make demo`  and  `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The server the PostgreSQL tests log in to; each run creates (and drops) databases of its own there.
POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
# pytest-xdist workers: one per core (each with its own database).
WORKERS ?= auto

.PHONY: demo test test-postgres test-replica postgres browser lint fuzz

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## The server on http://127.0.0.1:8000 with a demo plan on SQLite (var/demo.db).
demo: $(STAMP)
	MUTUALAID_DEMO=1 MUTUALAID_DATABASE_URL=sqlite:///var/demo.db $(BIN)/mutualaid demo

## The whole test suite (SQLite; browser tests in Debian's chromium, installed when missing).
test: $(STAMP) browser
	$(BIN)/python -m pytest -n $(WORKERS)

## The database tests again (services, API, pages, commands), against PostgreSQL (started, or installed, when missing).
test-postgres: $(STAMP) postgres
	MUTUALAID_TEST_DATABASE_URL=$(POSTGRES_URL) $(BIN)/python -m pytest -n $(WORKERS) tests/integration tests/api tests/web tests/cli -m "not e2e"

## The read-replica tests: a streaming replica of that server on port 5433 (scripts/start-replica.sh,
## reused when already replaying), the tests, then the replica stopped and removed.
test-replica: $(STAMP) postgres
	@replica=$$(sh scripts/start-replica.sh) \
	  && MUTUALAID_TEST_DATABASE_URL=$(POSTGRES_URL) MUTUALAID_TEST_REPLICA_URL=$$replica \
	     $(BIN)/python -m pytest tests/api/test_read_replica_api.py -m replica; \
	status=$$?; sh scripts/start-replica.sh stop; exit $$status

browser:
	@(command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi wqy) \
	  || sh scripts/install-system-packages.sh chromium fonts-wqy-microhei

postgres:
	@sh scripts/ensure-postgres.sh

## Format check, lint and strict types: CI fails on any of them.
lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src

## Schemathesis against a local server on a fresh SQLite demo (anonymous, member, operator): no 5xx.
## Not part of `make test`; about 3 minutes (MAX_TIME seconds per caller).
fuzz: $(STAMP)
	PY=$(BIN)/python MAX_TIME=$${MAX_TIME:-60} sh scripts/fuzz.sh
