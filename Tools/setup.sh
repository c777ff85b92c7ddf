#!/usr/bin/env bash
# Installs the system libraries the package links (pkg-config, zlib, HDF5, OpenBLAS) when any is missing.
# Does nothing when all are present. Needs root (or sudo) only when something must be installed.
set -euo pipefail
need=()
for pkg in pkg-config zlib1g-dev libhdf5-dev libopenblas-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing ${need[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
