#!/usr/bin/env bash
# Runs the ceph s3-tests conformance suite against a fresh `cairn server` and prints the
# per-feature-area pass counts. Not part of CI (the suite is not vendored and takes a while).
#
# Needs: the suite checked out and its virtualenv made as the shared s3tests tool's README
# says (default location: ${XDG_CACHE_HOME:-$HOME/.cache}/s3-tests/{src,venv}), and the
# runner itself: S3TESTS_TOOL (default: ../shared/tools/s3tests next to this repository).
# Extra arguments go to the runner (and on to pytest); PROFILE, KEXPR, JOBS… as it documents.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOL=${S3TESTS_TOOL:-$ROOT/../shared/tools/s3tests}
[ -x "$TOOL/run.sh" ] || { echo "no s3tests runner at $TOOL (set S3TESTS_TOOL)" >&2; exit 2; }

# CAIRN_BIN skips the build (a `-p cairn` build unifies features unlike a workspace build,
# so the two alternating rebuild dependencies each time).
[ -n "${CAIRN_BIN:-}" ] || cargo build -p cairn
BIN=${CAIRN_BIN:-$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/cairn}
DATA=$(mktemp -d)
OUT_DIR=${OUT_DIR:-$ROOT/s3tests-results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT_DIR"
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$DATA"' EXIT

export CAIRN_ROOT_ACCESS_KEY=S3TESTSMAINKEY000001 CAIRN_ROOT_SECRET_KEY=s3tests-main-secret-000000000000000000000
"$BIN" server --data "$DATA" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --compaction-interval 5 --allow-insecure-sse-c >"$OUT_DIR/cairn.stdout" 2>"$OUT_DIR/cairn.log" &
PID=$!
for _ in $(seq 100); do
  grep -q '^Admin API listening' "$OUT_DIR/cairn.stdout" 2>/dev/null && break
  sleep 0.2
done
S3_ADDR=$(sed -n 's|^S3 API listening on http://||p' "$OUT_DIR/cairn.stdout")
ADMIN_ADDR=$(sed -n 's|^Admin API listening on http://||p' "$OUT_DIR/cairn.stdout")
[ -n "$S3_ADDR" ] && [ -n "$ADMIN_ADDR" ] || { echo "cairn did not start" >&2; cat "$OUT_DIR/cairn.log" >&2; exit 2; }

key() { "$BIN" key --admin "$ADMIN_ADDR" --data "$DATA" "$@"; }
key create alt --access-key S3TESTSALTKEY0000001 --secret-key s3tests-alt-secret-0000000000000000000000 >/dev/null
key create tenant --access-key S3TESTSTENANTKEY0001 --secret-key s3tests-tenant-secret-00000000000000000000 >/dev/null
# Canonical user ids as Cairn reports them in ACLs and Owner elements (display name = key name).
id_of() { key list | awk -F'\t' -v k="$1" '$1 == k { print $2 }'; }
MAIN_ID=$(id_of "$CAIRN_ROOT_ACCESS_KEY")
ALT_ID=$(id_of S3TESTSALTKEY0000001)
# The KMS keys the suite's config names (kms_keyid, kms_keyid2), made in the built-in KMS.
for k in "${KMS_KEYID:-testkey-1}" "${KMS_KEYID2:-testkey-2}"; do
  "$BIN" admin --admin "$ADMIN_ADDR" --data "$DATA" kms-key "$k" >/dev/null
done

ENDPOINT=$S3_ADDR OUT_DIR=$OUT_DIR \
ACCESS_KEY=$CAIRN_ROOT_ACCESS_KEY SECRET_KEY=$CAIRN_ROOT_SECRET_KEY \
ALT_ACCESS_KEY=S3TESTSALTKEY0000001 ALT_SECRET_KEY=s3tests-alt-secret-0000000000000000000000 \
TENANT_ACCESS_KEY=S3TESTSTENANTKEY0001 TENANT_SECRET_KEY=s3tests-tenant-secret-00000000000000000000 \
MAIN_USER_ID=$MAIN_ID MAIN_DISPLAY_NAME=root \
ALT_USER_ID=$ALT_ID ALT_DISPLAY_NAME=alt \
  "$TOOL/run.sh" "$@"
echo "results in $OUT_DIR (area_report.csv per feature area)"
column -s, -t "$OUT_DIR/area_report.csv" 2>/dev/null || cat "$OUT_DIR/area_report.csv"
