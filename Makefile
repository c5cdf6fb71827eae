# intent-router: `make help` lists the targets.
SHELL := /bin/bash
PYTHON_VERSION := 3.11
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
DATA ?= data/train.jsonl
TEST ?= data/test.jsonl
EVAL ?=
EVAL_ARGS ?=
HARVEST_OUT ?= data/harvested.jsonl
HARVEST_BASE ?=
BENCH ?=
LITELLM_PROXY_VENV := tests/bench/.litellm-proxy-venv
LITELLM_PROXY_VERSION := 1.106.12
PORTKEY_DIR := tests/bench/.portkey-gateway
PORTKEY_VERSION := 1.15.2
TEXT_COLUMN ?= text
INTENT_COLUMN ?= intent
WORKERS ?= 1
# pytest-xdist: one process per core (--dist loadfile keeps each file, and so its module-scoped
# services and the fault-injection load tests, on one process); TEST_WORKERS=0 runs in one.
TEST_WORKERS ?= auto
HOST ?= 127.0.0.1
PORT ?= 8000
MLFLOW_PORT ?= 5000
# make fake-fleet listens on PORT when given on the command line, else on the port
# src/intent_router/defaults/examples/fake-fleet.yaml expects (not the service's 8000).
FLEET_PORT := $(if $(filter command line,$(origin PORT)),$(PORT),9100)
# uv: the one on PATH, else a copy in a project-local tools venv (never the system Python).
TOOLS := .tools
UV := $(or $(shell command -v uv 2>/dev/null),$(TOOLS)/bin/uv)
export LITELLM_LOCAL_MODEL_COST_MAP := True
export MLFLOW_DISABLE_TELEMETRY := true
export PYTHONHASHSEED := 0

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(TOOLS)/bin/uv:
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

# Two locks: requirements.lock is what the service needs (pyproject's dependencies), installed
# alone on a serving host (make venv LOCK=requirements.lock); tests/requirements-dev.lock adds the
# training, test and lint tools at the same versions, and is what make venv installs by default.
LOCK ?= tests/requirements-dev.lock
# Bytecode compiled ahead: no start compiles sources (nor every start, under $$PYTHONDONTWRITEBYTECODE).
# The stamp names the lock it synced: asking for the other lock syncs again.
$(VENV)/.installed: $(LOCK) pyproject.toml $(if $(filter-out $(LOCK),$(shell cat $(VENV)/.installed 2>/dev/null)),FORCE) | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON_VERSION) $(VENV)
	$(UV) pip sync --quiet --python $(PY) --require-hashes --compile-bytecode $(LOCK)
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	$(PY) -m compileall -q src
	@echo $(LOCK) > $@

FORCE:

venv: $(VENV)/.installed ## Create the virtual environment from a lock (LOCK=tests/requirements-dev.lock: tests, training, lint; requirements.lock: serving only)

lock: | $(UV) ## Re-resolve both locks from pyproject.toml (exact pins with hashes; serving's pins are the dev lock's)
	$(UV) pip compile --quiet pyproject.toml --extra train --extra test --extra lint --python-version $(PYTHON_VERSION) --generate-hashes -o tests/requirements-dev.lock
	$(UV) pip compile --quiet pyproject.toml --constraints tests/requirements-dev.lock --python-version $(PYTHON_VERSION) --generate-hashes -o requirements.lock

split: venv ## Rebuild data/train.jsonl + data/test.jsonl from data/authored/, and data/real_split.json (repositories keep their side; REBUILD=1 reassigns all)
	$(PY) -m training.dataset
	$(PY) -m training.real_split $(if $(REBUILD),--rebuild)

data-check: venv ## Authored and real-prompt corpus statistics; fail (exit 1) when a floor is missed
	$(PY) -m training.data_check

train: venv ## Train on authored train + real train, report the real test split then the authored one, export models/intent.onnx + intent.json, log to MLflow
	$(PY) -m training.train --data "$(DATA)" --test "$(TEST)" --text-column "$(TEXT_COLUMN)" --intent-column "$(INTENT_COLUMN)"

