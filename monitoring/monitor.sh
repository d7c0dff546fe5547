#!/usr/bin/env bash
# `make monitor`: a local Prometheus on 127.0.0.1 scraping the `make up` services with every rule
# of monitoring/rules loaded, in the foreground (Ctrl-C stops it). Data under .mlp/prometheus.
# Beside a second `make up`, give it the same MLP_STATE and MLP_PORT_OFFSET (and a PROMETHEUS_PORT).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PROMETHEUS_PORT:-9090}
INTERVAL=${SCRAPE_INTERVAL:-5s}
STATE=${MLP_STATE:-.mlp}/prometheus
mkdir -p "$STATE/data"
.venv/bin/python monitoring/generate.py --prometheus-config "$STATE/prometheus.yml" --scrape-interval "$INTERVAL"
while IFS=$'\t' read -r svc port _; do
  curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null \
    || echo "note: $svc is not answering on 127.0.0.1:$port (run \`make up\` in another terminal)"
done < <(.venv/bin/mlp services)
echo "Prometheus: http://127.0.0.1:$PORT  (scrapes every $INTERVAL; rules: monitoring/rules; Ctrl-C stops)"
echo "  try: service:requests:rate5m, service_endpoint:prediction_latency_seconds:p99_rate5m, ALERTS"
exec .tools/prometheus/bin/prometheus --config.file="$STATE/prometheus.yml" --web.listen-address="127.0.0.1:$PORT" \
  --storage.tsdb.path="$STATE/data" --storage.tsdb.retention.time=2d --log.level=warn
