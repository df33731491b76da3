#!/usr/bin/env bash
# Ingest benchmark (docs/benchmarks.md, "Ingest"): loading Debian's Linux
# source tarball into a fresh KVFS store with kvfs-ingest, against what the
# same machine needs to copy the tarball (cp + sync) and to unpack it
# (tar xf + sync) onto the same ext4 file system, in the same run, and
# kvfs-export of the ingested tree back to an uncompressed tarball. Each step
# starts with a cold page cache and ends with the data on stable storage
# (kvfs-ingest returns once its SST files and the publishing batch are
# synced).
#
#   bench/ingest_bench.sh [--rounds N] [--build DIR] [--work DIR] [--import] [--profile]
#                         [--compressions zstd,lz4,none] [--no-bulk]
#
# Inputs: /usr/src/linux-source-6.1.tar.xz as shipped, and the same tarball
# uncompressed (made once in the work directory). Also runs bulk_load_bench
# (SST bulk load vs. 4 MiB write batches through the WAL vs. one batch) on
# the uncompressed tarball. --import adds the file-by-file baseline
# (`kvfs import` of the unpacked tree through the FileSystem API); --profile
# records kvfs-ingest with perf and prints where the CPU time goes.
# --compressions ingests with each of the RocksDB backend's
# bulk_load_compression settings (default: zstd, the store's own) and prints
# the store's size after each; --no-bulk skips bulk_load_bench.
# Needs root (drop_caches). Prints markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=2
BUILD=build
WORK=/var/tmp/kvfs-ingest-bench
IMPORT=0
PROFILE=0
COMPRESSIONS=zstd
BULK_MODES=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --import) IMPORT=1; shift ;;
    --profile) PROFILE=1; shift ;;
    --compressions) COMPRESSIONS=$2; shift 2 ;;
    --no-bulk) BULK_MODES=0; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

XZ=/usr/src/linux-source-6.1.tar.xz
[ -f "$XZ" ] || { echo "$XZ missing: run ci/install-deps.sh" >&2; exit 1; }
INGEST="$BUILD/ingest/kvfs-ingest"
EXPORT="$BUILD/ingest/kvfs-export"
BULK="$BUILD/bench/bulk_load_bench"
KVFS="$BUILD/tools/kvfs"
for b in "$INGEST" "$EXPORT" "$BULK" "$KVFS"; do
  [ -x "$b" ] || { echo "$b missing: build first (ci/build.sh)" >&2; exit 1; }
done

mkdir -p "$WORK"
TAR="$WORK/linux-source-6.1.tar"
[ -f "$TAR" ] || xz -T0 -dc "$XZ" > "$TAR"

cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# Runs shell command $1 with a cold cache; prints "WALL CPU" in seconds (CPU:
# user + system of the command and its children, a number the other load of
# a shared machine disturbs much less than the wall time).
timed() {
  cold
  /usr/bin/time -f "%e %U %S" -o "$WORK/time.out" bash -c "$1" > "$WORK/last.out" 2>&1 ||
    { cat "$WORK/last.out" >&2; exit 1; }
  awk '{ printf "%.2f %.2f", $1, $2 + $3 }' "$WORK/time.out"
}

copy_sync() { echo "cp '$1' '$WORK/copy' && sync"; }
untar_sync() { echo "mkdir '$WORK/x' && tar -xf '$1' -C '$WORK/x' && sync"; }
# ingest TARBALL [COMPRESSION]
ingest() {
  echo "'$INGEST' --db '$WORK/db' --kv-options bulk_load_compression=${2:-zstd} '$1'"
}
# export: the ingested tree back out as an uncompressed pax tarball (synced)
export_tree() {
  echo "mkdir -p '$WORK/out' && '$EXPORT' --db '$WORK/db' --store '$WORK/out' linux-source-6.1 && sync"
}
clean() { rm -rf "$WORK/copy" "$WORK/x" "$WORK/db" "$WORK/out"; }

echo "# Ingest benchmark, $(date -u +%F), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Wall seconds (CPU seconds in parentheses); ratios of wall times. kvfs-export writes the"
echo "ingested tree back as an uncompressed tarball (1.45 GB): its ratio is against cp + sync of"
echo "the uncompressed tarball (the .tar rows of the same round)."
echo
echo "| round | tarball | cp + sync | tar xf + sync | SST compression | kvfs-ingest | store MB |" \
  "ingest / cp | ingest / tar xf | kvfs-export | export / cp .tar |"
echo "|---|---|---|---|---|---|---:|---|---|---|---|"
IFS=, read -r -a COMPRESSION_LIST <<< "$COMPRESSIONS"
for round in $(seq 1 "$ROUNDS"); do
  clean
  # The .tar first: its copy is also what export is compared with.
  for input in "$TAR" "$XZ"; do
    read -r cw cc <<< "$(timed "$(copy_sync "$input")")"; clean
    [ "$input" = "$TAR" ] && tarcw=$cw
    read -r tw tc <<< "$(timed "$(untar_sync "$input")")"; clean
    for comp in "${COMPRESSION_LIST[@]}"; do
      read -r iw ic <<< "$(timed "$(ingest "$input" "$comp")")"
      mb=$(du -sm "$WORK/db" | cut -f1)
      read -r ew ec <<< "$(timed "$(export_tree)")"
      clean
      printf "| %d | %s | %.2f (%.2f) | %.2f (%.2f) | %s | %.2f (%.2f) | %s | %.2fx | %.2fx |" \
        "$round" "$(basename "$input")" "$cw" "$cc" "$tw" "$tc" "$comp" "$iw" "$ic" "$mb" \
        "$(awk "BEGIN { print $iw / $cw }")" "$(awk "BEGIN { print $iw / $tw }")"
      printf " %.2f (%.2f) | %.2fx |\n" "$ew" "$ec" "$(awk "BEGIN { print $ew / $tarcw }")"
    done
  done
done

if [ "$BULK_MODES" = 1 ]; then
  echo
  echo "How the keys reach RocksDB ($(basename "$TAR"), cold cache each):"
  echo
  for round in $(seq 1 "$ROUNDS"); do
    for mode in sst batches onebatch; do
      cold
      echo "- round $round: $("$BULK" "$mode" "$TAR" "$WORK/db")"
      clean
    done
  done
fi

if [ "$IMPORT" = 1 ]; then
  echo
  mkdir -p "$WORK/x"; tar -xf "$TAR" -C "$WORK/x"
  rm -rf "$WORK/db"
  read -r sw sc <<< "$(timed "'$KVFS' import --db '$WORK/db' '$WORK/x/linux-source-6.1' /linux-source-6.1")"
  echo "File by file (\`kvfs import\` of the unpacked tree through the FileSystem API): $sw s ($sc s CPU)"
  clean
fi

if [ "$PROFILE" = 1 ]; then
  for input in "$XZ" "$TAR"; do
    echo
    echo "perf profile of kvfs-ingest $(basename "$input") (share of CPU samples by library):"
    echo
    cold
    perf record -q -F 499 -g -o "$WORK/perf.data" "$INGEST" --db "$WORK/db" "$input" > /dev/null 2>&1
    perf report -i "$WORK/perf.data" --no-children --sort dso --stdio 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -8 | sed 's/^ */- /'
    clean
  done
fi
