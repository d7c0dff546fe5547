# The README's two commands: `make up` (set up and run the platform) and `make test`.
# uv runs on this machine's Python 3.11 and never downloads an interpreter.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := python3
# Hard links from uv's cache: a fresh .venv in 1 s instead of 17 s of copying 1.3 GB (uv falls
# back to copying, with a warning, where the cache is on another filesystem).
export UV_LINK_MODE := hardlink
# Bytecode compiled once at install (35 to 45 s on 2 cores), as the image does: where
# PYTHONDONTWRITEBYTECODE is set (as on this machine) every process would otherwise
# recompile what it imports, and `import mlflow` takes 9 s instead of 3 in each server and CLI.
# A `make up` with every model trained serves in 33 s instead of 70. UV_COMPILE_BYTECODE=0 opts out.
export UV_COMPILE_BYTECODE ?= 1
# Our own modules are installed editable, so uv compiles none of them: with PYTHONDONTWRITEBYTECODE
# set, every server, CLI call and pytest worker compiled servekit again from source (0.5 s of each
# import of the service), and each worker rewrote every test module's asserts (a worker collected
# the suite in 26 CPU-seconds instead of 11). Empty, it is off: compiled once, to __pycache__
# (git-ignored), as Python does by default. The image compiles its own and sets it (Dockerfile).
export PYTHONDONTWRITEBYTECODE :=
UV := python3 -m uv
VENV := .venv
BIN := $(VENV)/bin

.PHONY: help uv sync up down test test-durations check lint typecheck unit bench bench-score cost cost-observed soak k8s-check deploy-roles prometheus browser test-tools monitor loadtest delivery-check

help:
	@echo "make up      install everything, train missing models, run MLflow + services"
	@echo "make test    the whole test suite (lint, types, unit, integration, schemathesis)"
	@echo "make test-durations  the pytest part of make test, recording each file's seconds (tests/durations.json)"
	@echo "make check   the static checks of make test alone: lint, typecheck, k8s-check, delivery-check"
	@echo "make down    stop what make up started"
	@echo "make bench   latency and throughput figures of every service (BENCH_ARGS: --services bankchurn --seconds 5)"
	@echo "make bench-score  mlp score's rows/s in one process and in worker processes (BENCH_SCORE_ARGS)"
	@echo "make cost    what each overlay costs a month, and a million predictions (CPU measured here: COST_CPU_ARGS; COST_ARGS)"
	@echo "make cost-observed PROMETHEUS=URL  the same, at the rates and CPU production's Prometheus saw (OBSERVED_ARGS)"
	@echo "make soak    every service's memory over minutes of mixed requests (SOAK_SECONDS, SOAK_WARMUP, SOAK_ARGS)"
	@echo "make k8s-check  render, validate and policy-check the GKE and EKS overlays"
	@echo "make deploy-roles  each overlay's deploy-role.yaml: what the Deploy workflow's identity may do in the cluster"
	@echo "make browser  Chromium (apt-get) for the test that opens /docs and /redoc; make test runs it"
	@echo "make monitor local Prometheus (rules) and Alertmanager (the cluster's routes) for the make-up services; alerts print here"
	@echo "make delivery-check  hadolint, actionlint, checkov on the Dockerfile and .github/workflows"
	@echo "make loadtest  Locust against the make-up services (LOAD_TIME, LOAD_USERS, LOAD_TAGS); reports/"

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
	$(BIN)/shellcheck $$(git ls-files '*.sh') .ci/run

typecheck: sync
	$(BIN)/mypy

unit: sync
	$(BIN)/pytest -m "not integration"

# The static checks are independent of each other, so they run side by side (mypy alone takes 40 s
# on a fresh clone); each one's output is printed whole when it ends.
check: lint typecheck k8s-check delivery-check

# pytest on three workers, a test file per worker at a time: most tests wait on a server or a
# subprocess, and one process left a core idle half the time. The first two run the files that
# start the session's servers (each its own MLflow server and trained models) and the busy ones;
# the third only files that mostly wait on servers of their own (Alertmanager's intervals, say).
# PYTEST_WORKERS=0 runs everything in one process. Files go out longest first, as
# tests/durations.json recorded them (tests/scheduling.py); `make test-durations` measures them
# again after a change to what a test file costs.
PYTEST_WORKERS ?= 3
PYTEST = $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder
# The checks run while Prometheus and Chromium install, which wait on the network, not the CPU.
test: sync
	$(MAKE) --no-print-directory -j3 --output-sync=target check test-tools
	$(PYTEST)

# One after the other: both go through apt-get, which holds one lock.
test-tools:
	@$(MAKE) --no-print-directory prometheus
	@$(MAKE) --no-print-directory browser

test-durations: sync prometheus browser
	$(PYTEST) --record-durations

# BENCH_ARGS go to python -m servekit.bench (--services bankchurn, --seconds 5, --no-reference).
bench: sync
	$(BIN)/python -m servekit.bench $(BENCH_ARGS)

bench-score: sync
	$(BIN)/python -m servekit.bench.batch_scoring $(BENCH_SCORE_ARGS)

