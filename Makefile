# Two commands matter: `make run` (embedded SQLite + in-process Redis, demo catalog)
# and `make test` (lint, types, and the whole suite on real PostgreSQL + Redis).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_PRODUCTS ?= 500

.PHONY: install node-client run test test-cluster lint services bench schema lock clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	touch $(STAMP)

install: $(STAMP)

# The real JavaScript clients the e2e tests drive: Apollo Client (persisted queries),
# graphql-http (the server audit), graphql-ws + ws (subscriptions).
APOLLO := tests/e2e/apollo
$(APOLLO)/node_modules/.installed: $(APOLLO)/package-lock.json
	@if command -v npm >/dev/null; then \
		cd $(APOLLO) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "npm not found: the JavaScript client tests will be skipped"; fi

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

# The suites whose Redis work must keep to one hash slot, run again on a private
# three-master Redis Cluster (tests/redis_cluster.py): a cross-slot script, MULTI or MGET
# fails there with CROSSSLOT. TEST_REDIS_CLUSTER_URL=redis+cluster://... uses a running one.
CLUSTER_SUITES := $(addprefix tests/integration/,test_redis_cluster.py test_carts.py \
	test_rate_limits.py test_events_relay.py test_events_consumers.py test_events_worker.py \
	test_events_notifications.py test_checkout.py test_checkout_failures.py \
	test_checkout_one_order_per_cart.py test_account_profile.py test_search_cache.py)

test: install node-client services lint
	$(BIN)/python -m pytest
	TEST_REDIS_CLUSTER=1 $(BIN)/python -m pytest -q $(CLUSTER_SUITES)

test-cluster: install services
	TEST_REDIS_CLUSTER=1 $(BIN)/python -m pytest -q $(CLUSTER_SUITES)

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
