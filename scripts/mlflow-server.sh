#!/usr/bin/env bash
# The local MLflow tracking server (SQLite backend, proxied artifacts under STATE_DIR), in the
# foreground. The command itself lives in servekit.local, shared with the tests and the benchmark.
# usage: scripts/mlflow-server.sh PORT STATE_DIR
set -euo pipefail
exec "$(dirname "$0")/../.venv/bin/python" -m servekit.local mlflow "$1" "$2"
