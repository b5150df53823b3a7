#!/usr/bin/env bash
# The seed walkthrough, live, in a throwaway sandbox: installs what it needs, builds, runs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cargo build --release --quiet --bin nsnet
exec ./target/release/nsnet demo
