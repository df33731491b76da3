#!/usr/bin/env bash
# kvfs-fuse against libfuse's passthrough_ll and the local file systems, in
# one run on this machine (docs/benchmarks.md, "FUSE"):
#
#   bench/fuse_bench.sh [--quick] [--out DIR] [--bigdir N] [--docs]
#
# Targets, all on the disk the build tree is on:
#   ext4            a directory of the build tree's file system (ext4 here)
#   xfs, btrfs      file systems in sparse image files of the build tree,
#                   loop-mounted (mkfs afresh for each run)
#   ext4-sync       ext4 in such an image, mounted -o sync: every write and
#                   metadata change on disk when its call returns, the
#                   durability reference for kvfs-fuse's write workloads
#   passthrough_ll  libfuse 3.14's example over an ext4 directory (the FUSE
#                   floor: the kernel's FUSE path with a file system below)
#   kvfs-fuse       kvfs-fuse with its store in an ext4 directory
# Workloads on each, for each corpus: Debian's linux-source-6.1 tree
# (decompressed once) and its first 15,000 entries (passthrough_ll keeps a
# descriptor open for every inode the kernel caches, and this machine's limit
# of 20,000 cannot hold the whole tree); --quick: its first 3000 entries:
#   untar       tar xf of the tree into the target, then sync
#   tar_cold    tar cf of the tree piped to cat >/dev/null (GNU tar skips
#               reading files when its archive is /dev/null), cold: the
#               target remounted (FUSE daemons restarted) and the page cache
#               dropped first
#   find_cold   find -ls of the tree, cold
#   bigdir_create, bigdir_list
#               N empty files created in one directory, then listed
#               (bench/nfs_bench_client --posix; N = 100000, --quick 5000)
# Every tree is compared with the tarball (tar d) before it counts.
# Durability differs and is part of the result: kvfs-fuse replies to every
# metadata operation and every close only once the store synced it, so its
# untar is durable file by file; the others keep it in the page cache until
# the final sync (untar), or at all (bigdir_create: no sync).
#
# Output: OUT/results.jsonl, OUT/machine.txt, OUT/report.md (bench/
# fuse_report.py); OUT defaults to build/bench-fuse. --docs also writes the
# report into docs/benchmarks.md between "<!-- bench/fuse_bench.sh: begin -->"
# and "... end -->". Needs root (mounts, loop devices, drop_caches); runs
# itself in private namespaces (ci/run-in-namespace.sh), so every mount goes
# away with it.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${KVFS_BUILD_DIR:-$ROOT/build}"
ARGS=("$@")
OUT=""
QUICK=0
DOCS=0
BIGDIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --out) OUT="$2"; shift ;;
    --bigdir) BIGDIR="$2"; shift ;;
    --docs) DOCS=1 ;;
    --inside-namespace) INSIDE=1 ;;
    *) echo "usage: $0 [--quick] [--out DIR] [--bigdir N] [--docs]" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "fuse_bench: needs root" >&2; exit 2; }
OUT="${OUT:-$BUILD/bench-fuse}"

if [ -z "${INSIDE:-}" ]; then
  [[ " ${ARGS[*]} " == *" --out "* ]] || ARGS+=(--out "$OUT")
  cmake -S "$ROOT" -B "$BUILD" >/dev/null
  cmake --build "$BUILD" -j2 --target kvfs-fuse nfs_bench_client >/dev/null
  SUITES="$BUILD/tests/conformance/suites"
  "$ROOT/tests/conformance/build_suites.sh" "$ROOT/../shared/third_party" "$SUITES" \
    passthrough_ll >/dev/null
  mkdir -p "$OUT"
  exec "$ROOT/ci/run-in-namespace.sh" "$0" "${ARGS[@]}" --inside-namespace
fi

