#!/bin/sh
# Builds the release nsnet as a static PIE (glibc linked in, no dynamic loader) and prints its
# path. Every nsnet command is a new process, and a dynamically linked nsnet spends ~0.4 ms of
# CPU per start in ld.so mapping libgcc_s, libm and libc and resolving their symbols (see
# BENCHMARKS.md, "Speed, third round"). The flag needs an explicit --target: without one, cargo
# would apply it to the proc-macro crates too, which cannot be static. The output lands in
# target/<host triple>/release/ (under CARGO_TARGET_DIR when set), apart from
# `cargo build --release`'s, which stays dynamic.
# Name lookups (the etcd endpoints of overlay networks) use glibc's built-in files and dns
# sources; NSS modules loaded at run time (mdns, ldap, systemd's resolve) are not available.
set -eu
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release -p nsnet --target "$host" "$@" >&2
echo "${CARGO_TARGET_DIR:-target}/$host/release/nsnet"
