# Two commands for a newcomer:
#   make demo   simulated 20-store archive -> whole pipeline into SQLite -> dashboard
#   make test   the whole test suite (SQLite, and PostgreSQL when reachable)
# Each creates the virtual environment in .venv from pyproject.toml when needed.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PYTEST_ARGS ?= -n auto --dist loadfile

.PHONY: demo test lint bench install clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes: the demo needs the package, the tests its extras.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[images]'
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

demo: install
	$(BIN)/audit demo

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check audit tests bench dashboards
	$(BIN)/ruff format --check audit tests bench dashboards
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layer contract in pyproject.toml

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) data audit.db audit.db-wal audit.db-shm .pytest_cache .mypy_cache .ruff_cache
