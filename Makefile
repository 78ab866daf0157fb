# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench bench-quick bench-load clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/focus-api serve

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check server tools tests bench scripts
	$(BIN)/ruff format --check server tools tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

bench-load: $(STAMP)
	$(BIN)/python bench/load.py

# The benchmark suite (bench/README.md): one table, also written to bench/RESULTS.md.
bench: $(STAMP)
	$(BIN)/python bench/suite.py

bench-quick: $(STAMP)
	$(BIN)/python bench/suite.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
