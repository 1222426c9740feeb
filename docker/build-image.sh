#!/usr/bin/env bash
# Builds the `cairn` Docker image without any registry: the base image is made here from the
# shared libraries the binary links (what `ldd` lists) with `docker import`, then
# docker/Dockerfile is built on it with networking off.
#
#   docker/build-image.sh                 # release binary, image cairn:local
#   CAIRN_BIN=target/debug/cairn IMAGE=cairn:test docker/build-image.sh
#
# To build on a public base instead (where a registry is reachable):
#   docker build -f docker/Dockerfile --build-arg BASE=debian:bookworm-slim -t cairn <dir with the binary>
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-cairn:local}
BASE=${BASE_IMAGE:-cairn-base:local}
if [ -z "${CAIRN_BIN:-}" ]; then
  cargo build --release -p cairn
  TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  CAIRN_BIN=$TARGET/release/cairn
fi
[ -x "$CAIRN_BIN" ] || { echo "no cairn binary at $CAIRN_BIN" >&2; exit 2; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

# The base: the dynamic loader and every library the binary needs, plus /tmp and a data dir.
root=$ctx/rootfs
mkdir -p "$root/tmp" "$root/data" "$root/etc"
chmod 1777 "$root/tmp"
for lib in $(ldd "$CAIRN_BIN" | grep -o '/[^ ]*' | sort -u); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
echo 'root:x:0:0:root:/:/usr/local/bin/cairn' > "$root/etc/passwd"
tar -C "$root" -c . | docker import - "$BASE" >/dev/null

mkdir -p "$ctx/context"
cp "$CAIRN_BIN" "$ctx/context/cairn"
docker build --quiet --network none --build-arg "BASE=$BASE" -f docker/Dockerfile -t "$IMAGE" "$ctx/context" >/dev/null
echo "built $IMAGE on $BASE"
