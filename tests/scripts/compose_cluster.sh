#!/usr/bin/env bash
# The compose cluster (docker/compose.yml) under an aws-cli workload: start three nodes,
# write through all three gateways, stop one container and keep reading and writing, start it
# again and read everything back through it. Prints ALL OK at the end.
#
# Needs: COMPOSE (the compose command, e.g. "docker compose" or "docker-compose"), PROJECT,
# CAIRN_IMAGE, CAIRN1_S3_PORT, CAIRN2_S3_PORT, CAIRN3_S3_PORT (and the admin ports),
# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY equal to CAIRN_ROOT_ACCESS_KEY / _SECRET_KEY.
set -euo pipefail
cd "$(dirname "$0")/../.."
dc() { $COMPOSE -f docker/compose.yml -p "$PROJECT" "$@"; }
s3() { local port=$1; shift; aws --endpoint-url "http://127.0.0.1:$port" s3 "$@"; }
wait_s3() {
  for _ in $(seq 120); do
    if s3 "$1" ls >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "gateway on port $1 never answered" >&2
  dc logs --tail 50 >&2 || true
  return 1
}
count() { s3 "$1" ls "s3://dock/" | wc -l; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c 3000 /dev/urandom > "$work/small"
head -c $((6 << 20)) /dev/urandom > "$work/big"

dc up -d
for p in "$CAIRN1_S3_PORT" "$CAIRN2_S3_PORT" "$CAIRN3_S3_PORT"; do wait_s3 "$p"; done
echo "== three gateways answer"

s3 "$CAIRN1_S3_PORT" mb s3://dock
ports=("$CAIRN1_S3_PORT" "$CAIRN2_S3_PORT" "$CAIRN3_S3_PORT")
# Striped writes need six datanodes up; wait until every node's three have registered.
for _ in $(seq 60); do
  if s3 "$CAIRN3_S3_PORT" cp "$work/big" s3://dock/big >/dev/null 2>&1; then break; fi
  sleep 1
done
for i in $(seq 0 8); do
  s3 "${ports[$((i % 3))]}" cp "$work/small" "s3://dock/small$i" >/dev/null
done
[ "$(count "$CAIRN2_S3_PORT")" -eq 10 ] || { echo "listing on node 2 is not 10 objects" >&2; exit 1; }
s3 "$CAIRN1_S3_PORT" cp s3://dock/big "$work/got" >/dev/null
cmp "$work/big" "$work/got"
echo "== written through all gateways, listed and read through others"

dc stop cairn3
echo "== cairn3 stopped"
s3 "$CAIRN1_S3_PORT" cp "$work/big" s3://dock/while-down >/dev/null
s3 "$CAIRN2_S3_PORT" cp "$work/small" s3://dock/small-while-down >/dev/null
s3 "$CAIRN2_S3_PORT" cp s3://dock/big "$work/got" >/dev/null
cmp "$work/big" "$work/got"
s3 "$CAIRN1_S3_PORT" cp s3://dock/while-down "$work/got" >/dev/null
cmp "$work/big" "$work/got"
[ "$(count "$CAIRN1_S3_PORT")" -eq 12 ]
echo "== reads and writes go on with one node down"

dc start cairn3
wait_s3 "$CAIRN3_S3_PORT"
s3 "$CAIRN3_S3_PORT" cp s3://dock/while-down "$work/got" >/dev/null
cmp "$work/big" "$work/got"
s3 "$CAIRN3_S3_PORT" cp s3://dock/small-while-down "$work/got" >/dev/null
cmp "$work/small" "$work/got"
[ "$(count "$CAIRN3_S3_PORT")" -eq 12 ]
s3 "$CAIRN3_S3_PORT" cp "$work/small" s3://dock/after-return >/dev/null
[ "$(count "$CAIRN1_S3_PORT")" -eq 13 ]
echo "== cairn3 is back and caught up"
echo "ALL OK"