CLIENT="$BUILD/bench/nfs_bench_client"
KVFS_FUSE="$BUILD/fuse/kvfs-fuse"
PASSTHROUGH="$BUILD/tests/conformance/suites/passthrough_ll/passthrough_ll"
CACHE="$BUILD/bench-cache"
RESULTS="$OUT/results.jsonl"
# shellcheck source=bench/corpus_cache.sh
. "$ROOT/bench/corpus_cache.sh"
# shellcheck source=bench/timing.sh
. "$ROOT/bench/timing.sh"
if [ "$QUICK" -eq 1 ]; then
  make_tar linux-3k --tarball="$CACHE/linux-source-6.1.tar" --max-files=3000
  CORPORA=(linux-3k)
  BIGDIR=${BIGDIR:-5000}
  IMAGE_SIZE=4G
else
  make_tar linux-15k --tarball="$CACHE/linux-source-6.1.tar" --max-files=15000
  ln -sf linux-source-6.1.tar "$CACHE/linux-full.tar"
  CORPORA=(linux-15k linux-full)
  BIGDIR=${BIGDIR:-100000}
  IMAGE_SIZE=16G
fi
declare -A NFILES NBYTES
for corpus in "${CORPORA[@]}"; do
  read -r "NFILES[$corpus]" "NBYTES[$corpus]" < <("$CLIENT" --tarball="$CACHE/$corpus.tar" \
    --write-tar=/dev/null 2>&1 | sed -n 's/.* entries, \([0-9]*\) files, \([0-9]*\) bytes/\1 \2/p')
done
# The tree's top directory in the tarballs.
TOP=$(set +o pipefail; tar tf "$CACHE/${CORPORA[0]}.tar" 2>/dev/null | head -n 1 | cut -d/ -f1)

SCRATCH="$BUILD/bench-fuse-scratch"
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
MNT="$SCRATCH/mnt"
mkdir -p "$MNT"
: > "$RESULTS"
{
  describe_machine "bench/fuse_bench.sh ${ARGS[*]/--inside-namespace/}"
  echo "libfuse: $(dpkg-query -W -f='${Version}' libfuse3-3), xfsprogs $(dpkg-query -W -f='${Version}' xfsprogs), btrfs-progs $(dpkg-query -W -f='${Version}' btrfs-progs)"
  echo "loop devices: $(losetup -f >/dev/null 2>&1 && echo usable || echo 'NOT usable')"
  for corpus in "${CORPORA[@]}"; do
    echo "corpus: $corpus (${NFILES[$corpus]} files, ${NBYTES[$corpus]} bytes)"
  done
  echo "big directory: $BIGDIR files"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt"

DAEMON=""  # pid of the FUSE daemon of the current target

# wait_mounted: until $MNT is a mount point (the daemon's start-up).
wait_mounted() {
  local i
  for i in $(seq 600); do
    mountpoint -q "$MNT" && return 0
    kill -0 "$DAEMON" 2>/dev/null || { echo "fuse_bench: the daemon exited" >&2; return 1; }
    sleep 0.1
  done
  echo "fuse_bench: $MNT not mounted after 60 s" >&2
  return 1
}

# mount_target TARGET: mounts TARGET's file system on $MNT (its data kept).
mount_target() {
  case "$1" in
    ext4) mount --bind "$SCRATCH/ext4" "$MNT" ;;
    xfs | btrfs) mount -o loop "$SCRATCH/$1.img" "$MNT" ;;
    ext4-sync) mount -o loop,sync "$SCRATCH/$1.img" "$MNT" ;;
    passthrough_ll)
      "$PASSTHROUGH" -f -o "source=$SCRATCH/passthrough" "$MNT" 2>>"$OUT/passthrough_ll.log" &
      DAEMON=$!
      wait_mounted ;;
    kvfs-fuse)
      "$KVFS_FUSE" -f --db "$SCRATCH/kvfs-db" "$MNT" 2>>"$OUT/kvfs-fuse.log" &
      DAEMON=$!
      wait_mounted ;;
  esac
}

# unmount_target TARGET: unmounts $MNT and waits for a FUSE daemon to end.
unmount_target() {
  case "$1" in
    passthrough_ll | kvfs-fuse)
      fusermount3 -u "$MNT"
      wait "$DAEMON" ;;
    *) umount "$MNT" ;;
  esac
}

