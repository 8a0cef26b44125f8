#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real (SLURM and munge; iproute2 and
# util-linux's nsenter/unshare for the namespaces of the two-node SLURM; shellcheck,
# headless Chromium and its driver; Podman with runc, iptables for the bridge network of its
# containers (netavark uses it; Podman only suggests it), and debootstrap for the stand-in base of
# the image tests), and a CJK font for the report's figures (fonts-wqy-microhei), only those
# missing. Needs root (CI runs as root).
set -euo pipefail

packages=(slurm-wlm munge iproute2 util-linux shellcheck chromium chromium-driver podman runc
  iptables debootstrap fonts-wqy-microhei)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps: missing Debian packages: ${missing[*]}; run as root: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
