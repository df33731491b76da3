#!/usr/bin/env bash
# The key/value store evaluation (docs/kv-stores.md), one command:
#
#   bench/kv_stores.sh [--quick] [--out DIR] [--backends a,b,c] [--hugedir N]
#
# For every backend plugin (default: rocksdb, lmdb, leveldb) and for two
# media, the store on disk (ext4, where the build tree is) and on tmpfs
# (/dev/shm, standing in for NVRAM), in one run:
#   direct   bench/kv_store_bench: ingest of the linux-source-6.1 tarball
#            (78,579 files, 1.3 GB) through kvfs-ingest's code, GetAttr of
#            every entry and reading every file back after a restart (page
#            cache dropped), and one directory of N files (default 1,000,000)
#            created by 32 threads with server durability, listed and looked
#            up at random; store size, peak memory, bytes written to disk
#   NFS      bench/nfs_bench_client against ganesha.nfsd + KVFS on that
#            backend (private namespaces): untar of the linux tree's first
#            25K entries, cold read-back (server restarted, cache dropped),
#            stat of every entry (NFSv3, 32 requests in flight)
# --quick: 3000-entry tree for NFS, 20,000-file directory (a smoke run).
#
# Output: OUT/kv-results.jsonl, OUT/machine.txt, OUT/kv-report.md and PNG
# plots (bench/kv_report.py); OUT defaults to build/kv-bench-results. Copy
# the report into docs/kv-stores.md. Needs root (namespaces, drop_caches).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${KVFS_BUILD_DIR:-$ROOT/build}"
OUT="$BUILD/kv-bench-results"
QUICK=0
BACKENDS="rocksdb,lmdb,leveldb"
HUGEDIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --out) OUT="$2"; shift ;;
    --backends) BACKENDS="$2"; shift ;;
    --hugedir) HUGEDIR="$2"; shift ;;
    *) echo "usage: $0 [--quick] [--out DIR] [--backends a,b,c] [--hugedir N]" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "kv_stores.sh: needs root" >&2; exit 2; }
IFS=, read -r -a BACKEND_LIST <<< "$BACKENDS"

cmake -S "$ROOT" -B "$BUILD" >/dev/null
cmake --build "$BUILD" -j2 --target kv_store_bench nfs_bench_client fsalkvfs kvfs_kv_plugins >/dev/null
DIRECT="$BUILD/bench/kv_store_bench"
CLIENT="$BUILD/bench/nfs_bench_client"
NS="$ROOT/ci/run-in-namespace.sh"

CACHE="$BUILD/bench-cache"
mkdir -p "$OUT"
# shellcheck source=bench/corpus_cache.sh
. "$ROOT/bench/corpus_cache.sh"
if [ "$QUICK" -eq 1 ]; then
  NFS_CORPUS=linux-3k NFS_FILES=3000 HUGEDIR=${HUGEDIR:-20000}
else
  NFS_CORPUS=linux-25k NFS_FILES=25000 HUGEDIR=${HUGEDIR:-1000000}
fi
make_tar "$NFS_CORPUS" --tarball="$CACHE/linux-source-6.1.tar" --max-files="$NFS_FILES"

RESULTS="$OUT/kv-results.jsonl"
: > "$RESULTS"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "command: bench/kv_stores.sh $*"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD) ($(git -C "$ROOT" status --porcelain | wc -l) paths differ from it)"
  echo "nproc: $(nproc); memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "disk: $(df -hT "$BUILD" | awk 'NR==2 {print $1 " " $2 " " $3}'); tmpfs: /dev/shm"
  echo "kernel: $(uname -r)"
  for p in librocksdb-dev liblmdb-dev libleveldb-dev nfs-ganesha; do
    echo "$p: $(dpkg-query -W -f='${Version}' "$p")"
  done
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt"

status=0
for medium in disk tmpfs; do
  if [ "$medium" = disk ]; then base="$BUILD/kv-bench-scratch"; else base="/dev/shm/kvfs-kv-bench"; fi
  for backend in "${BACKEND_LIST[@]}"; do
    work="$base/$backend"
    rm -rf "$work" && mkdir -p "$work"
    echo "== $backend on $medium (load $(cut -d' ' -f1 /proc/loadavg))"
    "$DIRECT" --backend="$backend" --dir="$work" --medium="$medium" \
      --tarball="$CACHE/linux-source-6.1.tar" --hugedir="$HUGEDIR" >> "$RESULTS" || status=1
    rm -rf "$work" && mkdir -p "$work"
    sync; echo 3 > /proc/sys/vm/drop_caches
    "$NS" "$CLIENT" --tarball="$CACHE/$NFS_CORPUS.tar" --server=kvfs --kv-backend="$backend" \
      --work="$work/nfs" --cold --phases=untar,read,stat --label="nfs-$backend-$medium" \
      >> "$RESULTS" || status=1
    rm -rf "$work"
    tail -n 9 "$RESULTS" | cut -c1-200
  done
  rm -rf "$base"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"

# Debian's python3 (python3-matplotlib), not another one first on PATH.
/usr/bin/python3 "$ROOT/bench/kv_report.py" "$OUT" > "$OUT/kv-report.md"
cat "$OUT/kv-report.md"
exit $status
