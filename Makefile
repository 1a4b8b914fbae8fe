# SophiaVL-R1 on verl 0.9.1. Every target sets up what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU torch from this machine's local wheel store; GPU users install the `gpu` extra instead (README).
TORCH_CPU ?= torch==2.13.0

.PHONY: install test lint bench prepare-data clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_CPU)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

test: install
	$(PY) -m pytest -q

# Each benchmark script tests/bench/bench_*.py writes bench-results/<name>.json and prints its ratios.
bench: install
	mkdir -p bench-results
	set -e; for f in tests/bench/bench_*.py; do $(PY) $$f --out bench-results; done

lint: install
	$(VENV)/bin/ruff check recipes rewards data_prep tests
	$(VENV)/bin/ruff format --check recipes rewards data_prep tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
