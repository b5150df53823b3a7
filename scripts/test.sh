#!/usr/bin/env bash
# Every test: formatting, lints, unit tests (no root), backend and end-to-end tests (root,
# each in its own throwaway sandbox). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
# A root test that cannot run (no root) fails instead of skipping (nsnet_sys::testkit).
export CI="${CI:-1}"
./scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace 2>&1 | tee target/test.log
# One closing line for CI: totals over every test binary.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed, %d skipped\n", p, f, i }' target/test.log
