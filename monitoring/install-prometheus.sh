#!/usr/bin/env bash
# `make prometheus`: Prometheus, promtool, Alertmanager and amtool of the releases the cluster runs,
# under .tools/prometheus/bin (git-ignored), where the tests and `make monitor` look for them.
#
# The releases are read from the images in k8s/base: the rules, the promtool tests, the dashboards'
# queries and the Alertmanager configuration are checked by the engine that will run them.
# Prometheus 3 changed the meaning of a range (its start is left out) and Alertmanager 0.28 how a
# Slack answer is read: a test on an older release passes what the cluster then breaks.
#
# 1. The images' own releases from GitHub (prometheus/prometheus, prometheus/alertmanager), checked
#    against their sha256sums.txt; a checksum that does not match stops here.
# 2. Where GitHub cannot be reached (this project's build machine reaches only the package
#    registries), the newest Debian build of the same major.minor (a patch release fixes bugs; it
#    does not change what a query means) from Debian's later suites, as Debian stable ships older
#    ones: the package lists are read into a temporary directory, signed by the archive keys
#    stable trusts, and the .deb unpacked there. No apt source is added and nothing is started.
#    One thing goes system-wide: Debian builds Alertmanager to read its notification templates and
#    UI from /usr/share/prometheus/alertmanager (upstream embeds them), and without default.tmpl it
#    refuses every configuration; the package's copy goes there when it is missing (root, or sudo).
#
# PROMETHEUS_TOOLS_DIR, PROMETHEUS_RELEASES_URL and PROMETHEUS_TOOLS_SUITES change where the tools
# go, where releases are downloaded from (a mirror of github.com/prometheus) and the suites searched.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${PROMETHEUS_TOOLS_DIR:-.tools/prometheus/bin}
RELEASES=${PROMETHEUS_RELEASES_URL:-https://github.com/prometheus}
SUITES=${PROMETHEUS_TOOLS_SUITES:-trixie trixie-backports forky sid}

# The version of an image of a manifest: quay.io/prometheus/prometheus:v3.5.0 -> 3.5.0.
image_version() {
  sed -n "s|^ *image: quay.io/prometheus/$1:v\([0-9]*\.[0-9]*\.[0-9]*\)$|\1|p" "$2" | head -1
}
PROMETHEUS_VERSION=$(image_version prometheus k8s/base/prometheus/prometheus.yaml)
ALERTMANAGER_VERSION=$(image_version alertmanager k8s/base/alertmanager/alertmanager.yaml)
if [ -z "$PROMETHEUS_VERSION" ] || [ -z "$ALERTMANAGER_VERSION" ]; then
  echo "install-prometheus: cannot read the Prometheus and Alertmanager images' versions in k8s/base" >&2
  exit 1
fi
PROMETHEUS_MINOR=${PROMETHEUS_VERSION%.*}
ALERTMANAGER_MINOR=${ALERTMANAGER_VERSION%.*}

# "prometheus, version 3.5.3+ds1 (branch: ...)" -> 3.5
tool_minor() { "$1" --version 2>&1 | sed -n 's/^[a-z]*, version \([0-9]*\.[0-9]*\)\..*/\1/p' | head -1; }
DEBIAN_ALERTMANAGER_ASSETS=/usr/share/prometheus/alertmanager
# A Debian build ("version 0.28.1+ds") runs only with its assets in place.
alertmanager_runs() {
  ! "$1" --version 2>&1 | head -1 | grep -q '+ds' || [ -f "$DEBIAN_ALERTMANAGER_ASSETS/default.tmpl" ]
}
up_to_date() {
  alertmanager_runs "$DEST/alertmanager" || return 1
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
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

sha256() { if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1"; else shasum -a 256 "$1"; fi; }

# One project's release (name version tool...) into $WORK/bin: 1 when it cannot be downloaded.
from_releases() {
  local name=$1 version=$2 os arch file want got
  shift 2
  os=$(uname -s | tr '[:upper:]' '[:lower:]')
  case $(uname -m) in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) return 1 ;;
  esac
  file="$name-$version.$os-$arch.tar.gz"
  curl -fsSL --max-time 300 -o "$WORK/$file" "$RELEASES/$name/releases/download/v$version/$file" 2>/dev/null \
    && curl -fsSL --max-time 60 -o "$WORK/$name.sha256sums" \
      "$RELEASES/$name/releases/download/v$version/sha256sums.txt" 2>/dev/null || return 1
  want=$(awk -v f="$file" '$2 == f {print $1}' "$WORK/$name.sha256sums")
  got=$(sha256 "$WORK/$file" | awk '{print $1}')
  if [ -z "$want" ] || [ "$want" != "$got" ]; then
    echo "install-prometheus: $file from $RELEASES does not match its sha256sums.txt (${want:-no line}" \
      "against $got): refusing it" >&2
    exit 1
  fi
  tar -xzf "$WORK/$file" -C "$WORK"
  mkdir -p "$WORK/bin"
  for tool in "$@"; do
    cp "$WORK/$name-$version.$os-$arch/$tool" "$WORK/bin/$tool"
  done
  echo "  $name $version ($RELEASES)"
}

# The tools of the same major.minor from Debian's later suites into $WORK/bin.
from_debian() {
  local tool
  for tool in apt-get apt-cache dpkg-deb; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "install-prometheus: $RELEASES cannot be reached and there is no $tool. Put Prometheus" \
        "$PROMETHEUS_VERSION (prometheus, promtool) and Alertmanager $ALERTMANAGER_VERSION" \
        "(alertmanager, amtool) in $DEST" >&2
      exit 1
    fi
  done
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  if [ ! -f "$keyring" ]; then
    # Debian's archive keys, on an Ubuntu machine.
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      debian-archive-keyring >/dev/null
  fi
  mkdir -p "$WORK/parts" "$WORK/lists/partial" "$WORK/cache/archives/partial" "$WORK/debs" "$WORK/root"
  cat >"$WORK/parts/later.sources" <<EOF
Types: deb
URIs: ${DEBIAN_MIRROR:-http://deb.debian.org/debian}
Suites: $SUITES
Components: main
Signed-By: $keyring
EOF
  APT_OPTIONS=(
    -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$WORK/parts"
    -o "Dir::State::Lists=$WORK/lists" -o "Dir::Cache=$WORK/cache" -o Debug::NoLocking=1
    -o APT::Sandbox::User=root -o Acquire::Languages=none
  )
  echo "  $RELEASES cannot be reached: the same major.minor from Debian $SUITES"
  apt-get "${APT_OPTIONS[@]}" update -qq
  debian_package prometheus "$PROMETHEUS_MINOR"
  debian_package promtool "$PROMETHEUS_MINOR"
  debian_package prometheus-alertmanager "$ALERTMANAGER_MINOR"
  local deb
  for deb in "$WORK"/debs/*.deb; do
    dpkg-deb -x "$deb" "$WORK/root"
  done
  mkdir -p "$WORK/bin"
  cp "$WORK/root/usr/bin/prometheus" "$WORK/root/usr/bin/promtool" "$WORK/root/usr/bin/amtool" "$WORK/bin/"
  cp "$WORK/root/usr/bin/prometheus-alertmanager" "$WORK/bin/alertmanager"
  if [ ! -f "$DEBIAN_ALERTMANAGER_ASSETS/default.tmpl" ]; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo mkdir -p "$DEBIAN_ALERTMANAGER_ASSETS"
    $sudo cp -R "$WORK/root$DEBIAN_ALERTMANAGER_ASSETS/." "$DEBIAN_ALERTMANAGER_ASSETS/"
    echo "  its templates and UI in $DEBIAN_ALERTMANAGER_ASSETS, where the Debian build reads them"
  fi
}

# The newest Debian version of a package whose upstream release is major.minor.x, downloaded.
debian_package() {
  local version
  version=$(apt-cache "${APT_OPTIONS[@]}" madison "$1" | awk -F'|' '{gsub(/ /, "", $2); print $2}' \
    | grep -E "^([0-9]+:)?${2//./\\.}\.[0-9]+" | sort -V | tail -1)
  if [ -z "$version" ]; then
    echo "install-prometheus: no $1 $2.x in Debian $SUITES (what they have:" \
      "$(apt-cache "${APT_OPTIONS[@]}" madison "$1" | awk -F'|' '{printf "%s", $2}'))." \
      "Set PROMETHEUS_TOOLS_SUITES, or move the image in k8s/base to a release they have." >&2
    exit 1
  fi
  (cd "$WORK/debs" && apt-get "${APT_OPTIONS[@]}" download -qq "$1=$version" 2>/dev/null)
  echo "  $1 $version (Debian)"
}

echo "install-prometheus: Prometheus $PROMETHEUS_VERSION and Alertmanager $ALERTMANAGER_VERSION (the images in k8s/base)"
if ! { from_releases prometheus "$PROMETHEUS_VERSION" prometheus promtool \
  && from_releases alertmanager "$ALERTMANAGER_VERSION" alertmanager amtool; }; then
  rm -rf "${WORK:?}/bin"
  from_debian
fi
mkdir -p "$DEST"
for tool in prometheus promtool alertmanager amtool; do
  install -m 0755 "$WORK/bin/$tool" "$DEST/$tool"
  "$DEST/$tool" --version 2>&1 | head -1
done
up_to_date || { echo "install-prometheus: $DEST does not hold the wanted releases" >&2; exit 1; }
