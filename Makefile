# Two entry points for a fresh machine (README.md): `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-deps demo test test-unit lint constraints clean

# The pinned environment: torch 2.14.1 / torchvision 0.29.1 and every other package at the
# version in constraints.txt (re-run when either file changes).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[train,dev,bench,compat]'
	touch $(STAMP)

setup: $(STAMP)

# Debian packages the tests drive for real: SLURM + munge, shellcheck, headless Chromium.
system-deps:
	bash tests/install-system-deps.sh

# An offline 4-run grid sweep on digits through W&B's search engine and the local store: no
# internet, no W&B account, no GPU. Runs land in sweeps/<id>/runs/ as W&B offline runs; the
# HTML report (parallel coordinates, parameter importance) is written to sweeps/<id>/report.html.
demo: setup
	@sweep=$$($(BIN)/sweepkit sweep create config/sweeps/digits_grid.yaml --root sweeps) && \
	  $(BIN)/sweepkit agent "$$sweep" && \
	  $(BIN)/sweepkit status "$$sweep" && \
	  $(BIN)/sweepkit report "$$sweep"

test: system-deps setup
	$(BIN)/python -m pytest

# The unit tier alone: in-process tests, no processes started, no SLURM, browser or container, so
# no system packages needed (tests marked `system` are left out; tests/conftest.py says which).
test-unit: setup
	$(BIN)/python -m pytest -m "not system"

lint: setup
	$(BIN)/ruff check train jobs sweepkit tests bench
	$(BIN)/ruff format --check train jobs sweepkit tests bench
	$(BIN)/mypy

# Re-pin the development environment after changing dependencies in pyproject.toml.
constraints: setup
	{ head -n 2 constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v '^sweepkit'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) runs sweeps .pytest_cache .mypy_cache .ruff_cache
