#!/bin/sh
# Builds the release nsnet as a static, position-dependent executable (glibc linked in, no
# dynamic loader, no self-relocation) and prints its path. Every nsnet command is a new process:
# a dynamically linked nsnet spends ~0.4 ms of CPU per start in ld.so mapping libgcc_s, libm and
# libc and resolving their symbols (BENCHMARKS.md, "Speed, third round"), and a static PIE still
# applies ~8,300 relative relocations to itself at every start, writing (and so copying) every
# page of .data.rel.ro and the GOT; fixed addresses (`relocation-model=static`) need none
# (BENCHMARKS.md, "Speed, fifth round": ~0.3 ms of CPU and ~50 page faults per command).
# The flags need an explicit --target: without one, cargo would apply them to the proc-macro
# crates and build scripts too, which are loaded or run as dynamic, position-independent code. The output lands in
# target/<host triple>/release/ (under CARGO_TARGET_DIR when set), apart from
# `cargo build --release`'s, which stays dynamic.
# Name lookups (the etcd endpoints of overlay networks) use glibc's built-in files and dns
# sources; NSS modules loaded at run time (mdns, ldap, systemd's resolve) are not available.
set -eu
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" \
  cargo build --release -p nsnet --target "$host" "$@" >&2
echo "${CARGO_TARGET_DIR:-target}/$host/release/nsnet"