eval: venv ## Replay the real test split, then the authored test split (or EVAL=path.jsonl) through routing, then the multi-turn sessions per-turn vs sticky; log to MLflow (routing-eval)
	$(PY) -m intent_router.evaluation $(if $(EVAL),--data "$(EVAL)") $(EVAL_ARGS)
	$(PY) -m intent_router.evaluation.sessions $(SESSION_ARGS)

baseline: venv ## The model shipped at BEFORE=<git ref> against models/ now, on the real test split then the authored one
	$(PY) -m training.baseline --before "$(BEFORE)"

harvest: venv ## Export LLM-labeled and user-corrected decisions as JSONL for make train (HARVEST_OUT, HARVEST_BASE)
	$(PY) -m intent_router.decisions.harvest --out "$(HARVEST_OUT)" $(if $(HARVEST_BASE),--base "$(HARVEST_BASE)") $(if $(CONFIG),--config "$(CONFIG)")

serve: venv ## Start the service on 127.0.0.1:8000 (WORKERS=N, PORT=p, CONFIG=path/to/router.yaml)
	$(PY) -m intent_router.service --host $(HOST) --port $(PORT) --workers $(WORKERS) $(if $(CONFIG),--config "$(CONFIG)")

demo: venv ## Fake provider fleet + the service + a few requests, printing how each was routed
	$(PY) -m tests.fakes.run_demo

fake-fleet: venv ## The fake provider fleet on 127.0.0.1:9100 (PORT=p); then make serve CONFIG=src/intent_router/defaults/examples/fake-fleet.yaml
	$(PY) -m tests.fakes.serve_fleet --port $(FLEET_PORT)

test: venv ## Run the test suite (TEST_WORKERS=auto processes, a test file per process at a time)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-fast: venv ## Everything but the bounded load runs (pytest marker `load`): the loop before a push
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not load"

test-unit: venv ## Run the unit tests only (tests/unit: no processes, no services; well under a minute)
	$(PY) -m pytest -q -n $(TEST_WORKERS) tests/unit

# Checks only: ruff format --check never rewrites a file (run $(VENV)/bin/ruff format to apply).
lint: venv ## ruff check, ruff format --check, mypy on src, the import-direction contracts (import-linter)
	$(VENV)/bin/ruff check src training tests
	$(VENV)/bin/ruff format --check src training tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# LiteLLM's proxy for the proxy bench, in its own venv (never the project's lock or venv).
$(LITELLM_PROXY_VENV)/.installed: | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON_VERSION) $(LITELLM_PROXY_VENV)
	$(UV) pip install --quiet --compile-bytecode --python $(LITELLM_PROXY_VENV)/bin/python "litellm[proxy]==$(LITELLM_PROXY_VERSION)"
	@touch $@

# Portkey's gateway for the proxy bench, from the npm registry into its own folder (no install
# scripts run); without npm the bench skips it and says so.
$(PORTKEY_DIR)/.installed:
	@if command -v npm >/dev/null && command -v node >/dev/null; then \
	  mkdir -p $(PORTKEY_DIR) && npm install --silent --prefix $(PORTKEY_DIR) --ignore-scripts --no-audit \
	    --no-fund "@portkey-ai/gateway@$(PORTKEY_VERSION)" && touch $@; \
	else echo "make bench: node/npm not found: the proxy bench skips Portkey's gateway" >&2; fi

BENCH_PEERS := $(LITELLM_PROXY_VENV)/.installed $(PORTKEY_DIR)/.installed
bench: venv $(if $(BENCH),$(if $(filter proxy,$(BENCH)),$(BENCH_PEERS)),$(BENCH_PEERS)) ## Run the benchmarks (tests/bench; BENCH=classifier|tracking|route|proxy|client|startup|tokens for one), print tables, write JSON
	@command -v wrk >/dev/null || { echo "make bench needs wrk on PATH (e.g. apt-get install wrk)" >&2; exit 1; }
	$(PY) -m tests.bench.run $(BENCH)

mlflow-ui: venv ## MLflow UI on 127.0.0.1:5000 (MLFLOW_PORT=p) over the local store
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --port $(MLFLOW_PORT) --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db}"

clean: ## Remove caches (keeps the venv and the MLflow store)
	rm -rf .pytest_cache .hypothesis tests/bench/results

.PHONY: help venv lock lint FORCE split data-check train eval baseline harvest serve demo fake-fleet test test-fast test-unit bench mlflow-ui clean
