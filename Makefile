# Two commands matter: `make run` (embedded SQLite + in-process Redis, demo catalog)
# and `make test` (lint, types, and the whole suite on real PostgreSQL + Redis).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_PRODUCTS ?= 500

.PHONY: install node-client run test lint services bench schema lock clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	touch $(STAMP)

install: $(STAMP)

# The real Apollo Client that tests/e2e/test_apollo_persisted_queries.py drives.
APOLLO := tests/e2e/apollo
$(APOLLO)/node_modules/.installed: $(APOLLO)/package-lock.json
	@if command -v npm >/dev/null; then \
		cd $(APOLLO) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "npm not found: the Apollo Client test will be skipped"; fi

node-client: $(APOLLO)/node_modules/.installed

run: install
	$(BIN)/python app.py migrate
	$(BIN)/python app.py seed --products $(DEMO_PRODUCTS) --if-empty
	$(BIN)/python app.py serve

services:
	bash scripts/ensure-services.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install node-client services lint
	$(BIN)/python -m pytest

bench: install services
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/run.py

schema: install
	$(BIN)/python app.py export-schema --output schema.graphql

# Re-pin after changing pyproject.toml: resolves in a scratch venv, writes requirements.lock.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet ".[dev]"
	.lock-venv/bin/python -m pip freeze --exclude commerce-graph > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache $(APOLLO)/node_modules
