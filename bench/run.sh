#!/usr/bin/env bash
# Runs the KVFS benchmark suite end to end and writes the results:
#
#   bench/run.sh [--quick] [--out DIR] [--perf] [--medium disk|tmpfs] [--docs]
#
# For each corpus, in one run on this machine:
#   local ext4   cp + sync of the tarball (the physical floor), tar xf + sync,
#                tar cf (cold) of the tree, and nfs_bench_client --posix
#   FSAL_VFS     ganesha.nfsd exporting an ext4 directory
#   FSAL_MEM     ganesha.nfsd, in memory (warm read-back: it cannot restart)
#   KVFS         ganesha.nfsd + libfsalkvfs.so, store on ext4
# through the same client (bench/nfs_bench_client, NFSv3, 32 requests in
# flight). Cold reads: the server is restarted and the page cache dropped
# before the read-back. Every server runs in private namespaces
# (ci/run-in-namespace.sh), traffic only on loopback.
#
# Corpora (decompressed/generated once into build/bench-cache):
#   full:    linux-source-6.1 (Debian package; ~78.6K files), its first 25K
#            entries, and one directory of 100K generated files (1-64 KiB,
#            seed 42); then a big directory: 100K empty files created in one
#            directory and listed (--bigdir N changes the count, e.g. 1000000)
#   --quick: the first 3000 entries of the linux tree and 2000 generated
#            files; big directory of 5000 entries
# and then, in the full run only, the direct paths and the store itself:
#   ingest:    bench/ingest_bench.sh (kvfs-ingest and kvfs-export of the
#              linux tree against cp + sync and tar xf + sync, one round,
#              each bulk-load compression)
#   storeload: bench/store_load.sh (what the persistent store sees)
#   memory:    bench/kv_store_bench, 100K and 1M files of 1-64 KiB in one
#              directory (peak RSS, settled store size)
# --only CORPUS[,CORPUS...] runs only those corpora (names as above, or
# "bigdir"), e.g. to redo one after a failure; results are appended.
# --perf records perf profiles of ganesha.nfsd (KVFS, untar and read of the
# linux tree) into OUT/perf/.
#
# --medium tmpfs puts every target's data (the ext4 copies, FSAL_VFS's export,
# KVFS's store) on a tmpfs instead of the disk: what the targets cost when
# syncs are free (tmpfs stands in for NVRAM). Default: disk (ext4).
#
# Output: OUT/results.jsonl (one JSON line per phase), OUT/machine.txt, and
# OUT/report.md (the machine, tables and plot; bench/report.py). OUT defaults
# to build/bench-results (build/bench-results-tmpfs with --medium tmpfs).
# --docs also writes the report into docs/benchmarks.md, between the lines
# "<!-- bench/run.sh --medium=M: begin -->" and "... end -->", and its plot to
# docs/benchmarks-nfs-M.png.
# Needs root (namespaces, drop_caches). Exits non-zero if any phase read back
# anything wrong.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${KVFS_BUILD_DIR:-$ROOT/build}"
OUT=""
ARGS=("$@")
QUICK=0
MEDIUM=disk
DOCS=0
PERF=0
ONLY=""
BIGDIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --perf) PERF=1 ;;
    --out) OUT="$2"; shift ;;
    --only) ONLY="$2"; shift ;;
    --bigdir) BIGDIR="$2"; shift ;;
    --medium) MEDIUM="$2"; shift ;;
    --docs) DOCS=1 ;;
    *) echo "usage: $0 [--quick] [--out DIR] [--perf] [--only CORPORA] [--bigdir N]" \
      "[--medium disk|tmpfs] [--docs]" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "run.sh: needs root" >&2; exit 2; }
case "$MEDIUM" in
  disk) OUT="${OUT:-$BUILD/bench-results}" ;;
  tmpfs) OUT="${OUT:-$BUILD/bench-results-tmpfs}" ;;
  *) echo "run.sh: --medium is disk or tmpfs, not '$MEDIUM'" >&2; exit 2 ;;
esac

cmake -S "$ROOT" -B "$BUILD" >/dev/null
cmake --build "$BUILD" -j2 --target nfs_bench_client fsalkvfs kvfs-ingest kvfs-export \
  kv_store_bench bulk_load_bench kvfs kvfs_kv_plugins >/dev/null
CLIENT="$BUILD/bench/nfs_bench_client"
NS="$ROOT/ci/run-in-namespace.sh"

