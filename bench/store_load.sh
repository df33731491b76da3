#!/usr/bin/env bash
# The NAS question (issue 8, "persistent-store load"): what does the
# persistent store see when a tree is read
#   (a) one file at a time straight from it (a NAS holding the files:
#       `tar cf - TREE | cat > /dev/null` over the unpacked tree, cold), or
#   (b) through KVFS: the tarball fetched and ingested once (kvfs-ingest of
#       the store's linux-source-6.1.tar.xz), after which every read is
#       served from the key/value store and never reaches the persistent store?
#
#   bench/store_load.sh [--out DIR]
#
# Both run under strace; bench/store_load.py counts, for files below the
# persistent store only, the opens, directory reads, stats, read calls and
# bytes read. Output: OUT/store-load.md (default build/store-load). Needs
# root (drop_caches). The tree is unpacked once into the build tree.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${KVFS_BUILD_DIR:-$ROOT/build}"
OUT="$BUILD/store-load"
[ "${1:-}" = --out ] && OUT="$2"
[ "$(id -u)" -eq 0 ] || { echo "store_load.sh: needs root" >&2; exit 2; }
cmake --build "$BUILD" -j2 --target kvfs-ingest kvfs_kv_plugins >/dev/null
STORE="$OUT/persistent-store"
mkdir -p "$STORE"
cp -u /usr/src/linux-source-6.1.tar.xz "$STORE/"
if [ ! -d "$STORE/tree/linux-source-6.1" ]; then
  mkdir -p "$STORE/tree"
  tar xf "$STORE/linux-source-6.1.tar.xz" -C "$STORE/tree"
fi
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
TRACE="strace -f -qq -e trace=openat,open,getdents64,newfstatat,statx,lstat,stat,read,pread64"

drop
t0=$(date +%s.%N)
$TRACE -o "$OUT/nas.strace" tar cf - -C "$STORE/tree" linux-source-6.1 | cat > /dev/null
t1=$(date +%s.%N)

rm -rf "$OUT/db"
drop
t2=$(date +%s.%N)
$TRACE -o "$OUT/kvfs.strace" "$BUILD/ingest/kvfs-ingest" --db "$OUT/db" \
  --store "$STORE" linux-source-6.1.tar.xz
t3=$(date +%s.%N)

/usr/bin/python3 "$ROOT/bench/store_load.py" "$STORE" \
  "files one by one from the store (tar over the unpacked tree)=$OUT/nas.strace=$(awk "BEGIN {print $t1 - $t0}")" \
  "fetch + ingest into KVFS (kvfs-ingest of the .tar.xz)=$OUT/kvfs.strace=$(awk "BEGIN {print $t3 - $t2}")" \
  | tee "$OUT/store-load.md"
rm -rf "$OUT/db" "$OUT"/*.strace
