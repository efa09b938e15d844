# `make run` runs the project; `make test` runs every check; `make check` is the fast loop
# (lint, types, and the tests not marked slow). All set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEPLOY_STAMP := $(VENV)/.deploy-installed

.PHONY: run test check lint typecheck pytest pytest-fast cpython-clean deploy-check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

# The service, on config.yaml: http://127.0.0.1:9464/metrics, /health, /lockdep. Ctrl-C stops it.
run: $(STAMP)
	$(BIN)/python -m threadpool serve --config config.yaml

test: lint typecheck pytest cpython-clean deploy-check

check: lint typecheck pytest-fast

lint: $(STAMP)
	$(BIN)/ruff check lockdep threadpool tests benchmarks examples
	$(BIN)/ruff format --check lockdep threadpool tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite runs under lockdep's own pytest plugin: it must report nothing.
pytest: $(STAMP)
	$(BIN)/python -m pytest -p lockdep.pytest_plugin

# The same, less the tests marked slow (stress, fairness, heavy hypothesis, subprocesses).
pytest-fast: $(STAMP)
	$(BIN)/python -m pytest -p lockdep.pytest_plugin -m "not slow"

# CPython's threading, queue and logging suites under `python -m lockdep run`:
# false positives are bugs (needs the interpreter's test package).
cpython-clean: $(STAMP)
	$(BIN)/python -m lockdep run --suppress tests/cpython.suppress -m test test_threading test_queue test_logging

# deploy/: systemd-analyze verify, kubernetes-validate --strict, promtool check and test rules.
deploy-check: $(DEPLOY_STAMP)
	deploy/check $(BIN)

$(DEPLOY_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[deploy]'
	touch $(DEPLOY_STAMP)

bench: $(STAMP)
	$(BIN)/python benchmarks/lockdep_bench.py
	$(BIN)/python benchmarks/install_overhead.py
	$(BIN)/python benchmarks/threadpool_bench.py
	$(BIN)/python benchmarks/scrape_bench.py
	$(BIN)/python benchmarks/connect_burst.py
	$(BIN)/python benchmarks/service_load.py --seconds 20 --reloads 20

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
