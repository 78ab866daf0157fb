# Two commands do all set-up on a fresh machine: `make run` and `make test`.
#
# Installs are reproducible: Python packages come from requirements-dev.lock (exact versions with hashes,
# generated from pyproject.toml by `make lock`), the Node tools the tests drive from .tools/node/package-lock.json
# (`make npm-lock`). tests/test_lock.py fails when pyproject.toml and the lock disagree.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements-dev.lock
LOCK_FLAGS ?=
NODE_DIR := .tools/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed
# The official FOCUS validator (../shared/tools) builds its own venv from PyPI on first use: do it here, up
# front, so that nothing downloads while the tests run.
# It marks a finished set-up with this file (and exits 1 when the sample fails a rule: that is not the point).
VALIDATOR := ../shared/tools/focus-validate
VALIDATOR_SAMPLE := ../shared/data/focus-samples/aws_1_3_cost_and_usage_rows25_seed7_credits.csv
VALIDATOR_READY := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/focus-validator-1.3/venv/.ready

.PHONY: run test tools lint typecheck unit lock npm-lock bench bench-quick bench-load bench-spark bench-scale clean

# The venv: the locked packages, hash-checked (-qq hides pip's notes about the local package folders this
# machine's pip config names and does not have), then this project itself, editable, built with the locked
# setuptools (PYTHONWARNINGS=ignore quiets its note that same-named folders may shadow the package: they are it).
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --require-hashes -r $(LOCK)
	PYTHONWARNINGS=ignore $(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Regenerate the lock after changing dependencies in pyproject.toml (the pins it already has stay unless
# LOCK_FLAGS=--upgrade); commit both files together.
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --extra dev --no-emit-index-url --no-emit-find-links $(LOCK_FLAGS) --output-file $(LOCK) pyproject.toml

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed to install the test tools (apt-get install npm)" >&2; exit 1; }
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# After changing .tools/node/package.json: rewrite its lock (versions and integrity hashes), then `make tools`.
npm-lock:
	cd $(NODE_DIR) && npm install --package-lock-only --no-audit --no-fund

$(VALIDATOR_READY):
	@test -f $(VALIDATOR) || { echo "$(VALIDATOR) not found: the tests need ../shared, the folder beside the checkout" >&2; exit 1; }
	bash $(VALIDATOR) $(VALIDATOR_SAMPLE) >/dev/null || true
	@test -f $@ || { echo "focus-validate could not set itself up (see above)" >&2; exit 1; }

# Everything the tests run besides Python: Node 22, the MCP Inspector CLI, the MCP conformance suites, focus-validate.
tools: $(NODE_STAMP) $(VALIDATOR_READY)

run: $(STAMP)
	$(BIN)/focus-api serve

test: $(STAMP) tools lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check server tools tests bench scripts
	$(BIN)/ruff format --check server tools tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

# Every test, the slow ones included; none may skip (tests/conftest.py).
unit: $(STAMP) tools
	$(BIN)/pytest

bench-load: $(STAMP)
	$(BIN)/python bench/load.py

# The benchmark suite (bench/README.md): one table, also written to bench/RESULTS.md.
bench: $(STAMP)
	$(BIN)/python bench/suite.py

bench-quick: $(STAMP)
	$(BIN)/python bench/suite.py --quick

# Page, summary, export and 64-connection cases at 1M, 3M and 10M rows, and how each grows (bench/scale.py);
# BENCH_SCALE_FLAGS="--sizes N,M" for other sizes.
bench-scale: $(STAMP)
	$(BIN)/python bench/scale.py $(BENCH_SCALE_FLAGS)

# focus-api over a local Spark Connect server (started and stopped by the script; needs Java 17) vs the same
# raw Spark queries, DuckDB beside them: 1M rows, BENCH_SPARK_FLAGS="--rows N" for another size.
bench-spark: $(STAMP)
	$(BIN)/python bench/spark.py $(BENCH_SPARK_FLAGS)

clean:
	rm -rf $(VENV) .tools/node/node_modules .pytest_cache .mypy_cache .ruff_cache
