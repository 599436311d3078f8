# One entry point for people and CI. `make serve` and `make test` are the README's quick start.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
UV_VERSION := 0.13.9
UV := .cache/uv/bin/uv
VENV := .venv
PORT ?= 3000
PYTEST_ARGS ?=
# The notebook `make train` and `make serve` use; its model is <notebook name>_clf (e.g. churn_clf).
NOTEBOOK ?= notebooks/iris.ipynb
MODEL := $(basename $(notdir $(NOTEBOOK)))_clf

# uv must use the interpreter named above and never download one of its own.
export UV_PYTHON_DOWNLOADS := never
export UV_NATIVE_TLS := true
export BENTOML_DO_NOT_TRACK := true

.PHONY: help setup train serve check fmt test audit build bench lock clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .cache/uv
	.cache/uv/bin/pip install --quiet uv==$(UV_VERSION)

# The stamp makes set-up a no-op until pyproject.toml, uv.lock or this file change. Bytecode is compiled at
# install, as in the image: where PYTHONDONTWRITEBYTECODE is set, every `bentoml serve` process otherwise
# compiled BentoML's, Gradio's and pandas' sources again at each start (ready in 5.6 s instead of 3 s).
$(VENV)/.synced: pyproject.toml uv.lock Makefile | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	touch $@

setup: $(VENV)/.synced ## Create .venv with the locked dependencies (no-op when up to date)

train: setup ## Execute $(NOTEBOOK) and save its model to the BentoML store (NOTEBOOK=notebooks/churn.ipynb ...)
	$(VENV)/bin/python -m train --notebook $(NOTEBOOK)

serve: train ## Train from $(NOTEBOOK), then serve its API + UI on http://localhost:$(PORT) (with its requirements.txt)
	PY=$$($(VENV)/bin/python -m train.environment $(NOTEBOOK)) && MODEL_TAG=$(MODEL):latest $$PY -m bentoml serve . --port $(PORT)

# The quick loop: what a contributor runs before a commit. No root, no network (once set up), no slow tests.
LINT_PATHS := .
check: setup ## Lint, format check, type-check and the fast tests (no root, no network)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -m "not slow" -q $(PYTEST_ARGS)

fmt: setup ## Format the code and apply ruff's safe fixes
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)

# Debian packages the end-to-end tests use: a real browser for the UI, a real reverse proxy, and a container
# engine with what it needs to build a local base image (debootstrap) and publish ports (netavark, iptables),
# a real Prometheus server (with promtool) for the monitoring tests, hey for the reliability tests, and catatonit
# (the pause image `podman kube play` builds).
TEST_SYSTEM_PACKAGES := hey chromium fonts-dejavu-core nginx-light prometheus podman runc buildah debootstrap netavark aardvark-dns iptables catatonit

test: setup ## Lint, type-check and run every test, the slow end-to-end ones included
	scripts/system-deps.sh $(TEST_SYSTEM_PACKAGES)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
# actionlint checks .github/workflows and, with shellcheck, their run: scripts; it skips a missing shellcheck silently.
	$(VENV)/bin/shellcheck --version >/dev/null && $(VENV)/bin/actionlint -shellcheck $(VENV)/bin/shellcheck
	$(MAKE) --no-print-directory audit
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

audit: setup ## Check every locked dependency for known vulnerabilities (report in test-artifacts/)
	$(VENV)/bin/python scripts/audit_deps.py --report test-artifacts/dependency-audit.json

build: setup ## test -> train -> build -> export -> containerize -> smoke (scripts/build.sh; ARGS=--local-base ...)
	scripts/build.sh --notebook $(NOTEBOOK) $(ARGS)

bench: setup ## Benchmark the example bentos against Flask + pickle and a bare-starlette floor (~13 minutes)
	scripts/system-deps.sh hey
	$(VENV)/bin/python -m benchmarks

lock: | $(UV) ## Re-lock after editing pyproject.toml, and re-export the bento's requirements
	$(UV) lock --python $(PYTHON)
	$(UV) export --frozen --no-default-groups --no-hashes --no-emit-project -o requirements/serving.txt

clean: ## Remove build output (not the model store)
	rm -rf build dist test-artifacts .pytest_cache .mypy_cache .ruff_cache
