#!/usr/bin/env bash
# The large-object figures of the data path: a release `cairn server` (defaults: 6 local
# datanodes, EC 4+2, fsync) in a fresh temp dir, then `cairn bench` PUT and GET of 64 MiB at
# 1 and 4 streams (and 4 KiB PUT/GET at 32 clients, unless SKIP_SMALL=1), each with the null-server baseline in the same run and the server's CPU,
# RUNS runs each (medians). JSON reports go to OUT (default: a temp dir, printed).
#
#   scripts/bench-large.sh                # build release, run everything
#   CAIRN=path/to/cairn scripts/bench-large.sh   # another server binary (bench from BENCH)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
SIZE=${SIZE:-64MiB}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
if [ -z "${CAIRN:-}" ]; then
  cargo build --release --bin cairn
  CAIRN=${CARGO_TARGET_DIR:-target}/release/cairn
fi
BENCH=${BENCH:-$CAIRN}
# shellcheck source=scripts/bench-server.sh
source scripts/bench-server.sh
run() {
  local name=$1; shift
  start_server
  "$BENCH" bench --endpoint "http://127.0.0.1:$PORT" --server-pid "$SERVER" \
    --access-key "$CAIRN_ROOT_ACCESS_KEY" --secret-key "$CAIRN_ROOT_SECRET_KEY" \
    --size "$SIZE" --duration "$DURATION" --warmup 2s --runs "$RUNS" --baseline-null \
    --json "$OUT/$name.json" "$@" | tee "$OUT/$name.txt"
}
run put-1 --op put --concurrency 1
run put-4 --op put --concurrency 4
run get-1 --op get --concurrency 1 --objects 8
run get-4 --op get --concurrency 4 --objects 16
if [ -z "${SKIP_SMALL:-}" ]; then
  SIZE=4KiB run small-put-32 --op put --concurrency 32
  SIZE=4KiB run small-get-32 --op get --concurrency 32 --objects 1000
fi
echo "reports in $OUT"
