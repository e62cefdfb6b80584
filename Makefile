# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Each (re)builds .venv only when pyproject.toml changed, so both are idempotent.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint typecheck pytest interop bench bench-core bench-store bench-audit docs clean diagrams mermaid-parser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[sql]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[sql,render,test,docs,bench]'
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/nexuslims-lifecycle demo

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy --strict

# The interop suite (tests/interop, marked `interop`) has its own target below.
pytest: $(VENV)/.test-installed
	$(BIN)/pytest -m "not interop" --cov --cov-report=term

test: lint typecheck pytest docs

# The lifecycle diagrams and table in docs/ are generated from the rules; a test fails
# when the committed copies differ from what `make diagrams` would write. The SVG (the
# README's picture) needs the render extra, which the test install has.
diagrams: $(VENV)/.test-installed
	$(BIN)/nexuslims-lifecycle diagram --format mermaid -o docs/lifecycle.mmd
	$(BIN)/nexuslims-lifecycle diagram --format markdown -o docs/lifecycle-table.md
	$(BIN)/nexuslims-lifecycle diagram --format svg -o docs/lifecycle.svg

# Mermaid (npm, pinned by the lock file): its parser validates our output in
# tests/test_diagrams.py, and the docs serve its browser build from _static/mermaid/.
mermaid-parser: tests/mermaid/node_modules/.package-lock.json

tests/mermaid/node_modules/.package-lock.json: tests/mermaid/package-lock.json
	npm ci --prefix tests/mermaid --no-audit --no-fund

# The interop suite runs the real NexusLIMS (pinned in tests/interop/requirements.txt)
# in its own virtual environment, which never sees our package; the tests read what it
# wrote with ours. A missing NexusLIMS environment is a failure here, a skip elsewhere.
NX_VENV := .venv-nexuslims

$(NX_VENV)/.installed: tests/interop/requirements.txt
	$(PYTHON) -m venv $(NX_VENV)
	$(NX_VENV)/bin/python -m pip install --quiet -r tests/interop/requirements.txt
	touch $@

interop: $(VENV)/.test-installed $(NX_VENV)/.installed
	NEXUSLIMS_LIFECYCLE_REQUIRE_NEXUSLIMS=1 $(BIN)/pytest -m interop tests/interop

# Speed and memory targets live here, never in timed test assertions. `make -k bench`
# runs all three even if one misses a target (each exits 1 then).
bench: bench-core bench-store bench-audit

bench-core: $(VENV)/.test-installed
	$(BIN)/python benchmarks/run.py

bench-store: $(VENV)/.test-installed
	$(BIN)/python benchmarks/store.py

bench-audit: $(VENV)/.test-installed
	$(BIN)/python benchmarks/audit.py

# -E: read every page afresh, so a warning is never hidden by an incremental build.
# The site serves Mermaid itself (copied from tests/mermaid's npm package), offline.
docs: $(VENV)/.test-installed mermaid-parser
	$(BIN)/sphinx-build -E -W --keep-going -n -b html docs docs/_build/html

clean:
	rm -rf $(VENV) $(NX_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage docs/_build docs/reference/api
