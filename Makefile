# hastack: the two commands a newcomer needs are `make up` and `make test`; everything else is here too.
SHELL := /bin/bash
.DEFAULT_GOAL := help
STACK ?= local
ROOT := $(CURDIR)
ENV := source $(ROOT)/.tools/env &&
PY := $(ROOT)/.venv/bin/python
PYTEST_ARGS ?=

.PHONY: help setup up down status preview test test-unit test-integration lint typecheck docs bench clean

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup: ## install everything: virtualenv, Pulumi engine, local services (idempotent)
	@bash scripts/setup.sh

up: setup ## deploy the local stack (real processes) and wait until it is healthy
	@$(ENV) $(PY) -m hastack.cli up --stack $(STACK)

down: ## destroy the stack: no process and no data folder left
	@$(ENV) $(PY) -m hastack.cli down --stack $(STACK)

status: ## per zone: roles, replication lag, Consul members, proxy backends
	@$(ENV) $(PY) -m hastack.cli status --stack $(STACK)

preview: setup ## pulumi preview --diff with the policy pack and this stack's policy config
	@$(ENV) $(PY) -m hastack.cli preview --stack $(STACK)

lint: ## ruff
	@$(PY) -m ruff check components policies stacks tests scripts
	@$(PY) -m ruff format --check components policies stacks tests scripts

typecheck: ## mypy
	@$(PY) -m mypy

test-unit: ## fast tests, no engine and no services (seconds)
	@$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

test-integration: ## real engine + local services
	@$(ENV) $(PY) -m pytest tests/integration -q $(PYTEST_ARGS)

test: setup lint typecheck test-unit test-integration ## what CI runs

docs: ## regenerate docs/configuration.md from the models
	@$(PY) -m hastack.docs > docs/configuration.md

bench: setup ## failover drills, >= 10 runs per scenario; writes bench/results and docs/benchmarks.md
	@$(ENV) $(PY) -m hastack.cli bench --stack $(STACK)

clean: ## remove build state (keeps the per-machine engine cache in ~/.cache/hastack)
	rm -rf .venv .tools .state .pytest_cache .mypy_cache .ruff_cache
