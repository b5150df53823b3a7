#!/usr/bin/env bash
# Installs the system packages nsnet's demo and tests use (Debian/Ubuntu, as root), plus any
# package names given as arguments (the benchmark adds its peers).
# iproute2: `ip` in tests; iputils-ping: traffic proofs; util-linux: unshare/nsenter for
# test sandboxes; nftables: the firewall backend; gcc: builds the bundled SQLite;
# containernetworking-plugins: the reference CNI plugins (portmap, bridge, host-local) that the
# CNI tests chain with and compare against; procps: `ps` inside containers in tests;
# busybox-static: the --rootfs test builds a root from it (skipped without it).
set -euo pipefail
pkgs=(iproute2 iputils-ping util-linux nftables gcc containernetworking-plugins procps busybox-static "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
