#!/bin/sh
# Every per-command and batch bench of issue 16 in one go, each in its own throwaway sandbox
# (network and mount namespaces, tmpfs /run/netns and /etc/netns), as root:
#   ./scripts/bench_round3.sh BASE_BINARY NEW_BINARY
# e.g. a release binary of an older commit against `./scripts/build-static.sh`'s. Prints each
# bench's medians and ratios (against BASE, and the floor: scripts/floor.py). Touches nothing
# outside the sandboxes.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 BASE_BINARY NEW_BINARY" >&2; exit 2; }
base=$(realpath "$1"); new=$(realpath "$2")
cd "$(dirname "$0")"
sandboxed() {
  unshare -n -m sh -c 'mkdir -p /run/netns /etc/netns && mount -t tmpfs none /run/netns &&
    mount -t tmpfs none /etc/netns && ip link set lo up && exec "$@"' sandbox "$@"
}
echo "### network connect --publish / disconnect"
sandboxed env ROUNDS=100 python3 bench_connect.py base="$base" new="$new" floor true=/bin/true
echo "### first and last container"
sandboxed env ROUNDS=30 python3 bench_first_last.py base="$base" new="$new" floor=floor
echo "### network create / rm (the last network)"
sandboxed env ROUNDS=30 python3 bench_create_rm.py base="$base" new="$new" floor=floor
echo "### CNI ADD / DEL against the CLI"
sandboxed env ROUNDS=60 python3 bench_cni.py base="$base" new="$new"
echo "### 1000 containers through the CLI"
sandboxed env N=1000 python3 bench_fill.py base="$base" new="$new" floor
echo "### 1000 containers through the CLI from two callers at once (and from one)"
sandboxed env N=1000 python3 bench_fill_parallel.py base="$base" new="$new" floor
echo "### topology file of 1000 namespaces"
sandboxed env N=1000 ROUNDS=1 python3 bench_topology.py base="$base" new="$new"
uptime
