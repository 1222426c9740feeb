#!/usr/bin/env bash
# The three-node figure of the data path: three release `cairn server` processes on loopback
# (every role on each; two datanode directories each, so EC 4+2 puts two shards of every
# stripe on each node), then `cairn bench` PUT and GET of 64 MiB with 4 streams spread over
# the three gateways (worker i uses gateway i mod 3), the servers' CPU summed, RUNS runs
# each (medians), with the null-server baseline. The share of shard bytes that crossed
# nodes comes from each node's `cairn_shard_bytes_total{path="remote"}` against
# `{path="local"}`, read before and after each workload. JSON reports go to OUT.
#
#   scripts/bench-cluster.sh
#   CAIRN=path/to/cairn RUNS=3 DURATION=10s scripts/bench-cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
SIZE=${SIZE:-64MiB}
CONC=${CONC:-4}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
if [ -z "${CAIRN:-}" ]; then
  cargo build --release --bin cairn
  CAIRN=${CARGO_TARGET_DIR:-target}/release/cairn
fi
BENCH=${BENCH:-$CAIRN}
BASE=$((20000 + RANDOM % 20000))
export CAIRN_ROOT_ACCESS_KEY=BENCHROOTKEY00000001 CAIRN_ROOT_SECRET_KEY=bench-secret-key-00000000000000000000000
export CAIRN_CLUSTER_SECRET=bench-cluster-secret-0123456789abcdef0123
DATA=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$DATA"
}
trap cleanup EXIT

s3_port() { echo $((BASE + 10 * $1)); }
admin_port() { echo $((BASE + 10 * $1 + 1)); }
cluster_port() { echo $((BASE + 10 * $1 + 2)); }

start_node() {
  local n=$1
  local args=(server --node-id "$n" --data "$DATA/node$n"
    --data-dir "$DATA/node$n/disk0" --data-dir "$DATA/node$n/disk1"
    --listen "127.0.0.1:$(s3_port "$n")" --admin-listen "127.0.0.1:$(admin_port "$n")"
    --cluster-listen "127.0.0.1:$(cluster_port "$n")")
  if [ "$n" -gt 1 ]; then args+=(--join "127.0.0.1:$(cluster_port 1)"); fi
  "$CAIRN" "${args[@]}" >>"$OUT/node$n.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 150); do
    curl -s -o /dev/null "http://127.0.0.1:$(s3_port "$n")/" && return 0
    sleep 0.2
  done
  echo "node $n did not start (see $OUT/node$n.log)" >&2
  return 1
}

# Sum of cairn_shard_bytes_total over the nodes for op $1 and path $2.
shard_bytes() {
  local total=0 n v
  for n in 1 2 3; do
    v=$(curl -s "http://127.0.0.1:$(admin_port "$n")/metrics" |
      awk -v op="$1" -v path="$2" '$1 ~ /^cairn_shard_bytes_total\{/ && index($1, "op=\"" op "\"") && index($1, "path=\"" path "\"") { s += $2 } END { printf "%.0f", s }')
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

for n in 1 2 3; do start_node "$n"; done
# All six datanodes registered and seen by every gateway before measuring.
for _ in $(seq 150); do
  seen=$(curl -s -H "Authorization: Bearer $CAIRN_CLUSTER_SECRET" "http://127.0.0.1:$(admin_port 3)/admin/cluster" | grep -o '"addr"' | wc -l || true)
  [ "${seen:-0}" -ge 6 ] && break
  sleep 0.2
done
ENDPOINTS="http://127.0.0.1:$(s3_port 1),http://127.0.0.1:$(s3_port 2),http://127.0.0.1:$(s3_port 3)"
SERVER_PIDS=$(IFS=,; echo "${PIDS[*]}")

run() {
  local name=$1 op=$2; shift 2
  local lw rw lr rr
  lw=$(shard_bytes write local); rw=$(shard_bytes write remote)
  lr=$(shard_bytes read local); rr=$(shard_bytes read remote)
  "$BENCH" bench --endpoint "$ENDPOINTS" --server-pid "$SERVER_PIDS" \
    --access-key "$CAIRN_ROOT_ACCESS_KEY" --secret-key "$CAIRN_ROOT_SECRET_KEY" \
    --size "$SIZE" --duration "$DURATION" --warmup 2s --runs "$RUNS" --baseline-null \
    --op "$op" --concurrency "$CONC" --json "$OUT/$name.json" "$@" | tee "$OUT/$name.txt"
  lw=$(( $(shard_bytes write local) - lw )); rw=$(( $(shard_bytes write remote) - rw ))
  lr=$(( $(shard_bytes read local) - lr )); rr=$(( $(shard_bytes read remote) - rr ))
  awk -v lw="$lw" -v rw="$rw" -v lr="$lr" -v rr="$rr" -v name="$name" 'BEGIN {
    printf "%s: shard bytes written %.1f GiB (%.0f%% to other nodes), read %.1f GiB (%.0f%% from other nodes)\n",
      name, (lw + rw) / 2^30, (lw + rw) ? 100 * rw / (lw + rw) : 0,
      (lr + rr) / 2^30, (lr + rr) ? 100 * rr / (lr + rr) : 0 }' | tee -a "$OUT/traffic.txt"
}
run cluster-put-$CONC put
run cluster-get-$CONC get --objects 16
echo "reports in $OUT"