# create_target TARGET: an empty file system for TARGET.
create_target() {
  case "$1" in
    ext4) mkdir -p "$SCRATCH/ext4" ;;
    xfs)
      truncate -s "$IMAGE_SIZE" "$SCRATCH/xfs.img"
      mkfs.xfs -q -f "$SCRATCH/xfs.img" ;;
    btrfs)
      truncate -s "$IMAGE_SIZE" "$SCRATCH/btrfs.img"
      mkfs.btrfs -q -f "$SCRATCH/btrfs.img" >/dev/null ;;
    ext4-sync)
      truncate -s "$IMAGE_SIZE" "$SCRATCH/ext4-sync.img"
      mkfs.ext4 -q -F "$SCRATCH/ext4-sync.img" ;;
    passthrough_ll) mkdir -p "$SCRATCH/passthrough" ;;
    kvfs-fuse) mkdir -p "$SCRATCH/kvfs-db" ;;
  esac
}

# cold TARGET: remount (a FUSE daemon restarted, its caches gone) and drop
# the page cache, dentries and inodes.
cold() {
  unmount_target "$1"
  drop_caches
  mount_target "$1"
}

# run_corpus TARGET CORPUS: the tree workloads (the target is mounted).
# Returns non-zero if one failed (its result says "ok": false).
run_corpus() {
  local target=$1 corpus=$2
  local tarball="$CACHE/$corpus.tar" dir="$MNT/$corpus" err="$OUT/$target-$corpus.err"
  mkdir -p "$dir"
  drop_caches
  if ! timed "$target" "$corpus" untar "${NFILES[$corpus]}" "${NBYTES[$corpus]}" \
    sh -c "tar xf '$tarball' -C '$dir' 2>'$err' && sync"; then
    echo "fuse_bench: $target: tar xf of $corpus failed: $(tail -n 1 "$err")" >&2
    return 1
  fi
  cold "$target"
  timed "$target" "$corpus" tar_cold "${NFILES[$corpus]}" "${NBYTES[$corpus]}" \
    sh -c "tar cf - -C '$dir' '$TOP' | cat > /dev/null" || return 1
  cold "$target"
  timed "$target" "$corpus" find_cold "${NFILES[$corpus]}" 0 \
    sh -c "find '$dir/$TOP' -ls > /dev/null" || return 1
  # The tree, checked against the tarball once (a benchmark of wrong
  # answers is worth nothing).
  if ! (cd "$dir" && tar df "$tarball" > "$err" 2>&1); then
    echo "fuse_bench: $target: $corpus differs from the tarball (see $err)" >&2
    return 1
  fi
  rm -f "$err"
}

status=0
for target in ext4 xfs btrfs ext4-sync passthrough_ll kvfs-fuse; do
  echo "== $target (load $(cut -d' ' -f1 /proc/loadavg))"
  create_target "$target"
  mount_target "$target"
  for corpus in "${CORPORA[@]}"; do
    run_corpus "$target" "$corpus" || status=1
    # A fresh start for what follows (a FUSE daemon's state of this corpus gone).
    cold "$target"
  done
  drop_caches
  "$CLIENT" --generate=0:1 --phases=bigdir --bigdir="$BIGDIR" --posix="$MNT/bench" \
    --label="$target" >> "$RESULTS" 2>/dev/null || status=1
  unmount_target "$target"
  rm -rf "${SCRATCH:?}/ext4" "$SCRATCH/passthrough" "$SCRATCH/kvfs-db" "$SCRATCH"/*.img
  tail -n 4 "$RESULTS" | cut -c1-150
done

python3 "$ROOT/bench/fuse_report.py" "$OUT" > "$OUT/report.md"
cat "$OUT/report.md"
if [ "$DOCS" -eq 1 ]; then
  python3 - "$ROOT/docs/benchmarks.md" "$OUT/report.md" <<'EOF'
import sys
doc, report = sys.argv[1], open(sys.argv[2]).read()
begin, end = "<!-- bench/fuse_bench.sh: begin -->", "<!-- bench/fuse_bench.sh: end -->"
text = open(doc).read()
if begin not in text or end not in text:
    sys.exit(f"{doc} has no {begin} ... {end} section")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(doc, "w").write(head + begin + "\n" + report.strip() + "\n" + end + tail)
print(f"wrote the report into {doc}")
EOF
fi
exit "$status"
