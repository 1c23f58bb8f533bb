# ReviewOps: the README's two commands are `make run` and `make test`.
# Each sets itself up on a fresh machine (virtualenv in .venv) and is safe to run twice.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
# Exact versions CI tested, resolved from pyproject.toml by `make lock`; `make install` installs these.
LOCK := requirements.lock
# Everything ruff checks and formats (mypy's files are set in pyproject.toml: src/ and flows/).
CODE := src flows tests benchmarks docs

# Local, offline-friendly defaults: no telemetry, no hub downloads, state inside the project.
export PATH := $(BIN):$(PATH)
export DO_NOT_TRACK := 1
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_UI_ENABLED := false
export GX_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export BENTOML_HOME := $(CURDIR)/bentoml_home
export BENTOML_DO_NOT_TRACK := True
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false
# Prefect's temporary server gets 20 s to start by default: not enough on 2 busy cores.
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120

.PHONY: install lock run test test-fast check lint format bench clean help ui ui-stop

help:  ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# Every package at the version in the lock (torch 2.13.0 is the CPU wheel), then ReviewOps itself.
	$(PY) -m pip install -q -r $(LOCK)
	$(PY) -m pip install -q --no-deps -e ".[dev]"
	$(PY) -m pip check
	@touch $(STAMP)

install: $(STAMP)  ## Create .venv and install ReviewOps with the locked stack (requirements.lock)

lock:  ## Re-resolve requirements.lock from pyproject.toml in a scratch virtualenv
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install -q --upgrade pip
	# torch is pinned here: the CPU wheel for 2.13.0 is what the install targets.
	.lockenv/bin/python -m pip install -q "torch==2.13.0" ".[dev]"
	( echo "# Resolved by 'make lock' from pyproject.toml (extras: dev) on Python 3.11; do not edit."; \
	  .lockenv/bin/python -m pip freeze --exclude-editable | grep -v -i '^reviewops' ) > $(LOCK)
	rm -rf .lockenv build

run: install  ## Run the main job end to end on the embedded default data
	$(PY) -m flows.retrain --no-links
	$(PY) -m flows.monitor --demo

ui: install  ## Start the operator UIs on 127.0.0.1 (MLflow, Prefect, Evidently, Data Docs, Bento) and print their URLs
	$(BIN)/reviewops ui --start all

ui-stop: install  ## Stop the UIs that `make ui` started
	$(BIN)/reviewops ui --stop

test: install  ## Run every test (unit, integration with real servers, quality): what CI runs
	$(PY) -m pytest -q

test-fast: install  ## Unit tests only (no servers): the quick loop while editing
	$(PY) -m pytest -q -m "not integration and not slow" tests/unit

check: install  ## Lint, format check, type check and the code-size rules (what CI runs before the tests)
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/test_architecture.py

lint: check  ## Alias of check

format: install  ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix $(CODE)
	$(BIN)/ruff format $(CODE)

bench: install  ## Scale benchmark for validation + preprocessing
	$(PY) benchmarks/validate_scale.py

clean:  ## Remove generated data, reports, models and local tracking state (keeps .venv)
	rm -rf data/raw data/interim data/processed data/quarantine reports mlflow.db mlartifacts .prefect bentoml_home
