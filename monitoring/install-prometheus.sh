#!/usr/bin/env bash
# `make prometheus`: Prometheus, promtool, Alertmanager and amtool of the releases the cluster runs,
# under .tools/prometheus/bin (git-ignored), where the tests and `make monitor` look first.
#
# The releases are read from the images in k8s/base: the rules, the promtool tests, the dashboards'
# queries and the Alertmanager configuration are checked by the engine that will run them. Each
# major.minor must match (a patch release fixes bugs; it does not change what a query means):
# Prometheus 3 changed the meaning of a range (its start is left out) and Alertmanager 0.28 how a
# Slack answer is read, and a test on an older release passes what the cluster then breaks.
#
# Debian (stable's) ships older releases, so the binaries come from Debian's later suites: the
# package lists are read into a temporary directory (signed by the archive keys stable already
# trusts), the .deb downloaded and unpacked there. Nothing is installed system-wide, no apt source
# is added, and nothing is started. Set PROMETHEUS_TOOLS_SUITES to search other suites.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.tools/prometheus/bin
SUITES=${PROMETHEUS_TOOLS_SUITES:-trixie trixie-backports forky sid}

# The major.minor of an image of a manifest: quay.io/prometheus/prometheus:v3.5.0 -> 3.5.
image_minor() {
  sed -n "s|^ *image: quay.io/prometheus/$1:v\([0-9]*\.[0-9]*\)\..*|\1|p" "$2" | head -1
}
PROMETHEUS_MINOR=$(image_minor prometheus k8s/base/prometheus/prometheus.yaml)
ALERTMANAGER_MINOR=$(image_minor alertmanager k8s/base/alertmanager/alertmanager.yaml)
if [ -z "$PROMETHEUS_MINOR" ] || [ -z "$ALERTMANAGER_MINOR" ]; then
  echo "install-prometheus: cannot read the Prometheus and Alertmanager images' versions in k8s/base" >&2
  exit 1
fi

# "prometheus, version 3.5.3+ds1 (branch: ...)" -> 3.5
tool_minor() { "$1" --version 2>&1 | sed -n 's/^[a-z]*, version \([0-9]*\.[0-9]*\)\..*/\1/p' | head -1; }
up_to_date() {
  for tool in prometheus promtool; do
    [ -x "$DEST/$tool" ] && [ "$(tool_minor "$DEST/$tool")" = "$PROMETHEUS_MINOR" ] || return 1
  done
  for tool in alertmanager amtool; do
    [ -x "$DEST/$tool" ] && [ "$(tool_minor "$DEST/$tool")" = "$ALERTMANAGER_MINOR" ] || return 1
  done
}
if up_to_date; then
  exit 0
fi
for tool in apt-get apt-cache dpkg-deb; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install-prometheus: no $tool here. Put Prometheus $PROMETHEUS_MINOR.x (prometheus, promtool) and" \
      "Alertmanager $ALERTMANAGER_MINOR.x (alertmanager, amtool) in $DEST" >&2
    exit 1
  fi
done

KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
if [ ! -f "$KEYRING" ]; then
  # Debian's archive keys, on an Ubuntu machine (a CI runner, say).
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debian-archive-keyring >/dev/null
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/parts" "$WORK/lists/partial" "$WORK/cache/archives/partial" "$WORK/debs" "$WORK/root"
cat >"$WORK/parts/later.sources" <<EOF
Types: deb
URIs: ${DEBIAN_MIRROR:-http://deb.debian.org/debian}
Suites: $SUITES
Components: main
Signed-By: $KEYRING
EOF
APT_OPTIONS=(
  -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$WORK/parts"
  -o "Dir::State::Lists=$WORK/lists" -o "Dir::Cache=$WORK/cache" -o Debug::NoLocking=1
  -o APT::Sandbox::User=root -o Acquire::Languages=none
)
echo "install-prometheus: Prometheus $PROMETHEUS_MINOR and Alertmanager $ALERTMANAGER_MINOR (the images in" \
  "k8s/base), from Debian $SUITES"
apt-get "${APT_OPTIONS[@]}" update -qq

# The newest version of a package whose upstream release is major.minor.x, in any of the suites.
newest() {
  apt-cache "${APT_OPTIONS[@]}" madison "$1" | awk -F'|' '{gsub(/ /, "", $2); print $2}' \
    | grep -E "^([0-9]+:)?${2//./\\.}\.[0-9]+" | sort -V | tail -1
}
download() {
  local version
  version=$(newest "$1" "$2")
  if [ -z "$version" ]; then
    echo "install-prometheus: no $1 $2.x in Debian $SUITES (what they have:" \
      "$(apt-cache "${APT_OPTIONS[@]}" madison "$1" | awk -F'|' '{printf "%s", $2}'))." \
      "Set PROMETHEUS_TOOLS_SUITES, or move the image in k8s/base to a release they have." >&2
    exit 1
  fi
  (cd "$WORK/debs" && apt-get "${APT_OPTIONS[@]}" download -qq "$1=$version" 2>/dev/null)
  echo "  $1 $version"
}
download prometheus "$PROMETHEUS_MINOR"
download promtool "$PROMETHEUS_MINOR"
download prometheus-alertmanager "$ALERTMANAGER_MINOR"
for deb in "$WORK"/debs/*.deb; do
  dpkg-deb -x "$deb" "$WORK/root"
done
mkdir -p "$DEST"
install -m 0755 "$WORK/root/usr/bin/prometheus" "$WORK/root/usr/bin/promtool" "$WORK/root/usr/bin/amtool" "$DEST/"
install -m 0755 "$WORK/root/usr/bin/prometheus-alertmanager" "$DEST/alertmanager"
for tool in prometheus promtool alertmanager amtool; do
  "$DEST/$tool" --version 2>&1 | head -1
done
up_to_date || { echo "install-prometheus: $DEST does not hold the wanted releases" >&2; exit 1; }
