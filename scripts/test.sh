#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine with the Rust toolchain:
#   scripts/test.sh
# It installs what the tests need (Debian packages via apt-get, when missing), checks
# formatting, lints and docs, builds the `locksmith` binary the process-level tests drive,
# then runs every test (nextest, one process per test), the doc tests, and a short torture.
# Backends that need servers get private ones on free loopback ports from the test tooling;
# a missing server fails the run, it is never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

# The build trees of this run (lint, docs, debug, tests) take a few GiB; say so up front when
# the disk is short, since a full disk shows up later as an obscure compiler I/O error.
free_kib="$(df -Pk . | awk 'NR==2 {print $4}')"
if [ "${free_kib:-0}" -lt $((6 * 1024 * 1024)) ]; then
  echo "warning: only $((free_kib / 1024)) MiB free on $(df -P . | awk 'NR==2 {print $6}'); this run needs about 6 GiB" >&2
fi
export CARGO_INCREMENTAL=0   # one build per run: incremental caches only cost disk here

# Debian packages the tests need. The file and memory backends need none beyond a shell and
# `flock` (util-linux, used by the interoperation test); the Redis backends need redis-server
# (and openssl for the TLS test); PostgreSQL and MariaDB run as private test servers
# (postgresql, mariadb-server) and their clients drive the interop tests; etcd needs the server
# and `etcdctl` (interop tests), and `protoc` to build the etcd-client crate; zookeeper runs
# from its jars with a private zoo.cfg; the Curator interop test runs a Java source file against
# the packaged Curator (default-jdk-headless for the source launcher, libcurator-recipes-java).
PACKAGES=(util-linux redis-server redis-tools openssl postgresql mariadb-server mariadb-client protobuf-compiler etcd-server etcd-client zookeeper default-jdk-headless libcurator-recipes-java)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

log "format";  cargo fmt --all --check
log "lint";    cargo clippy --workspace --all-targets --locked -- -D warnings   # also type-checks the benchmarks
log "docs";    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
log "build";   cargo build --workspace --bins --locked
export LOCKSMITH_BIN="$PWD/target/debug/locksmith"
log "tests";   cargo nextest run --workspace --locked --no-fail-fast
log "conformance on 3-member clusters (etcd, zookeeper)"
LOCKSMITH_ETCD_MEMBERS=3 cargo nextest run -p locksmith-etcd --test conformance --locked --no-fail-fast
LOCKSMITH_ZK_MEMBERS=3 cargo nextest run -p locksmith-zookeeper --test conformance --locked --no-fail-fast
log "doc tests"; cargo test --workspace --doc --locked
# A short torture of every landed cross-process backend: client processes, SIGSTOPped and
# SIGKILLed holders, and the history checker; any violation fails the run (exit 1).
log "torture (file://, 20 s, pause and kill)"
torture_dir="$(mktemp -d)"
"$LOCKSMITH_BIN" torture --url "file://$torture_dir/locks" --duration 20s --faults pause,kill \
  --out "$torture_dir/out" || { echo "torture failed; report above, histories kept in $torture_dir/out" >&2; exit 1; }
rm -rf "$torture_dir"
# Every landed networked backend, on private servers the run starts itself, with a fault proxy
# in front of each server (partition, latency, cut, reset), pause and kill of holders, and a
# restart of the servers over their data (sessions end, fencing counters survive). Redlock's
# network faults and restarts hit a minority (2 of 5 nodes), then a majority; its
# expected-unsafe scenario restarts a majority of nodes without persistence while a lock is
# held, and passes only if the checker catches the overlap. Every backend gets every fault.
torture() {
  local name="$1"; shift
  log "torture ($name)"
  local out; out="$(mktemp -d)"
  "$LOCKSMITH_BIN" torture --ttl 1s --out "$out" "$@" 2>"$out/stderr.log" \
    || { cat "$out/report.md" >&2 || true; echo "torture ($name) failed; histories kept in $out" >&2; exit 1; }
  sed -n '3,/^$/p' "$out/report.md" >&2
  rm -rf "$out"
}
ALL_FAULTS=pause,kill,partition,latency,cut,reset,restart
torture "redis, all faults" --servers redis --duration 25s --faults "$ALL_FAULTS"
torture "redis fair mode (hand-over in the server), all faults" --servers redis-fair --duration 25s --faults "$ALL_FAULTS"
torture "redis, expected-unsafe pause-past-ttl" --servers redis --duration 15s --keys 1 --pause-past-ttl
torture "redlock, pause, kill, minority and majority restarts" --servers redlock --duration 20s --faults pause,kill,restart
torture "redlock, network faults on a minority and a majority" --servers redlock --duration 20s --faults partition,latency,cut,reset
torture "redlock, expected-unsafe restart-empty" --servers redlock --duration 15s --keys 1 --redlock-restart-empty
torture "postgres, all faults" --servers postgres --duration 20s --faults "$ALL_FAULTS"
torture "mysql, all faults" --servers mysql --duration 20s --faults "$ALL_FAULTS"
torture "etcd, all faults" --servers etcd --duration 20s --faults "$ALL_FAULTS"
torture "zookeeper, all faults" --servers zookeeper --duration 20s --faults "$ALL_FAULTS"
log "all tests passed"
