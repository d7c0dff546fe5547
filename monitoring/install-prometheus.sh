#!/usr/bin/env bash
# Install Prometheus, promtool, Alertmanager and amtool from the distribution's `prometheus` and
# `prometheus-alertmanager` packages (Debian/Ubuntu), unless all are already on PATH. Nothing is left running: a temporary policy-rc.d stops the
# package from starting its service, and a systemd unit it may have enabled is stopped and disabled.
set -euo pipefail
have_alertmanager() { command -v alertmanager >/dev/null 2>&1 || command -v prometheus-alertmanager >/dev/null 2>&1; }
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 \
  && command -v amtool >/dev/null 2>&1 && have_alertmanager; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "prometheus/promtool/alertmanager/amtool missing and no apt-get: install Prometheus >= 2.37 and" \
    "Alertmanager >= 0.25 and put them on PATH" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
POLICY=/usr/sbin/policy-rc.d
created_policy=""
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# temporary: do not start services while installing prometheus\nexit 101\n' \
    | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  created_policy=1
fi
cleanup() { [ -z "$created_policy" ] || $SUDO rm -f "$POLICY"; }
trap cleanup EXIT
echo "installing prometheus (promtool) and prometheus-alertmanager (amtool) with apt-get"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  prometheus prometheus-alertmanager >/dev/null
# A systemd host may still have enabled (not started) the units: make sure they stay off.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now prometheus prometheus-alertmanager >/dev/null 2>&1 || true
fi
prometheus --version 2>&1 | head -1
promtool --version 2>&1 | head -1
amtool --version 2>&1 | head -1
