# Reprise — the two commands that work on a fresh machine:
#   make demo   install, then a real end-to-end replication of the examples (SQLite; Docker when
#               an engine is reachable, otherwise the local backend)
#   make test   install, then the static checks and the whole test suite
# plus: make serve, make images, make check, make perf.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install demo test check serve images perf clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/reprise demo

check: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	scripts/alembic-check.sh

test: install
	scripts/test-deps.sh
	$(MAKE) --no-print-directory check
	$(BIN)/pytest $(PYTEST_ARGS)

serve: install
	$(BIN)/reprise serve --with-worker

images:
	scripts/ensure-docker.sh
	scripts/build-images.sh

# every benchmark of tests/perf, then docs/performance.md; PERF_ARGS="--only queue" or "--quick"
perf: install
	$(PY) -m tests.perf.run $(PERF_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
