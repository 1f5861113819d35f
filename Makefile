# The two commands of the README: `make run` (main job on the embedded default graph) and
# `make test` (lint + tests). Both create or refresh the virtualenv .venv from pyproject.toml.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PIP_CACHE_DIR ?= $(HOME)/.cache/pip
export PIP_CACHE_DIR

.PHONY: run test lint venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev,text,tune,tensorboard]'
	touch $@

venv: $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/python pipelines/run.py $(ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
