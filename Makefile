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

.PHONY: help deps tools test

dev: deps ## run the whole platform locally on a real nats-server (K8S=1: + kube-apiserver and the operator; MONITORING=1: + Prometheus)
	$(NODE) scripts/dev.ts

demo: deps ## with `make dev` running: place a few orders, one failing, and print how each saga ended
	$(NODE) scripts/demo.ts

bench: deps tools ## measure sagas/s, p50/p99 and the raw JetStream rate on this machine
	npm run bench

.PHONY: dev demo bench
