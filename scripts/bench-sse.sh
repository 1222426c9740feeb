#!/usr/bin/env bash
# What encryption at rest (SSE-S3) costs on large objects: a release `cairn server` with
# `--default-encryption none` and one with the default (`sse-s3`), alternated ROUNDS times
# in this one run, each fresh, each measured with `cairn bench` (64 MiB PUT and GET, one
# stream and four). Prints the median MiB/s of each and encrypted / plain.
#
#   scripts/bench-sse.sh                       # build release, run
#   CAIRN=path/to/cairn ROUNDS=3 scripts/bench-sse.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
SIZE=${SIZE:-64MiB}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
if [ -z "${CAIRN:-}" ]; then
  cargo build --release --bin cairn
  CAIRN=${CARGO_TARGET_DIR:-target}/release/cairn
fi
# shellcheck source=scripts/bench-server.sh
source scripts/bench-server.sh
mib_per_s() {
  python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["target"]["median"]["mib_per_s"], 1))' "$1"
}
# The loop runs in a subshell (piped to tee), which stops its own last server.
{
for round in $(seq "$ROUNDS"); do
  for mode in none sse-s3; do
    for c in 1 4; do
      for op in put get; do
        start_server --default-encryption "$mode"
        label=${mode/sse-s3/sse}
        name="$op-$c-$label-$round"
        extra=()
        [ "$op" = get ] && extra=(--objects $((4 * c)))
        "$CAIRN" bench --endpoint "http://127.0.0.1:$PORT" --server-pid "$SERVER" \
          --access-key "$CAIRN_ROOT_ACCESS_KEY" --secret-key "$CAIRN_ROOT_SECRET_KEY" \
          --size "$SIZE" --duration "$DURATION" --warmup 2s --runs 1 --op "$op" --concurrency "$c" \
          "${extra[@]}" --json "$OUT/$name.json" >"$OUT/$name.txt"
        echo "$op c=$c $mode round $round: $(mib_per_s "$OUT/$name.json") MiB/s"
      done
    done
  done
done
stop_server
} | tee "$OUT/rounds.txt"
python3 - "$OUT" <<'PY'
import json, os, statistics, sys
out = sys.argv[1]
runs = {}
for f in os.listdir(out):
    if f.endswith(".json"):
        op, c, mode, _ = f[:-5].split("-")
        runs.setdefault((op, c, mode), []).append(json.load(open(os.path.join(out, f)))["target"]["median"]["mib_per_s"])
for op in ("put", "get"):
    for c in ("1", "4"):
        plain = statistics.median(runs[(op, c, "none")])
        enc = statistics.median(runs[(op, c, "sse")])
        print(f"{op} 64 MiB x{c}: plain {plain:.1f} MiB/s, SSE-S3 {enc:.1f} MiB/s, ratio {enc / plain:.2f}")
PY
echo "reports in $OUT"
