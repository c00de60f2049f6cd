# Two commands set up everything on a fresh Debian machine: `make demo` and `make test`. Both are idempotent.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: setup deps demo demo-canary demo-down bench mutation e2e test check lint typecheck unit integration synth clean

deps:
	@scripts/system-deps.sh

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[cdk,dev,lint,admission]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

setup: deps $(VENV)/.installed node_modules/.installed

# The main job on the embedded local default: real BuildKit and OCI registry, moto for AWS.
demo: setup
	$(BIN)/slipway validate platform.toml
	$(BIN)/slipway synth
	$(BIN)/slipway local up
	$(BIN)/slipway local seed
	$(BIN)/slipway local run --approve

# After `make demo`: a good release promoted through the canaries, a bad one caught and rolled back (#29).
demo-canary: $(VENV)/.installed
	@BIN=$(BIN) scripts/demo-canary.sh

demo-down: $(VENV)/.installed
	$(BIN)/slipway local down

synth: setup
	node_modules/.bin/cdk synth --quiet

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

unit: $(VENV)/.installed
	$(BIN)/pytest tests/unit

integration: setup
	$(BIN)/pytest tests/integration

e2e: setup
	$(BIN)/pytest tests/e2e

# The end-to-end replay (QEMU- and I/O-bound) runs beside the unit and integration tests: scripts/test.sh.
test: setup lint typecheck
	@BIN=$(BIN) scripts/test.sh

check: test

# On demand, never in CI: needs the local platform from `make demo`. Prints tables, writes JSON and docs/benchmarks.png.
bench: setup
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(BIN)/python benchmarks/synth_scale.py
	$(BIN)/python benchmarks/validate_scale.py
	$(BIN)/python benchmarks/builds.py
	$(BIN)/python benchmarks/day_two.py
	$(BIN)/python benchmarks/runner.py
	$(BIN)/python benchmarks/attest.py
	$(BIN)/python benchmarks/chart.py

# On demand, never in CI: mutation testing of the core modules against the unit tests ([tool.mutmut] in pyproject).
# Writes benchmarks/results/mutation.json and lists the survivors; exits 1 while a module scores below 0.90.
mutation: setup
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[mutation]'
	rm -rf mutants
	$(BIN)/mutmut run
	$(BIN)/python benchmarks/mutation.py

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache mutants
