#!/usr/bin/env bash
# Stop whatever `make up` left running, by the process groups it recorded: SIGTERM to every
# group at once, then SIGKILL to any group still there 10 s later, so this always ends.
# up.sh stops its own servers with this too (--quiet: no line per server).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
quiet=${1:-}
pid_files=("${MLP_STATE:-.mlp}"/pids/*.pid)
for file in "${pid_files[@]}"; do
  [ -e "$file" ] || continue
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    # up.sh records a server's pid as it starts it, and setsid makes the group in the child: a
    # server started an instant ago may have no group yet, and is then all there is to stop.
    if kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null; then
      [ "$quiet" != --quiet ] && echo "stopped $(basename "$file" .pid) (pid $pid)"
    fi
  fi
done
deadline=$((SECONDS + 10))
for file in "${pid_files[@]}"; do
  [ -e "$file" ] || continue
  pid=$(cat "$file")
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  kill -KILL -- "-$pid" 2>/dev/null  # also what outlived its group's leader
  rm -f "$file"
done
exit 0
