# Sourced by the bench scripts: a fresh release `cairn server` per workload, in a temp dir,
# on PORT (S3), PORT+1 (admin), PORT+2 (cluster), its log appended to $OUT/server.log.
#   start_server [extra server flags...]   # stops the previous one first
#   stop_server                            # also run at exit
# Below Linux's ephemeral range (32768 and up), which the bench's own client connections use.
PORT=${PORT:-$((20000 + RANDOM % 12000))}
export CAIRN_ROOT_ACCESS_KEY=BENCHROOTKEY00000001 CAIRN_ROOT_SECRET_KEY=bench-secret-key-00000000000000000000000
SERVER=
DATA=
stop_server() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  if [ -n "$DATA" ]; then rm -rf "$DATA"; fi
  SERVER=
  DATA=
}
trap stop_server EXIT
# Each workload gets a fresh server: no background work (GC, RocksDB compaction, dirty
# pages) left by the one before is charged to it.
start_server() {
  stop_server
  DATA=$(mktemp -d)
  "$CAIRN" server --data "$DATA" --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$((PORT + 1))" \
    --cluster-listen "127.0.0.1:$((PORT + 2))" "$@" >>"$OUT/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" && return 0
    sleep 0.2
  done
  echo "the server did not start" >&2
  return 1
}
