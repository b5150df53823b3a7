#!/usr/bin/env bash
# The benchmarks of BENCHMARKS.md: nsnet against the kernel floor (ip -batch + nft -f), netavark
# and the CNI reference plugins, in one run, inside a throwaway sandbox (as root). Installs what
# the peers need (only here: CI never runs timed benchmarks), builds in release mode, runs.
# Arguments go to nsnet-bench (e.g. --checkpoints 1,10,100 for a quicker run; `long-life` for only
# the 10,000 mixed operations of BENCHMARKS.md's "Flat cost over a long life"; --help).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh netavark
cargo build --release --quiet --bin nsnet --bin nsnet-bench
exec ./target/release/nsnet-bench --out target/bench.md "$@"
