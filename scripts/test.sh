#!/usr/bin/env bash
# Runs Cairn's test suite: unit tests, end-to-end tests with aws-sdk-s3 against real
# `cairn server` processes, and the aws-cli and boto3 walks (tools from a local virtualenv).
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CAIRN_VENV:-$PWD/.venv}
if ! "$VENV/bin/python3" -c 'import boto3, playwright' 2>/dev/null || [ ! -x "$VENV/bin/aws" ]; then
  echo "== preparing $VENV with awscli, boto3 and playwright"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check awscli boto3 playwright
fi
export CAIRN_VENV=$VENV
cargo build -p cairn
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6; s += $8 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
# The fault campaign's short profile (docs/chaos.md): needs root, iproute2, iptables and
# faketime; CAIRN_REQUIRE_CHAOS=1 (set by CI) makes their absence a failure, not a skip.
if [ "$(id -u)" = 0 ] && command -v iptables >/dev/null && command -v faketime >/dev/null; then
  echo "== fault campaign, short profile"
  if ! bash scripts/chaos.sh --minutes "${CAIRN_CHAOS_MINUTES:-3}" --run-secs 45 --seed "${CAIRN_CHAOS_SEED:-1}"; then
    status=1
  fi
elif [ "${CAIRN_REQUIRE_CHAOS:-0}" = 1 ]; then
  echo "chaos: the fault campaign needs root, iproute2, iptables and faketime" >&2
  status=1
else
  echo "WARNING: fault campaign SKIPPED (needs root, iproute2, iptables and faketime)" >&2
fi
exit "$status"
