#!/usr/bin/env bash
# The main job on the embedded default (the per-user file backend): two `locksmith run`
# commands contend for one key. They never overlap; the second reports who holds the lock
# while it waits, and gets a larger fencing token.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p locksmith-cli
bin=target/release/locksmith
job='echo "[$(date +%T)] $NAME holds $LOCKSMITH_KEY with fencing token $LOCKSMITH_FENCING_TOKEN"; sleep 2; echo "[$(date +%T)] $NAME done"'
NAME=first  "$bin" run --key demo -- sh -c "$job" &
sleep 0.2
NAME=second "$bin" run --key demo -- sh -c "$job"
wait
"$bin" status --key demo
