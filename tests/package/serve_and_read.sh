#!/usr/bin/env bash
# Inside ci/run-in-namespace.sh (package_test.sh): starts /usr/bin/ganesha.nfsd
# with WORK/ganesha.conf, reads /pkg/payload through NFSv3 and NFSv4 with
# nfs-cat and compares it with WORK/payload, stops the server.
set -euo pipefail
WORK=$1
/usr/bin/ganesha.nfsd -F -f "$WORK/ganesha.conf" -L "$WORK/ganesha.log" -p /run/ganesha.pid &
server=$!
stop() { kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true; }
trap stop EXIT
# Ready when a read succeeds (mount and read retried while it starts).
read_file() {
  local version=$1
  for _ in $(seq 300); do
    if ! kill -0 "$server" 2>/dev/null; then
      cat "$WORK/ganesha.log" >&2
      echo "serve_and_read: ganesha.nfsd exited" >&2
      return 1
    fi
    nfs-cat "nfs://127.0.0.1/kvfs/pkg/payload?version=$version" >"$WORK/read.$version" 2>"$WORK/nfs-cat.err" &&
      return 0
    sleep 0.2
  done
  cat "$WORK/nfs-cat.err" "$WORK/ganesha.log" >&2
  echo "serve_and_read: no NFSv$version read within 60 s" >&2
  return 1
}
for version in 3 4; do
  read_file "$version"
  cmp "$WORK/payload" "$WORK/read.$version"
  echo "read /pkg/payload over NFSv$version: $(stat -c %s "$WORK/read.$version") bytes, identical"
done
# The module and the key/value plugin it loaded are the installed ones.
loaded=$(grep -o "/[^ ]*libfsalkvfs.so\|/[^ ]*libkvfs-kv-rocksdb.so" /proc/"$server"/maps | sort -u)
echo "$loaded"
[ "$(grep -c "^/usr/lib/" <<<"$loaded")" -eq 2 ] && [ "$(grep -c . <<<"$loaded")" -eq 2 ] ||
  { echo "serve_and_read: not the installed module and plugin" >&2; exit 1; }
