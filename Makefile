# Faultline: the one interface. CI (.ci/run, GitHub Actions) and people run the same targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
RUN := $(UV) run --frozen
MODELS_DIR ?= artifacts/models
ROWS ?= 10000
PYTEST_ARGS ?=
# shown by `make help` with their values
HELP_VARIABLES = MODELS_DIR ROWS DATA PORT HOST SCENARIO DURATION USERS PROMETHEUS KEEP IMAGE EXPLAINER_IMAGE BASE_IMAGE TRAIN_ARGS WORKERS PYTEST_ARGS CLUSTER NAMESPACE RELEASE TAG CANARY_TAG KIND_NODE ADAPTER ROLLOUTS DEPLOY_ARGS

IMAGE ?= faultline:dev
# The explainer image (service/Dockerfile.explainer: IMAGE plus SHAP), named after IMAGE.
EXPLAINER_IMAGE ?= $(subst faultline:,faultline-explainer:,$(IMAGE))
# Where no registry is reachable, `service/base-image.sh` builds local/debian:bookworm.
BASE_IMAGE ?= $(shell docker image inspect local/debian:bookworm >/dev/null 2>&1 && echo local/debian:bookworm || echo python:3.12-slim)

.PHONY: help doctor setup lint test test-fast train pipeline serve demo loadtest image smoke bench attack clean generate dashboards grafana-schema chart-files k8s-manifests kind-up kind-load deploy canary promote rollback kind-down

help: ## List every target, then the variables they take with their defaults
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'
	@echo "Variables (make TARGET NAME=value), with their defaults:"
	@$(foreach v,$(HELP_VARIABLES),printf '  %-14s %s\n' '$(v)' '$(or $($(v)),(empty))';)

doctor: ## Every prerequisite: found or not, what it is for, how to install it
	@python3 .ci/doctor.py

setup: .venv/.synced ## Install the locked Python environment (.venv), byte-compiled

# Synced again only when the lock or the project changed (byte-compiling the whole environment
# takes seconds, on every target that needs the environment otherwise); `uv run` still checks it.
.venv/.synced: uv.lock pyproject.toml
	$(UV) sync --frozen --quiet --compile-bytecode
	@touch $@

lint: setup ## Ruff (lint + format check), mypy and hadolint
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) hadolint service/Dockerfile service/Dockerfile.explainer

# Test files run in WORKERS processes (a file's tests stay together: module fixtures are built
# once); one OpenMP thread each, or scikit-learn's threads oversubscribe the cores and the suite
# takes twice as long.
WORKERS ?= 2
PYTEST := OMP_NUM_THREADS=1 $(RUN) pytest -n $(WORKERS) --dist loadfile
test: doctor lint ## Lint, type check and every test this machine can run (WORKERS in parallel)
	$(PYTEST) $(PYTEST_ARGS)

# pytest plugins of tools the fast tiers never use (each worker imports them: ~3.5 s)
UNUSED_PLUGINS := -p no:locust -p no:faker -p no:hypothesispytest -p no:schemathesis \
  -p no:hydra_pytest -p no:platformdirs
# Modules whose every test -m deselects are not even imported (tests/conftest.py).
test-fast: setup ## Only the fast tiers: no training beyond a 1 s fixture bundle, no processes (not slow, k8s, prometheus)
	$(PYTEST) $(UNUSED_PLUGINS) -m "not slow and not k8s and not prometheus" $(PYTEST_ARGS)

train: setup ## Train on ROWS synthetic rows (or DATA=path.csv) into MODELS_DIR
	$(RUN) python -m training train --rows $(ROWS) --models-dir $(MODELS_DIR) $(if $(DATA),--data $(DATA))

pipeline: setup ## The DVC pipeline (dvc.yaml): re-run the stages whose params.yaml values, code or inputs changed
	$(RUN) dvc repro

KEEP ?= 0
demo: doctor setup ## The main job: train if needed, serve, Prometheus, Locust, a summary (KEEP=1 keeps it up)
	$(RUN) python -m loadtest.demo --models-dir $(MODELS_DIR) --seconds $(DURATION) --users $(USERS) \
	  $(if $(filter 1,$(KEEP)),--keep)

