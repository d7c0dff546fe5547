#!/usr/bin/env bash
# `make monitor`: a local Prometheus on 127.0.0.1 scraping the `make up` services with every rule
# of monitoring/rules loaded, and an Alertmanager routing their alerts as the cluster's does, to
# this terminal (monitoring/print_alerts.py): what would page, what would be posted, what is held
# back. In the foreground; Ctrl-C stops all three. Data under .mlp/prometheus.
# Beside a second `make up`, give it the same MLP_STATE and MLP_PORT_OFFSET (and other ports:
# PROMETHEUS_PORT, ALERTMANAGER_PORT, ALERT_PRINTER_PORT). PROMETHEUS_RETENTION overrides how long
# samples are kept (default: the longest rule window and a day).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PROMETHEUS_PORT:-9090}
ALERTMANAGER_PORT=${ALERTMANAGER_PORT:-9093}
PRINTER_PORT=${ALERT_PRINTER_PORT:-9095}
INTERVAL=${SCRAPE_INTERVAL:-5s}
STATE=${MLP_STATE:-.mlp}/prometheus
TOOLS=.tools/prometheus/bin
mkdir -p "$STATE/data" "$STATE/alertmanager"
.venv/bin/python monitoring/generate.py --scrape-interval "$INTERVAL" \
  --prometheus-config "$STATE/prometheus.yml" --alertmanager "127.0.0.1:$ALERTMANAGER_PORT" \
  --itself "127.0.0.1:$PORT" \
  --alertmanager-config "$STATE/alertmanager.yml" --printer-url "http://127.0.0.1:$PRINTER_PORT"
while IFS=$'\t' read -r svc port _; do
  curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null \
    || echo "note: $svc is not answering on 127.0.0.1:$port (run \`make up\` in another terminal)"
done < <(.venv/bin/mlp services)

# How long Prometheus keeps samples: the longest range any of the given rule files reads (the
# slow burn-rate alerts' 3 d), rounded up to days, and a day more, so a session left running keeps
# that window full: with less, LatencyBudgetBurnSlow would judge its 3 d budget on 2 days of samples.
retention() {
  .venv/bin/python - "$@" <<'PY'
import re
import sys
from pathlib import Path

SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
# Range selectors and subqueries ([3d], [1h:5m]) and offsets: all reach back in time.
READS = re.compile(r"\[(\d+)([smhdwy])(?::[^\]]*)?\]|offset\s+(\d+)([smhdwy])")
longest = 0
for path in sys.argv[1:]:
    for match in READS.finditer(Path(path).read_text()):
        number, unit = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
        longest = max(longest, int(number) * SECONDS[unit])
print(f"{-(-longest // 86400) + 1}d")
PY
}
RETENTION=${PROMETHEUS_RETENTION:-$(retention monitoring/rules/*.yaml)}

pids=()
prometheus_pid=
# Ends the given processes: SIGTERM, up to STOP_SECONDS for them to exit, then SIGKILL, naming
# any that needed it. A Ctrl-C must end the session whatever one of them is stuck on.
# shellcheck disable=SC2329  # called by stop
end() {
  local pid left
  kill "$@" 2>/dev/null || true
  for _ in $(seq 1 $(( ${STOP_SECONDS:-10} * 5 ))); do
    left=
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && left+=" $pid"; done
    [ -n "$left" ] || break
    sleep 0.2
  done
  for pid in $left; do
    echo "monitor: $(ps -o args= -p "$pid" | cut -c1-60) did not stop in ${STOP_SECONDS:-10} s; killed" >&2
    kill -KILL "$pid" 2>/dev/null || true
  done
}
# shellcheck disable=SC2329  # called by the EXIT trap
stop() {
  trap - EXIT INT TERM
  # Prometheus first, and alone: on its way out it sends the alerts it still holds to the
  # Alertmanager (--alertmanager.drain-notification-queue-on-shutdown, on by default), which must
  # still be listening then, not shutting down beside it.
  [ -z "$prometheus_pid" ] || end "$prometheus_pid"
  [ ${#pids[@]} -eq 0 ] || end "${pids[@]}"
  wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 0' INT TERM

.venv/bin/python monitoring/print_alerts.py --port "$PRINTER_PORT" &
pids+=($!)
"$TOOLS/alertmanager" --config.file="$STATE/alertmanager.yml" --storage.path="$STATE/alertmanager" \
  --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" --cluster.listen-address= --log.level=warn &
pids+=($!)
# Alerts are re-sent every 15 s, not every minute: the first evaluation can come before Prometheus
# has loaded its Alertmanager, and what it drops then would wait a minute to be sent again.
# Its external URL is where it listens: an alert's query link (printed under it) opens here.
"$TOOLS/prometheus" --config.file="$STATE/prometheus.yml" --web.listen-address="127.0.0.1:$PORT" \
  --web.external-url="http://127.0.0.1:$PORT" --storage.tsdb.path="$STATE/data" --storage.tsdb.retention.time="$RETENTION" --log.level=warn \
  --rules.alert.resend-delay=15s &
prometheus_pid=$!
pids+=($!)
echo "Prometheus:   http://127.0.0.1:$PORT  (scrapes every $INTERVAL, keeps $RETENTION; rules: monitoring/rules)"
echo "  try: service:requests:rate5m, service_endpoint:prediction_latency_seconds:p99_rate5m, ALERTS"
echo "Alertmanager: http://127.0.0.1:$ALERTMANAGER_PORT  (the cluster's routes; notifications print here)"
echo "Ctrl-C stops all three."
# Until one of them exits (a port taken, say): then the others are stopped too.
status=0
wait -n || status=$?
echo "monitor: a process exited (status $status); stopping the others" >&2
exit "$status"
