# Faultline: the one interface. CI (.ci/run, GitHub Actions) and people run the same targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
RUN := $(UV) run --frozen
MODELS_DIR ?= artifacts/models
ROWS ?= 10000
PYTEST_ARGS ?=

IMAGE ?= faultline:dev
# Where no registry is reachable, `service/base-image.sh` builds local/debian:bookworm.
BASE_IMAGE ?= $(shell docker image inspect local/debian:bookworm >/dev/null 2>&1 && echo local/debian:bookworm || echo python:3.12-slim)

.PHONY: help setup lint test test-fast train serve demo loadtest image bench dashboards grafana-schema chart-files k8s-manifests

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: ## Install the locked Python environment (.venv)
	$(UV) sync --frozen

lint: setup ## Ruff (lint + format check), mypy and hadolint
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) hadolint service/Dockerfile

test: lint ## Lint, type check and every test this machine can run
	$(RUN) pytest $(PYTEST_ARGS)

test-fast: setup ## Only the fast tiers (no training, no processes)
	$(RUN) pytest -m "not slow" $(PYTEST_ARGS)

train: setup ## Train on $(ROWS) synthetic rows (or DATA=path.csv) into $(MODELS_DIR)
	$(RUN) python -m training train --rows $(ROWS) --models-dir $(MODELS_DIR) $(if $(DATA),--data $(DATA))

demo: setup ## The main job: train if needed, serve, Prometheus, a minute of Locust, a summary
	$(RUN) python -m loadtest.demo --models-dir $(MODELS_DIR)

HOST ?= http://127.0.0.1:8000
SCENARIO ?= steady
loadtest: setup ## Locust against HOST (SCENARIO=steady|ramp|spike), gated on the SLOs
	$(RUN) locust --config loadtest/locust.conf -H $(HOST) --scenario $(SCENARIO)

serve: setup ## Serve the newest local bundle on 127.0.0.1:8000
	$(RUN) faultline serve --model-dir $(MODELS_DIR)

image: ## Build the service image (trains the default bundle inside the build)
	@mkdir -p .certs && cp /usr/local/share/ca-certificates/*.crt .certs/ 2>/dev/null || true
	docker build -f service/Dockerfile -t $(IMAGE) --build-arg BASE_IMAGE=$(BASE_IMAGE) \
	  --build-arg GIT_COMMIT=$$(git rev-parse HEAD 2>/dev/null || echo unknown) .

bench: setup ## Throughput, latency, start-up and memory (server on core 0, wrk on core 1)
	@if [ -z "$$(ls -A $(MODELS_DIR) 2>/dev/null | grep -v '^\.')" ]; then $(MAKE) --no-print-directory train; fi
	$(RUN) python -m loadtest.bench --model-dir $(MODELS_DIR) --json results/bench.json

dashboards: setup ## Regenerate grafana/dashboards/*.json from grafana/build.py
	$(RUN) python grafana/build.py

grafana-schema: ## Generate the dashboard JSON schema from @grafana/schema (npm)
	cd grafana/schema && npm ci --silent --no-audit --no-fund && npm run -s generate

chart-files: setup ## Copy rules, dashboards and canary checks into the Helm chart
	$(RUN) python helm/sync_chart_files.py

k8s-manifests: setup ## Regenerate k8s/base and k8s/components from the Helm chart
	$(RUN) python k8s/render.py