HOST ?= http://127.0.0.1:8000
SCENARIO ?= steady
DURATION ?= 60
USERS ?= 10
PROMETHEUS ?=
loadtest: setup ## Locust against HOST for DURATION s with USERS (SCENARIO=steady|ramp|spike); PROMETHEUS=url adds the server-side gate
	@mkdir -p results/loadtest
	$(RUN) locust --config loadtest/locust.conf -H $(HOST) --scenario $(SCENARIO) \
	  --scenario-seconds $(DURATION) --peak-users $(USERS) --summary-json results/loadtest/locust.json \
	  --csv results/loadtest/locust --html results/loadtest/locust.html \
	  $(if $(PROMETHEUS),|| true)
	$(if $(PROMETHEUS),$(RUN) python -m loadtest.server_slo --prometheus $(PROMETHEUS) \
	  --window $(DURATION)s --client-summary results/loadtest/locust.json)

PORT ?= 8000

serve: setup ## Serve the newest bundle of MODELS_DIR on 127.0.0.1:PORT
	$(RUN) faultline serve --model-dir $(MODELS_DIR) --port $(PORT)

image: ## Build the service image IMAGE (bundle trained inside the build), then the explainer image EXPLAINER_IMAGE from it
	@mkdir -p .certs && cp /usr/local/share/ca-certificates/*.crt .certs/ 2>/dev/null || true
	docker build -f service/Dockerfile -t $(IMAGE) --build-arg BASE_IMAGE=$(BASE_IMAGE) \
	  --build-arg GIT_COMMIT=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
	  --build-arg TRAIN_ARGS="$(TRAIN_ARGS)" .
	@# IMAGE plus one layer (SHAP): never retrains, always IMAGE's bundle
	docker build -f service/Dockerfile.explainer -t $(EXPLAINER_IMAGE) \
	  --build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg SERVICE_IMAGE=$(IMAGE) .

smoke: ## Run IMAGE hardened (read-only, no capabilities): ready, one prediction, non-root, clean stop
	bash service/smoke.sh $(IMAGE)

bench: setup ## Throughput, latency, start-up and memory (server on core 0, wrk on core 1)
	@if [ -z "$$(ls -A $(MODELS_DIR) 2>/dev/null | grep -v '^\.')" ]; then $(MAKE) --no-print-directory train; fi
	$(RUN) python -m loadtest.bench --model-dir $(MODELS_DIR) --json results/bench.json

clean: ## Remove outputs (artifacts/, results/, dist/, caches) and the images the tests built
	rm -rf artifacts results dist mlruns .pytest_cache .mypy_cache .ruff_cache .hypothesis \
	  dvc_plots data/readings.csv .dvc/cache .dvc/tmp
	-docker image rm -f faultline:test faultline-explainer:test 2>/dev/null
	-docker image prune -f --filter label=org.opencontainers.image.title=faultline 2>/dev/null

attack: setup ## Replay every hostile-client attack against a real server process; one line per attack
	@if [ -z "$$(ls -A $(MODELS_DIR) 2>/dev/null | grep -v '^\.')" ]; then $(MAKE) --no-print-directory train; fi
	$(RUN) python -m tests.attack --model-dir $(MODELS_DIR) --work results/attack

generate: setup ## Regenerate rules, canary checks and dashboards from prometheus/observability.yml, then the chart copies and k8s/
	$(RUN) python prometheus/build.py
	$(RUN) python grafana/build.py
	$(RUN) python helm/sync_chart_files.py
	$(RUN) python k8s/render.py

dashboards: setup ## Regenerate grafana/dashboards/*.json from grafana/build.py
	$(RUN) python grafana/build.py

grafana-schema: ## Generate the dashboard JSON schema from @grafana/schema (npm)
	cd grafana/schema && npm ci --silent --no-audit --no-fund && npm run -s generate

chart-files: setup ## Copy rules, dashboards and canary checks into the Helm chart
	$(RUN) python helm/sync_chart_files.py

k8s-manifests: setup ## Regenerate k8s/base and k8s/components from the Helm chart
	$(RUN) python k8s/render.py

# --- Kubernetes (kind): needs docker, kind, kubectl and helm; GitHub Actions e2e runs these --
CLUSTER ?= faultline
NAMESPACE ?= faultline
RELEASE ?= faultline
TAG ?= dev
CANARY_TAG ?= canary
KIND_NODE ?= kindest/node:v1.31.2
ADAPTER ?= 1
ROLLOUTS ?= 0
DEPLOY_ARGS ?=

kind-up: ## kind cluster + ingress-nginx, metrics-server, kube-prometheus-stack, prometheus-adapter (ADAPTER=0 skips it; ROLLOUTS=1 adds Argo Rollouts)
	kind create cluster --name $(CLUSTER) --config k8s/kind/cluster.yaml --image $(KIND_NODE) --wait 180s
	helm repo add ingress-nginx https://kubernetes.github.io/ingress-nginx --force-update
	helm repo add metrics-server https://kubernetes-sigs.github.io/metrics-server --force-update
	helm repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update
	helm repo add argo https://argoproj.github.io/argo-helm --force-update
	helm upgrade --install ingress-nginx ingress-nginx/ingress-nginx --version 4.11.3 \
	  -n ingress-nginx --create-namespace -f k8s/kind/ingress-nginx-values.yaml --wait --timeout 5m
	helm upgrade --install metrics-server metrics-server/metrics-server --version 3.12.2 \
	  -n kube-system --set 'args={--kubelet-insecure-tls}' --wait --timeout 5m
	helm upgrade --install kube-prometheus-stack prometheus-community/kube-prometheus-stack \
	  --version 65.1.1 -n monitoring --create-namespace \
	  -f k8s/kind/kube-prometheus-stack-values.yaml --wait --timeout 10m
	if [ "$(ADAPTER)" = "1" ]; then helm upgrade --install prometheus-adapter \
	  prometheus-community/prometheus-adapter --version 4.11.0 -n monitoring \
	  -f helm/faultline/files/prometheus-adapter-values.yaml --wait --timeout 5m; fi
	if [ "$(ROLLOUTS)" = "1" ]; then helm upgrade --install argo-rollouts argo/argo-rollouts \
	  --version 2.37.7 -n argo-rollouts --create-namespace --wait --timeout 5m; fi

kind-load: image ## Build the images and load them into the kind cluster
	kind load docker-image $(IMAGE) $(EXPLAINER_IMAGE) --name $(CLUSTER)

deploy: ## helm upgrade --install (waits for readiness, an Argo Rollout too), then helm test
	helm upgrade --install $(RELEASE) helm/faultline -n $(NAMESPACE) --create-namespace \
	  -f k8s/kind/faultline-values.yaml --set image.tag=$(TAG) $(DEPLOY_ARGS) --wait --timeout 5m
	@# Helm's --wait does not know the Rollout kind: wait for it to be Healthy before testing
	if kubectl -n $(NAMESPACE) get rollout $(RELEASE) >/dev/null 2>&1; then \
	  kubectl -n $(NAMESPACE) wait rollout/$(RELEASE) --for=jsonpath='{.status.phase}'=Healthy --timeout=5m; fi
	helm test $(RELEASE) -n $(NAMESPACE) --logs --timeout 3m

canary: ## Add a canary track running image tag CANARY_TAG
	helm upgrade $(RELEASE) helm/faultline -n $(NAMESPACE) --reuse-values --wait --timeout 5m \
	  --set canary.enabled=true --set canary.image.tag=$(CANARY_TAG) --set canary.modelVersion=$(CANARY_TAG)

promote: ## Make the canary's image the stable one and remove the canary track
	helm upgrade $(RELEASE) helm/faultline -n $(NAMESPACE) --reuse-values --wait --timeout 5m \
	  --set image.tag=$(CANARY_TAG) --set canary.enabled=false

rollback: ## Remove the canary track (stable untouched)
	helm upgrade $(RELEASE) helm/faultline -n $(NAMESPACE) --reuse-values --wait --timeout 5m \
	  --set canary.enabled=false

kind-down: ## Delete the kind cluster
	kind delete cluster --name $(CLUSTER)