CACHE="$BUILD/bench-cache"
mkdir -p "$OUT"
# shellcheck source=bench/corpus_cache.sh
. "$ROOT/bench/corpus_cache.sh"
if [ "$QUICK" -eq 1 ]; then
  make_tar linux-3k --tarball="$CACHE/linux-source-6.1.tar" --max-files=3000
  make_tar gen-2k --generate=2000:42
  CORPORA=(linux-3k gen-2k bigdir)
  BIGDIR=${BIGDIR:-5000}
  SCRATCH_NAME=quick
else
  make_tar linux-25k --tarball="$CACHE/linux-source-6.1.tar" --max-files=25000
  make_tar gen-100k --generate=100000:42
  ln -sf linux-source-6.1.tar "$CACHE/linux-full.tar"
  CORPORA=(linux-25k gen-100k linux-full bigdir ingest storeload memory)
  BIGDIR=${BIGDIR:-100000}
  SCRATCH_NAME=full
fi

# Scratch space on the medium under test: the disk (ext4, same as the build
# tree), or a tmpfs mounted over the same directory for this run.
SCRATCH="$BUILD/bench-scratch"
if mountpoint -q "$SCRATCH"; then umount "$SCRATCH"; fi
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
if [ "$MEDIUM" = tmpfs ]; then
  mount -t tmpfs -o size=80% tmpfs "$SCRATCH"
  trap 'umount "$SCRATCH" 2>/dev/null || true' EXIT
fi
RESULTS="$OUT/results.jsonl"
if [ -n "$ONLY" ]; then
  IFS=, read -r -a CORPORA <<< "$ONLY"
else
  : > "$RESULTS"
fi
mkdir -p "$OUT/perf"

# shellcheck source=bench/timing.sh
. "$ROOT/bench/timing.sh"

# A run with --only adds its parts to an earlier run's results: its own
# date, command, commit and load go below the earlier run's description.
if [ -n "$ONLY" ] && [ -s "$OUT/machine.txt" ]; then
  echo "--- then, only $ONLY:" >> "$OUT/machine.txt"
else
  : > "$OUT/machine.txt"
