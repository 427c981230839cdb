# Audience Workbench: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
UV_VERSION := 0.13.8
UV := $(VENV)/bin/uv
PY := $(VENV)/bin/python
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1

.DEFAULT_GOAL := help
.PHONY: help demo test test-fast lint format lab lock bench clean-env synth

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version.split()[0]}: set PYTHON=/path/to/python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet uv==$(UV_VERSION)

# --compile-bytecode: the .pyc files are written once at install time, so every notebook
# kernel and CLI process starts without recompiling pandas, scipy, seaborn, ... from source
# (about 2.5 s per process when PYTHONDONTWRITEBYTECODE is set, as on our CI machines).
$(VENV)/.runtime: $(VENV)/bin/python requirements/runtime.lock pyproject.toml
	$(UV) pip install --quiet --compile-bytecode --python $(PY) -r requirements/runtime.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements/dev.lock
	$(UV) pip install --quiet --compile-bytecode --python $(PY) -r requirements/dev.lock
	touch $@

demo: $(VENV)/.runtime ## Run the monthly job on the shipped demo data (creates .venv when missing)
	$(VENV)/bin/workbench demo

test: $(VENV)/.dev ## Run the whole test suite (creates .venv with the dev extras when missing)
	$(VENV)/bin/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-fast: $(VENV)/.dev ## Tests without Spark and notebook execution
	$(VENV)/bin/pytest -q -m "not spark and not notebook and not slow" $(PYTEST_ARGS)

lint: $(VENV)/.dev ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev ## Apply ruff format and autofixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

lab: $(VENV)/.runtime ## Open the notebooks in JupyterLab
	$(VENV)/bin/jupyter lab notebooks/

synth: $(VENV)/.runtime ## Generate 1M synthetic customers into data/synth_1m (benchmarks)
	$(VENV)/bin/workbench demo synth --customers 1000000 --seed 1 --out data/synth_1m

bench: $(VENV)/.dev ## Run the benchmark scripts in bench/
	for f in bench/*.py; do $(PY) $$f || exit 1; done

lock: $(VENV)/bin/python ## Re-solve the lock files from pyproject.toml and requirements/constraints.txt
	$(UV) pip compile pyproject.toml --extra spark --extra dev -c requirements/constraints.txt -p 3.11 --no-header -o requirements/dev.lock
	$(UV) pip compile pyproject.toml -c requirements/dev.lock -p 3.11 --no-header -o requirements/runtime.lock

clean-env: ## Remove the virtual environment
	rm -rf $(VENV)
