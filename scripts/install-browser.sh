#!/usr/bin/env bash
# `make browser`: Chromium for tests/integration/test_docs_in_a_browser.py, which opens the API's
# documentation pages as a person would. A browser already on PATH (or named by CHROMIUM) is
# used as it is; otherwise Debian's or Ubuntu's `chromium` package through apt-get (about 15 s).
set -euo pipefail
if [ -n "${CHROMIUM:-}" ]; then
  [ -x "$CHROMIUM" ] && exit 0
  echo "install-browser: CHROMIUM=$CHROMIUM is not an executable" >&2
  exit 1
fi
for name in chromium chromium-browser google-chrome; do
  command -v "$name" >/dev/null 2>&1 && exit 0
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: no Chromium on PATH and no apt-get to install one: install Chromium," \
    "or set CHROMIUM to its path" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
install() {
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
}
echo "Installing Chromium (apt-get) for the documentation pages' browser test"
# The package lists of a fresh machine may be missing or stale: fetched only when needed.
install 2>/dev/null || { $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && install; }
command -v chromium >/dev/null 2>&1 || {
  echo "install-browser: apt-get installed no \`chromium\` command (on Ubuntu it is a snap):" \
    "set CHROMIUM to a Chromium or Chrome binary" >&2
  exit 1
}
