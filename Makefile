# lightning-extremal: `make run` and `make test` are the whole set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch/torchvision: these versions install from local disk on the project machines; the
# package itself only asks for ranges (pyproject.toml).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
# `make run` explains the demo images with the quick preset (50 steps, under a minute on a
# quiet 2-core CPU: 23 s measured); `make run ARGS=` runs the default (200 steps), ARGS="..." anything.
ARGS ?= preset=quick
# `make test PYTEST_WORKERS=2` runs the suite in two pytest-xdist processes (7 min instead of
# 10.5 on the 2-core project machine; the tests that open process groups share one worker).
# The default, 0, is one process: what CI runs until parallel runs have a record.
PYTEST_WORKERS ?= 0
# `make test-fast` is the edit loop: every test not marked `slow` (end-to-end jobs, real
# processes, torch.compile, the report's big run), in FAST_WORKERS pytest-xdist processes
# (the tests that open process groups share one); under 2 min on the 2-core machine.
FAST_WORKERS ?= 2

.PHONY: help setup browser run test test-fast lint format bench clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q $(TORCH_SPEC) || $(BIN)/pip install -q torch torchvision
	$(BIN)/pip install -q -e ".[test,real]"
	$(BIN)/pip install -q --no-deps "torchray>=1.0"
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the package with test tools and the real bed

# The report's browser test drives a headless Chromium through Playwright (a test extra).
# Playwright's own browser download is not reachable from the project machines, so Debian's
# chromium is installed, once, as root, where it is missing; elsewhere the test is skipped.
browser:  ## headless Chromium for the report's browser test (apt-get as root, if missing)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	  --no-install-recommends chromium >/dev/null; } \
	  || echo "make: no chromium (not root, or apt-get failed): the browser test will be skipped"

run: setup  ## explain the bundled demo images with the bundled classifier (W&B offline)
	WANDB_MODE=$${WANDB_MODE:-offline} $(BIN)/lightning-extremal run $(ARGS)

test: setup browser  ## run the whole test suite
	WANDB_MODE=offline $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

test-fast: setup  ## the edit loop: the tests not marked slow, in two workers (make test: all)
	WANDB_MODE=offline $(BIN)/python -m pytest -m "not slow" -n $(FAST_WORKERS) --dist loadgroup \
	  $(PYTEST_ARGS)

lint: setup  ## ruff, the import contracts of the floors (import-linter) and the architecture checks
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_architecture.py

format: setup  ## apply ruff formatting
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup  ## speed benchmark (prints a table)
	$(BIN)/python benchmarks/speed.py

clean:  ## remove outputs and caches (keeps .venv)
	rm -rf outputs wandb lightning_logs .pytest_cache .ruff_cache
