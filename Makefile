# sagamesh — the user's entry points. Logic lives in scripts/.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE := node_modules/.bin/node

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

node_modules/.bin/node: package-lock.json
	npm ci
	@touch $@

deps: node_modules/.bin/node ## install npm dependencies (npm ci) if needed

tools: ## build the pinned Go tools into .tools/bin (only what is missing)
	bash scripts/tools.sh

test: deps tools ## run every test tier that needs no cluster
	npm test

.PHONY: help deps tools test
