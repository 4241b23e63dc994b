# sagamesh — the user's entry points. Logic lives in scripts/.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE := node_modules/.bin/node

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# A stamp, not node_modules/.bin/node: npm keeps the tarballs' old mtimes.
node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.installed ## install npm dependencies (npm ci) if missing or stale

tools: ## build the pinned Go tools into .tools/bin (only what is missing)
	bash scripts/tools.sh

test: deps tools ## run every test tier that needs no cluster
	npm test

test-cluster: deps tools ## make up OFFLINE=1, the cluster tier (*.cluster.test.ts) on the live kind cluster, make down
	bash scripts/test-cluster.sh

.PHONY: help deps tools test test-cluster

dev: deps ## run the whole platform locally on a real nats-server (K8S=1: + kube-apiserver and the operator; MONITORING=1: + Prometheus)
	$(NODE) scripts/dev.ts

demo: deps ## with `make dev` running: place a few orders, one failing, and print how each saga ended
	$(NODE) scripts/demo.ts

bench: deps tools ## measure sagas/s, p50/p99 and the raw JetStream rate on this machine
	npm run bench

.PHONY: dev demo bench

# ---- the kind cluster (scripts/up.sh, scripts/cluster/*, cdk8s/, charts/) ----
IMAGE_TAG ?= dev
API_KEY_FILE ?= .dev/cluster/api-key
ADMIN_KEY_FILE ?= .dev/cluster/admin-key

up: deps tools ## build the local kind cluster with everything, idempotently (OFFLINE=1: no registry, every image built here; DRY_RUN=1 prints the plan)
	IMAGE_TAG=$(IMAGE_TAG) DRY_RUN=$(DRY_RUN) OFFLINE=$(OFFLINE) bash scripts/up.sh

down: ## delete the kind cluster and stop the dockerd make up started, if any (DRY_RUN=1 prints the commands)
	DRY_RUN=$(DRY_RUN) bash scripts/cluster/down.sh

status: ## show the cluster: nodes, Helm releases, sagamesh pods, HPAs and URLs
	bash scripts/cluster/status.sh

load: ## drive the gateway with a rising then falling order rate; `make load ARGS=--help` lists the flags (URL=, RATE=, DURATION=, SETTLE=, API_KEY=, ADMIN_KEY=)
	@# @: the command line may carry the API keys; it is not echoed. The cluster's key files unless a key is given
	@# (an API_KEY given alone is also the admin key: never mixed with the cluster's admin key file).
	@$(NODE) scripts/load.ts $(if $(URL),--url $(URL)) $(if $(RATE),--rate $(RATE)) $(if $(DURATION),--duration $(DURATION)) $(if $(SETTLE),--settle $(SETTLE)) \
	  $(if $(API_KEY),--api-key $(API_KEY),$(if $(wildcard $(API_KEY_FILE)),--api-key-file $(API_KEY_FILE))) \
	  $(if $(ADMIN_KEY),--admin-key $(ADMIN_KEY),$(if $(API_KEY),,$(if $(wildcard $(ADMIN_KEY_FILE)),--admin-key-file $(ADMIN_KEY_FILE)))) $(ARGS)

dlq: ## the dead letters: `make dlq ARGS=list`, `ARGS="show SEQ"`, `ARGS="replay SEQ"`, `ARGS="discard SEQ"` (--nats URL)
	@$(NODE) scripts/dlq.ts $(ARGS)

synth: ## write the Kubernetes manifests (cdk8s) to cdk8s/dist (IMAGE_TAG=dev)
	$(NODE) cdk8s/src/main.ts --image-tag $(IMAGE_TAG)

images: ## build the container images sagamesh/<service>:$(IMAGE_TAG) (DRY_RUN=1 prints the commands)
	IMAGE_TAG=$(IMAGE_TAG) DRY_RUN=$(DRY_RUN) bash scripts/cluster/images.sh

.PHONY: up down status load synth images dlq
