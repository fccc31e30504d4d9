# Two commands matter on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= .sympozium
LLM_DOUBLE_PORT ?= 8900
PORT ?= 6443

.PHONY: install run test lint typecheck unit integration bench clean manifests

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/sympozium up --data-dir $(DATA_DIR) --port $(PORT) --llm-double $(LLM_DOUBLE_PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy .

unit: install
	$(BIN)/pytest tests/unit -q

integration: install
	$(BIN)/pytest tests/integration -q

test: lint typecheck
	$(BIN)/pytest tests e2e -q

manifests: install
	$(BIN)/python -m api.v1alpha1.crdgen manifests/crds

bench: install
	$(BIN)/python bench/apiserver.py
	$(BIN)/python bench/operators.py
	$(BIN)/python bench/jobs.py
	$(BIN)/python bench/agentruns.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
