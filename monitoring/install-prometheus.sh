#!/usr/bin/env bash
# Install Prometheus and promtool from the distribution's `prometheus` package (Debian/Ubuntu),
# unless both are already on PATH. Nothing is left running: a temporary policy-rc.d stops the
# package from starting its service, and a systemd unit it may have enabled is stopped and disabled.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "prometheus/promtool missing and no apt-get: install Prometheus >= 2.37 and put it on PATH" >&2
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
echo "installing prometheus (promtool) with apt-get"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# A systemd host may still have enabled (not started) the unit: make sure it stays off.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
prometheus --version 2>&1 | head -1
promtool --version 2>&1 | head -1
