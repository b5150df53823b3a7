#!/usr/bin/env bash
# Installs the system packages nsnet's demo and tests use (Debian/Ubuntu, as root), plus any
# package names given as arguments (the benchmark adds its peers).
# iproute2: `ip` in tests; iputils-ping: traffic proofs; util-linux: unshare/nsenter for
# test sandboxes; nftables: the firewall backend; gcc: builds the bundled SQLite;
# containernetworking-plugins: the reference CNI plugins (portmap, bridge, host-local) that the
# CNI tests chain with and compare against; procps: `ps` inside containers in tests;
# busybox-static: the --rootfs test builds a root from it, and the engine tests their images;
# podman, conmon, catatonit, runc: podman 4 with its CNI backend driving nsnet (tests/podman.rs);
# containerd (ctr, shim): `ctr run --cni` driving nsnet (tests/containerd.rs). Both engines run
# only inside the tests' sandboxes, with private roots and configuration. Listing
# containernetworking-plugins satisfies podman's network stack, so Debian's netavark (1.4, no
# plugins) and aardvark-dns are not installed; no service is started (see below).
# graphviz: `dot` renders `nsnet graph --svg`, and tests/graph.rs reads the rendered picture back.
# python3-grpcio, python3-protobuf, protobuf-compiler: tests/cri.rs's CRI client (kubelet's calls to
# containerd's CRI; protoc compiles tests/cri/cri.proto; it also builds netavark 2.x, below);
# iptables: the reference portmap plugin that test compares nsnet with.
# groff-base: tests/ux.rs renders every page of `nsnet man` with groff; bsdutils: `script`, the
# pty under which tests/ux.rs watches progress drawn on a terminal.
# curl: the guides in docs/ fetch published ports with it, and tests/docs.rs runs them.
# openvswitch-switch: ovsdb-server and ovs-vswitchd for `--driver ovs` networks; nsnet starts
# the daemons itself (the tests inside their sandboxes), policy-rc.d keeps the service off.
# etcd-server: the membership store of vxlan overlays (tests/overlay.rs starts one inside its
# sandbox, on the underlay, with a temporary data directory; its service stays stopped).
# dnsmasq-base: a host resolver bound to the wildcard address (tests/dns.rs runs one inside its
# sandbox; the package has no service).
set -euo pipefail
pkgs=(iproute2 iputils-ping util-linux nftables gcc containernetworking-plugins procps busybox-static
  podman conmon catatonit runc containerd graphviz python3-grpcio python3-protobuf protobuf-compiler
  iptables groff-base bsdutils curl openvswitch-switch etcd-server dnsmasq-base "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # containerd's and podman's maintainer scripts would start their services where an init
  # system runs: policy-rc.d's 101 ("not allowed") keeps them stopped during the install.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# netavark >= 1.6 runs network plugins (podman 5's path to nsnet, tests/netavark.rs); Debian
# bookworm has 1.4, so it is built from crates.io into /usr/local (a few minutes on 2 CPUs),
# once: skipped when that version is there already. Its build directory is thrown away.
NETAVARK_VERSION=2.1.0
if ! /usr/local/bin/netavark version 2>/dev/null | grep -q "\"version\": \"$NETAVARK_VERSION\""; then
  echo "building netavark $NETAVARK_VERSION"
  build=$(mktemp -d)
  CARGO_TARGET_DIR="$build" cargo install netavark --version "$NETAVARK_VERSION" --locked \
    --root /usr/local --quiet
  rm -rf "$build"
fi
