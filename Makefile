# The README's two commands: `make up` (set up and run the platform) and `make test`.
# uv runs on this machine's Python 3.11 and never downloads an interpreter.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := python3
export UV_LINK_MODE := copy
UV := python3 -m uv
VENV := .venv
BIN := $(VENV)/bin

.PHONY: help uv sync up down test lint typecheck unit bench

help:
	@echo "make up      install everything, train missing models, run MLflow + services"
	@echo "make test    the whole test suite (lint, types, unit, integration, schemathesis)"
	@echo "make down    stop what make up started"
	@echo "make bench   latency and throughput figures of every service"

uv:
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check uv

sync: uv
	$(UV) sync --frozen --all-packages

up: sync
	scripts/up.sh

down:
	scripts/down.sh

lint: sync
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: sync
	$(BIN)/mypy

unit: sync
	$(BIN)/pytest -m "not integration"

test: sync lint typecheck
	$(BIN)/pytest

bench: sync
	$(BIN)/python -m servekit.bench
