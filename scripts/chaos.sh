#!/usr/bin/env bash
# Runs a fault campaign against a five-node Cairn cluster, each node in its own network
# namespace (see docs/chaos.md), and prints, last:
#   chaos: R runs, F faults, O operations, A anomalies
#
#   scripts/chaos.sh [--minutes N] [--seed S] [--faults LIST] [--run-secs S] [--runs N] [--keep]
#
# Needs root and the Debian packages iproute2, iptables and faketime. Runs with anomalies
# keep their directory (history, schedule, nemesis log, every node's log) under
# $CHAOS_OUT (default target/chaos); re-run one with `--seed <its seed> --runs 1`.
# CHAOS_RELEASE=1 runs release builds (the long campaign); the default is the debug build
# the tests use.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "chaos: needs root (network namespaces, iptables)" >&2
  exit 2
fi
for tool in ip iptables tc; do
  command -v "$tool" >/dev/null || { echo "chaos: $tool is missing (apt-get install iproute2 iptables)" >&2; exit 2; }
done
if [ "${CHAOS_RELEASE:-0}" = 1 ]; then
  cargo build --release -p cairn -p cairn-chaos
  dir=release
else
  cargo build -p cairn -p cairn-chaos
  dir=debug
fi
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
out=${CHAOS_OUT:-$target/chaos}
mkdir -p "$out"
exec "$target/$dir/cairn-chaos" --bin "$target/$dir/cairn" --out "$out" "$@"