fi
{
  describe_machine "bench/run.sh ${ARGS[*]}"
  echo "medium: $MEDIUM (scratch: $(df -hT "$SCRATCH" | awk 'NR==2 {print $1 " " $2 " " $3}'))"
  echo "ganesha: $(dpkg-query -W -f='${Version}' nfs-ganesha)"
  echo "libnfs: $(dpkg-query -W -f='${Version}' libnfs13)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >> "$OUT/machine.txt"
cat "$OUT/machine.txt"

status=0
for corpus in "${CORPORA[@]}"; do
  case "$corpus" in
    ingest)
      echo "== ingest and export (load $(cut -d' ' -f1 /proc/loadavg))"
      "$ROOT/bench/ingest_bench.sh" --rounds 1 --compressions zstd,lz4,none --no-bulk \
        --build "$BUILD" --work "$SCRATCH/ingest" > "$OUT/ingest.md" || status=1
      rm -rf "$SCRATCH/ingest"
      continue ;;
    storeload)
      echo "== persistent-store load (load $(cut -d' ' -f1 /proc/loadavg))"
      KVFS_BUILD_DIR="$BUILD" "$ROOT/bench/store_load.sh" --out "$SCRATCH/store-load" \
        > /dev/null || status=1
      cp "$SCRATCH/store-load/store-load.md" "$OUT/store-load.md" || status=1
      rm -rf "$SCRATCH/store-load"
      continue ;;
    memory)
      : > "$OUT/memory.jsonl"
      sizes=(100000 1000000)
      # 1M such files hold 33 GB: more than a tmpfs of this machine's memory.
      [ "$MEDIUM" = tmpfs ] && sizes=(100000)
      for n in "${sizes[@]}"; do
        echo "== memory: $n files of 1-64 KiB (load $(cut -d' ' -f1 /proc/loadavg))"
        drop_caches
        "$BUILD/bench/kv_store_bench" --backend=rocksdb --dir="$SCRATCH/memory" \
          --phases=hugedir,reopen --medium="$MEDIUM" --hugedir="$n" --file-bytes=1024-65536 \
          --lookups=10000 >> "$OUT/memory.jsonl" || status=1
        rm -rf "$SCRATCH/memory"
      done
      continue ;;
  esac
  if [ "$corpus" = bigdir ]; then
    # One directory of $BIGDIR empty files: create, then list.
    echo "== bigdir: $BIGDIR files (load $(cut -d' ' -f1 /proc/loadavg))"
    rm -rf "$SCRATCH/local"
    "$CLIENT" --generate=0:1 --phases=bigdir --bigdir="$BIGDIR" --posix="$SCRATCH/local" \
      --label=ext4-posix >> "$RESULTS" 2>/dev/null || status=1
    rm -rf "$SCRATCH/local"
    for server in vfs mem kvfs; do
      drop_caches
      "$NS" "$CLIENT" --generate=0:1 --phases=bigdir --bigdir="$BIGDIR" --server="$server" \
        --work="$SCRATCH/$server" >> "$RESULTS" 2>/dev/null || status=1
      rm -rf "${SCRATCH:?}/$server"
    done
    tail -n 8 "$RESULTS" | cut -c1-160
    continue
  fi
  tarball="$CACHE/$corpus.tar"
  read -r nfiles nbytes < <("$CLIENT" --tarball="$tarball" --write-tar=/dev/null 2>&1 |
    sed -n 's/.* entries, \([0-9]*\) files, \([0-9]*\) bytes/\1 \2/p')
  echo "== $corpus: $nfiles files, $nbytes bytes (load $(cut -d' ' -f1 /proc/loadavg))"

  # Local ext4: the physical floor (cp + sync), tar, and the client in POSIX mode.
  dir="$SCRATCH/local"
  rm -rf "$dir" && mkdir -p "$dir/x"
  drop_caches
  timed ext4-cp "$corpus" copy_tarball 1 "$(stat -c %s "$tarball")" \
    sh -c "cp '$tarball' '$dir/copy.tar' && sync"
  drop_caches
  timed ext4-tar "$corpus" untar "$nfiles" "$nbytes" sh -c "tar xf '$tarball' -C '$dir/x' && sync"
  drop_caches
  timed ext4-tar "$corpus" read "$nfiles" "$nbytes" sh -c "tar cf - -C '$dir/x' . | cat > /dev/null"
  rm -rf "$dir"
  drop_caches
  "$CLIENT" --tarball="$tarball" --posix="$dir/posix" --label=ext4-posix --cold \
    >> "$RESULTS" || status=1
  rm -rf "$dir"

  for server in vfs mem kvfs; do
    work="$SCRATCH/$server"
    rm -rf "$work"
    perf_args=()
    if [ "$PERF" -eq 1 ] && [ "$server" = kvfs ] && [[ "$corpus" == linux-* ]]; then
      perf_args=(--perf-dir="$OUT/perf")
    fi
    drop_caches
    echo "-- $server (load $(cut -d' ' -f1 /proc/loadavg))"
    "$NS" "$CLIENT" --tarball="$tarball" --server="$server" --work="$work" --cold \
      "${perf_args[@]}" >> "$RESULTS" || status=1
    rm -rf "$work"
  done
  tail -n 20 "$RESULTS" | cut -c1-160
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
rm -rf "${SCRATCH:?}"/*

# Debian's python3 (python3-matplotlib), not another one first on PATH.
PLOT="benchmarks-nfs-$MEDIUM.png"
/usr/bin/python3 "$ROOT/bench/report.py" "$OUT" "$PLOT" > "$OUT/report.md"
cat "$OUT/report.md"
if [ "$DOCS" -eq 1 ]; then
  [ -f "$OUT/$PLOT" ] && cp "$OUT/$PLOT" "$ROOT/docs/$PLOT"
  /usr/bin/python3 - "$ROOT/docs/benchmarks.md" "$MEDIUM" "$OUT/report.md" <<'EOF'
import sys
doc, medium, report = sys.argv[1:]
begin = f"<!-- bench/run.sh --medium={medium}: begin -->"
end = f"<!-- bench/run.sh --medium={medium}: end -->"
text = open(doc).read()
if begin not in text or end not in text:
    sys.exit(f"run.sh: {doc} has no '{begin}' ... '{end}' section to write into")
head, rest = text.split(begin, 1)
tail = rest.split(end, 1)[1]
open(doc, "w").write(head + begin + "\n" + open(report).read().strip() + "\n" + end + tail)
EOF
  echo "wrote docs/benchmarks.md (section --medium=$MEDIUM) and docs/$PLOT"
fi
exit $status
