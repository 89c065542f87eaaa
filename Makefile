# Faultline: the one interface. CI (.ci/run, GitHub Actions) and people run the same targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
RUN := $(UV) run --frozen
MODELS_DIR ?= artifacts/models
ROWS ?= 10000
PYTEST_ARGS ?=

.PHONY: help setup lint test test-fast train serve demo

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: ## Install the locked Python environment (.venv)
	$(UV) sync --frozen

lint: setup ## Ruff (lint + format check) and mypy
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy

test: lint ## Lint, type check and every test this machine can run
	$(RUN) pytest $(PYTEST_ARGS)

test-fast: setup ## Only the fast tiers (no training, no processes)
	$(RUN) pytest -m "not slow" $(PYTEST_ARGS)

train: setup ## Train on $(ROWS) synthetic rows (or DATA=path.csv) into $(MODELS_DIR)
	$(RUN) python -m training train --rows $(ROWS) --models-dir $(MODELS_DIR) $(if $(DATA),--data $(DATA))

demo: setup ## The main job: train if needed and print the evaluation summary
	@if [ -z "$$(ls -A $(MODELS_DIR) 2>/dev/null | grep -v '^\.')" ]; then $(MAKE) --no-print-directory train; fi
	$(RUN) python -m training evaluate --bundle $(MODELS_DIR)
