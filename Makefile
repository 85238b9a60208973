# Thin wrapper: every target is one command a developer or CI runs.
#   make run    the whole portal on this machine (SQLite, private Redis, two simulated PBS hosts)
#   make test   the whole test suite (starts private Redis, PostgreSQL, Celery, Chromium itself)
#   make check  ruff, mypy, import-linter layer contracts, Django checks, migrations up to date
#   make bench  every benchmark under bench/, one table
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: run test check bench venv clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $$(scripts/find-python) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	scripts/ensure-system-packages run
	DJANGO_DEBUG=1 $(PY) -m devstack

test: $(STAMP)
	scripts/ensure-system-packages test
	DJANGO_DEBUG=1 $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -p no:cacheprovider $(PYTEST_ARGS)

check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	DJANGO_DEBUG=1 PORTAL_CACHE_REDIS=0 $(PY) manage.py check
	DJANGO_DEBUG=1 PORTAL_CACHE_REDIS=0 $(PY) manage.py makemigrations --check --dry-run

bench: $(STAMP)
	scripts/ensure-system-packages run
	DJANGO_DEBUG=1 $(PY) bench/run_all.py

clean:
	rm -rf $(VENV) var test-output
