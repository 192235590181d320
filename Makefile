# obslab — two commands on a fresh Debian 12 / Ubuntu 24.04 VM, as root:  make up   and   make test
# Every target that needs the environment runs `setup` first; setup is idempotent and fast when done.
.DEFAULT_GOAL := help
VENV  := .venv
PY    := $(VENV)/bin/python
OBSLAB := $(VENV)/bin/obslab
PYTEST_ARGS ?=

.PHONY: help setup up down status test test-fast lint bench dashboards clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

setup: ## install system packages, kernel headers, tracefs and .venv (idempotent)
	@bash scripts/setup.sh

up: setup ## start the local stack (exporters, Prometheus, Alertmanager, demo service, console)
	@$(OBSLAB) up

down: ## stop everything `make up` started
	@$(OBSLAB) down

status: ## show the stack's components and whether they are healthy
	@$(OBSLAB) status

test: setup ## run the whole test suite (unit, integration with real Prometheus, eBPF, labs, browser)
	@$(PY) -m pytest $(PYTEST_ARGS)

UNIT_TESTS := tests/core tests/host/test_parsers.py tests/host/test_golden.py tests/host/test_registry.py \
	tests/ebpf/test_unit.py tests/labs/test_catalog.py tests/labs/test_grader.py tests/labs/test_ledger.py \
	tests/dashboards/test_build.py tests/dashboards/test_rules.py

test-fast: setup ## quick unit tests on fixtures (parsers, golden files, schema, grader, rules)
	@$(PY) -m pytest $(UNIT_TESTS) $(PYTEST_ARGS)

lint: setup ## ruff and mypy
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy obslab exporters labs dashboards

bench: setup ## performance benchmarks (side by side with node_exporter / without probes)
	@$(PY) -m bench

dashboards: setup ## build the Grafana dashboards JSON into deploy/grafana/dashboards
	@$(OBSLAB) dashboards build

clean: ## remove the venv and build outputs (not your state directory)
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
