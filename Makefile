# `make run` runs the project; `make test` runs every check; `make check` is the fast loop
# (lint, types, and the tests not marked slow). All set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEPLOY_STAMP := $(VENV)/.deploy-installed

.PHONY: run test check lint typecheck pytest pytest-fast pytest-pure cpython-clean versions cpython-executor thirdparty deploy-check bench clean

# The install builds the C extensions in place (lockdep/_fastpath.*.so and
# threadpool/_timeline.*.so, one per CPython version); without a C compiler it goes
# on without them (pure Python).
$(STAMP): pyproject.toml setup.py lockdep/_fastpath.c threadpool/_timeline.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

# The service, on config.yaml: http://127.0.0.1:9464/metrics, /health, /lockdep. Ctrl-C stops it.
run: $(STAMP)
	$(BIN)/python -m threadpool serve --config config.yaml

test: lint typecheck pytest pytest-pure cpython-clean deploy-check versions cpython-executor

check: lint typecheck pytest-fast

lint: $(STAMP)
	$(BIN)/ruff check lockdep threadpool tests benchmarks examples setup.py
	$(BIN)/ruff format --check lockdep threadpool tests benchmarks examples setup.py

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite runs under lockdep's own pytest plugin: it must report nothing.
pytest: $(STAMP)
	$(BIN)/python -m pytest -p lockdep.pytest_plugin

# The same, less the tests marked slow (stress, fairness, heavy hypothesis, subprocesses).
pytest-fast: $(STAMP)
	$(BIN)/python -m pytest -p lockdep.pytest_plugin -m "not slow"

# lockdep's hot path exists in C and in pure Python (lockdep/fastpath.py), and so do
# the entries of threadpool's queues with deadlines (threadpool/timeline.py): the
# suite above runs on C where it is built; tests/lockdep (CPython's lock_tests
# included) and threadpool's tests of deadlines, bounds and stress run once more on
# pure Python.
pytest-pure: $(STAMP)
	LOCKDEP_PURE=1 $(BIN)/python -m pytest -p lockdep.pytest_plugin tests/lockdep
	THREADPOOL_PURE=1 $(BIN)/python -m pytest -p lockdep.pytest_plugin \
		tests/threadpool/test_timeline.py tests/threadpool/test_deadlines.py \
		tests/threadpool/test_bounded.py tests/threadpool/test_stress.py \
		tests/threadpool/test_executor.py

# CPython's threading, queue, logging and asyncio-locks suites under `python -m lockdep run`:
# false positives are bugs (needs the interpreter's test package).
cpython-clean: $(STAMP)
	$(BIN)/python -m lockdep run --suppress tests/cpython.suppress -m test test_threading test_queue test_logging test_asyncio.test_locks

# The test suites of cachetools, fasteners, filelock and prometheus_client (their sdists,
# pinned in tests/thirdparty/run.py) under `pytest --lockdep`, in a venv of their own.
# About four minutes (filelock's own suite takes three): not part of `make test`.
# SUITES="cachetools fasteners" runs some of them; PLAIN=1 runs them without lockdep.
TP_VENV := .venv-thirdparty
TP_STAMP := $(TP_VENV)/.installed

$(TP_STAMP): pyproject.toml tests/thirdparty/requirements.txt
	$(PYTHON) -m venv $(TP_VENV)
	$(TP_VENV)/bin/python -m pip install --quiet -e . -r tests/thirdparty/requirements.txt
	touch $(TP_STAMP)

thirdparty: $(TP_STAMP)
	$(TP_VENV)/bin/python tests/thirdparty/run.py $(if $(PLAIN),--plain) $(SUITES)

# The other CPythons the package supports (the main one is $(PYTHON)): each in its
# own virtual environment (.venv-X.Y), the suite and CPython's threading, queue,
# logging and asyncio-locks suites of that version, the versions side by side
# (VERSION_JOBS at once; their output is kept apart). A version not on the machine
# is skipped with a message, except when CI is set: then it fails the run.
OTHER_VERSIONS ?= 3.10 3.12 3.13
VERSION_JOBS ?= 3

versions:
	@$(MAKE) --no-print-directory -j$(VERSION_JOBS) --output-sync=target \
	    $(addprefix version-,$(OTHER_VERSIONS))

version-%:
	@py=$$(.ci/find-python $*) || { \
	    if [ -n "$${CI:-}" ]; then echo "CPython $* is not on this machine (CI needs it)" >&2; exit 1; fi; \
	    echo "CPython $* is not on this machine: skipped (CI fails instead)"; exit 0; }; \
	start=$$(date +%s); \
	$(MAKE) --no-print-directory pytest cpython-clean PYTHON=$$py VENV=.venv-$* && \
	echo "CPython $*: passed in $$(( $$(date +%s) - start )) s"

# CPython 3.13's own thread-pool executor tests (Lib/test/test_concurrent_futures) with
# ThreadPoolExecutor replaced by threadpool.Executor (tests/cpython_executor.py says what
# runs), in the 3.13 environment `versions` uses. About 35 seconds.
cpython-executor:
	@py=$$(.ci/find-python 3.13) || { \
	    if [ -n "$${CI:-}" ]; then echo "CPython 3.13 is not on this machine (CI needs it)" >&2; exit 1; fi; \
	    echo "CPython 3.13 is not on this machine: cpython-executor skipped (CI fails instead)"; exit 0; }; \
	$(MAKE) --no-print-directory .venv-3.13/.installed PYTHON=$$py VENV=.venv-3.13 && \
	.venv-3.13/bin/python tests/cpython_executor.py

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
	rm -rf $(VENV) .venv-* .thirdparty .pytest_cache .mypy_cache .ruff_cache .hypothesis
