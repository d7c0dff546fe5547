#!/usr/bin/env bash
# Stop whatever `make up` left running, by the process groups it recorded.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
quiet=${1:-}
for file in "${MLP_STATE:-.mlp}"/pids/*.pid; do
  [ -e "$file" ] || continue
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -- "-$pid" && [ "$quiet" != --quiet ] && echo "stopped $(basename "$file" .pid) (pid $pid)"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$file"
done
exit 0
