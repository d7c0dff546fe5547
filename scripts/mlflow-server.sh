#!/usr/bin/env bash
# The local MLflow tracking server: SQLite backend and proxied artifacts under STATE_DIR.
# Used by `make up` and by the integration tests, so both run the same server.
# usage: scripts/mlflow-server.sh PORT STATE_DIR
set -euo pipefail
port=$1
state=$(realpath -m "$2")
mkdir -p "$state/artifacts"
# One worker and no job runner: the defaults (4 workers + a huey job queue) cost
# ~10 processes and minutes of start-up on a 2-core machine, for features we do not use.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
exec "$(dirname "$0")/../.venv/bin/mlflow" server --host 127.0.0.1 --port "$port" --workers 1 \
  --backend-store-uri "sqlite:///$state/mlflow.db" \
  --artifacts-destination "$state/artifacts" --serve-artifacts