# The CPU a prediction costs a replica, measured on served champions, then the overlays' requests
# priced with k8s/prices.yaml (README, Cost). COST_CPU_ARGS go to the measurement (--services
# bankchurn, --seconds 3, --repeats 1, --no-shadow), COST_ARGS to k8s/cost.py (--component NAME).
cost: sync
	$(BIN)/python -m servekit.bench.cpu --output reports/cpu.json $(COST_CPU_ARGS)
	$(BIN)/python k8s/cost.py --cpu reports/cpu.json $(COST_ARGS)

# The same bill from production: each service's rate, CPU and log bytes per prediction over the last
# day, read from the Prometheus that scrapes it (kubectl port-forward svc/prometheus 9090, say).
# OBSERVED_ARGS go to servekit.bench.observed (--window 7d, --match 'namespace="ml-platform"').
cost-observed: sync
	@test -n "$(PROMETHEUS)" || { echo "make cost-observed PROMETHEUS=http://127.0.0.1:9090"; exit 2; }
	$(BIN)/python -m servekit.bench.observed --prometheus $(PROMETHEUS) --output reports/observed.json $(OBSERVED_ARGS)
	$(BIN)/python k8s/cost.py --cpu reports/observed.json --load-observed $(COST_ARGS)

# SOAK_WARMUP: seconds before the measurement (default: a fifth of SOAK_SECONDS, at most 120).
SOAK_SECONDS ?= 600
soak: sync
	$(BIN)/python -m servekit.bench.soak --seconds $(SOAK_SECONDS) $(if $(SOAK_WARMUP),--warmup $(SOAK_WARMUP)) $(SOAK_ARGS)

# Prometheus, promtool, Alertmanager and amtool of the releases k8s/base runs, in .tools/prometheus/bin.
prometheus:
	@monitoring/install-prometheus.sh

browser:
	@scripts/install-browser.sh

monitor: sync prometheus
	monitoring/monitor.sh

LOAD_TIME ?= 60s
LOAD_USERS ?= 6
LOAD_TAGS ?=
LOAD_REPORTS ?= reports/loadtest
# The recipe reads these from its environment, quoted: make pasted them into the shell command as
# text, and the Load test workflow's `duration` input (LOAD_TIME) `5m; touch x` ran a second command.
export LOAD_TIME LOAD_USERS LOAD_TAGS LOAD_REPORTS
# Headless Locust against the `make up` services, sending data like each served model was trained on
# (LOADTEST_DATA). Fails when an endpoint got no request or more than 0.1 % errors, a p95 is over its
# threshold (LOADTEST_P95_MS), or more of a service's /predict requests than its latency SLO's budget
# are over the objective (LOADTEST_SLO=report only reports it; tests/load/locustfile.py).
# LOAD_USERS must be at least the number of services tested. The reports are named either way.
loadtest: sync
	mkdir -p -- "$$LOAD_REPORTS"
	read -ra tags <<<"$$LOAD_TAGS"; if [ "$${#tags[@]}" -gt 0 ]; then tags=(--tags "$${tags[@]}"); fi; \
	status=0; $(BIN)/locust -f tests/load/locustfile.py --headless --only-summary \
		--users "$$LOAD_USERS" --spawn-rate "$$LOAD_USERS" --run-time "$$LOAD_TIME" \
		--csv "$$LOAD_REPORTS/locust" --html "$$LOAD_REPORTS/locust.html" \
		--json-file "$$LOAD_REPORTS/locust" "$${tags[@]}" || status=$$?; \
		echo "reports: $$LOAD_REPORTS/"; exit $$status

# Kubernetes manifests: kubectl kustomize + kubernetes-validate come from the dev group (uv.lock);
# checkov gets its own virtualenv because its dependencies conflict with the project's.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .tools/checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov

$(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION): | uv
	rm -rf $(CHECKOV_VENV)
	$(UV) venv --quiet $(CHECKOV_VENV)
	$(UV) pip install --quiet --python $(CHECKOV_VENV)/bin/python checkov==$(CHECKOV_VERSION)
	touch $@

k8s-check: sync $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
	$(BIN)/python k8s/check.py --checkov $(CHECKOV)

# The deploy identity's roles, generated from each overlay (k8s/deploy_role.py); committed, and
# applied by a cluster administrator whenever they change (the overlay READMEs, Identities for CI).
deploy-roles: sync
	$(BIN)/python k8s/deploy_role.py

# Container image and CI/CD workflows: hadolint + actionlint (which shellchecks every run:
# block) from the dev group (uv.lock), checkov from its own virtualenv (above). Part of `make test`.
delivery-check: sync $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
	$(BIN)/hadolint --failure-threshold warning Dockerfile mlflow/Dockerfile
	$(BIN)/actionlint -shellcheck=$(BIN)/shellcheck
	$(CHECKOV) --framework dockerfile -f Dockerfile -f mlflow/Dockerfile --skip-download --quiet --compact
	$(CHECKOV) --framework github_actions -d .github/workflows --skip-download --quiet --compact
