#!/usr/bin/env bash
# Start MLflow and every service on 127.0.0.1, training any model whose registry has no
# champion; Ctrl-C stops them all. Each server runs in its own process group (setsid) whose
# id is recorded in .mlp/pids, so stopping it stops its children too (`make down` uses them).
# To run beside another copy: MLP_STATE (default .mlp), MLFLOW_PORT (default 5000) and
# MLP_PORT_OFFSET (added to every service's port by `mlp services`/`mlp serve`; default 0;
# `make monitor` and `make loadtest` honour it too).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
STATE=${MLP_STATE:-.mlp}
PIDS=$STATE/pids
MLFLOW_PORT=${MLFLOW_PORT:-5000}
export MLFLOW_TRACKING_URI=http://127.0.0.1:$MLFLOW_PORT
mkdir -p "$STATE/artifacts" "$PIDS" "$STATE/logs"

started=()
stop_all() {
  # A second signal while stopping must not kill this script halfway and leave servers
  # running: make sends SIGTERM on to its children when it gets one, and users press
  # Ctrl-C twice. down.sh inherits the ignored signals, and ends within about 10 s.
  trap '' INT TERM HUP
  trap - EXIT
  echo
  echo "stopping: ${started[*]:-nothing}"
  scripts/down.sh --quiet
}
# Ctrl-C is how a user ends a session, so a clean stop after it is a success (no
# "make: *** Error 130"); so is SIGTERM (a supervisor, `timeout`) and SIGHUP (a closed
# terminal). A failure before it keeps its exit status through the EXIT trap.
trap 'stop_all; exit 0' INT TERM HUP
trap stop_all EXIT

# A pid file is written whole or not at all (renamed into place): `make down`, or a test,
# reading one as the shell wrote it found it empty and passed over a running server.
record_pid() {  # name pid
  echo "$2" >"$PIDS/$1.pid.new"
  mv -f "$PIDS/$1.pid.new" "$PIDS/$1.pid"
}

# Waits for url to answer. Gives up as soon as its server exits, whatever its status (a
# taken port, a crash; MLflow exits 0 when it cannot bind), or the optional background task
# fails (the service listing, with a bad MLP_PORT_OFFSET), rather than after the timeout.
wait_for() {  # url seconds server-name server-pid [task-name task-pid]
  local url=$1 seconds=$2 server=$3 pid=$4 task=${5:-} task_pid=${6:-} status
  for _ in $(seq 1 $(( seconds * 5 ))); do
    curl -fsS --max-time 2 -o /dev/null "$url" 2>/dev/null && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      status=0; wait "$pid" || status=$?
      echo "$server exited (status $status) before $url answered; the end of $STATE/logs/$server.log:" >&2
      tail -n 5 "$STATE/logs/$server.log" >&2
      return 1
    fi
    if [ -n "$task_pid" ] && ! kill -0 "$task_pid" 2>/dev/null; then
      status=0; wait "$task_pid" || status=$?
      if [ "$status" -ne 0 ]; then  # the task has printed why; say what it stopped
        echo "$task failed (status $status) before $url answered" >&2
        return 1
      fi
    fi
    sleep 0.2
  done
  echo "timed out waiting for $url" >&2
  return 1
}

scripts/down.sh --quiet
echo "starting MLflow on $MLFLOW_TRACKING_URI (store: $STATE/mlflow.db, artifacts: $STATE/artifacts)"
setsid scripts/mlflow-server.sh "$MLFLOW_PORT" "$STATE" >"$STATE/logs/mlflow.log" 2>&1 &
record_pid mlflow "$!"; started+=(mlflow)
# One `mlp` process for the listing (name, port with MLP_PORT_OFFSET, title) and one for
# training, as each start imports every service's model stack (about 9 s here); the listing
# runs while MLflow starts (about 25 s).
"$BIN/mlp" services >"$STATE/services.tsv" &
listing_pid=$!
wait_for "$MLFLOW_TRACKING_URI/health" 120 mlflow "$(<"$PIDS/mlflow.pid")" "the service listing" "$listing_pid"
wait "$listing_pid"
listing=$(<"$STATE/services.tsv")
services=$(cut -f1 <<<"$listing")
# Silent otherwise until mlp has imported every service's model stack (about 9 s).
echo "MLflow is up; checking each service for a champion, training those without one (the first run: under a minute)"
# shellcheck disable=SC2086 # one argument per service name
"$BIN/mlp" train $services --if-no-champion

declare -A ports
while IFS=$'\t' read -r svc port _; do ports[$svc]=$port; done <<<"$listing"
for svc in $services; do
  # Appended to, not truncated: the log holds the captured answers `mlp evaluate` and `mlp replay`
  # read, which a restart erased (4,912 of them, in a reviewer's run).
  setsid "$BIN/mlp" serve "$svc" --host 127.0.0.1 --port "${ports[$svc]}" >>"$STATE/logs/$svc.log" 2>&1 &
  record_pid "$svc" "$!"; started+=("$svc")
done
for svc in $services; do
  wait_for "http://127.0.0.1:${ports[$svc]}/readyz" 120 "$svc" "$(<"$PIDS/$svc.pid")"
done

echo
echo "MLflow UI:   $MLFLOW_TRACKING_URI"
for svc in $services; do
  url="http://127.0.0.1:${ports[$svc]}"
  printf '%-12s %s   docs: %s/docs   metrics: %s/metrics\n' "$svc" "$url" "$url" "$url"
done
echo "logs in $STATE/logs; Ctrl-C stops everything"
wait
