#!/usr/bin/env bash
# Issue 16's measurements (docs/benchmarks.md, "Coordination through etcd"):
# bench/cluster_bench (its header says what each part does) inside private
# namespaces, with one etcd member started for it, data under
# ${KVFS_BUILD_DIR:-build}/cluster-bench on this machine's disk.
#
#   bench/cluster_bench.sh [--layouts 1x2,2x2,3x2,1x6] [--rounds 5] [--tarball FILE]
#                          [--out DIR] [--docs]
#   bench/cluster_bench.sh --smoke     # a generated 300-file tarball, layouts 1x1,2x1,
#                                      # one round: checks every byte (ctest cluster_bench_smoke)
#
# Default tarball: Debian's linux-source-6.1, decompressed once into
# build/bench-cache (bench/corpus_cache.sh). Output: OUT/results.jsonl,
# OUT/machine.txt and OUT/report.md (bench/cluster_report.py); OUT defaults
# to build/bench-results-cluster. --docs writes the report into
# docs/benchmarks.md between "<!-- bench/cluster_bench.sh: begin -->" and
# "... end -->". Needs root. Exits non-zero if a client read anything wrong.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(realpath -m "${KVFS_BUILD_DIR:-$ROOT/build}")
if [ "${1:-}" = "--inside" ]; then
  # In the namespaces: etcd, then the two parts.
  shift
  work=$1 out=$2 tarball=$3 layouts=$4 rounds=$5
  "$ROOT/tests/etcd/etcd-server.sh" start "$work/etcd" 1 >/dev/null
  trap '"$ROOT/tests/etcd/etcd-server.sh" stop "$work/etcd"' EXIT
  status=0
  echo "== throughput: layouts $layouts (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  "$BUILD/bench/cluster_bench" throughput --tarball="$tarball" \
    --client="$BUILD/bench/nfs_bench_client" --etcd=etcd://127.0.0.1:2379 --work="$work" \
    --layouts="$layouts" | tee -a "$out/results.jsonl" >&2 || status=1
  echo "== coordination cost: $rounds rounds (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  "$BUILD/bench/cluster_bench" coordcost --tarball="$tarball" --etcd=etcd://127.0.0.1:2379 \
    --work="$work" --rounds="$rounds" | tee -a "$out/results.jsonl" >&2 || status=1
  exit $status
fi

LAYOUTS=1x2,2x2,3x2,1x6
ROUNDS=5
TARBALL=""
OUT=""
DOCS=0
SMOKE=0
ARGS=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --layouts) LAYOUTS=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --tarball) TARBALL=$(realpath "$2"); shift ;;
    --out) OUT=$2; shift ;;
    --docs) DOCS=1 ;;
    --smoke) SMOKE=1 ;;
    *) echo "usage: $0 [--layouts L] [--rounds N] [--tarball FILE] [--out DIR] [--docs] | --smoke" >&2
       exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "cluster_bench.sh: needs root" >&2; exit 2; }

cmake --build "$BUILD" -j2 --target cluster_bench >/dev/null
CLIENT="$BUILD/bench/nfs_bench_client"
WORK="$BUILD/cluster-bench"
[ "$SMOKE" -eq 0 ] || WORK="$BUILD/cluster-bench-smoke"
rm -rf "$WORK"
mkdir -p "$WORK"
if [ "$SMOKE" -eq 1 ]; then
  OUT=${OUT:-$WORK/out}
  LAYOUTS=1x1,2x1
  ROUNDS=1
  TARBALL="$WORK/gen-300.tar"
  "$CLIENT" --generate=300:16 --write-tar="$TARBALL" 2>/dev/null
elif [ -z "$TARBALL" ]; then
  CACHE="$BUILD/bench-cache"
  # shellcheck source=bench/corpus_cache.sh
  . "$ROOT/bench/corpus_cache.sh"
  TARBALL="$CACHE/linux-source-6.1.tar"
fi
OUT=${OUT:-$BUILD/bench-results-cluster}
mkdir -p "$OUT"
: > "$OUT/results.jsonl"
# shellcheck source=bench/timing.sh
. "$ROOT/bench/timing.sh"
{
  describe_machine "bench/cluster_bench.sh ${ARGS[*]}"
  echo "tarball: $(basename "$TARBALL") ($(stat -c %s "$TARBALL") bytes)"
  echo "ganesha: $(dpkg-query -W -f='${Version}' nfs-ganesha)"
  echo "etcd: $(dpkg-query -W -f='${Version}' etcd-server)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/machine.txt"
status=0
"$ROOT/ci/run-in-namespace.sh" "$0" --inside "$WORK" "$OUT" "$TARBALL" "$LAYOUTS" "$ROUNDS" ||
  status=1
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
/usr/bin/python3 "$ROOT/bench/cluster_report.py" "$OUT" > "$OUT/report.md" || status=1
cat "$OUT/report.md"
if [ "$DOCS" -eq 1 ]; then
  /usr/bin/python3 - "$ROOT/docs/benchmarks.md" "$OUT/report.md" <<'EOF'
import sys
doc, report = sys.argv[1:]
begin, end = "<!-- bench/cluster_bench.sh: begin -->", "<!-- bench/cluster_bench.sh: end -->"
text = open(doc).read()
if begin not in text or end not in text:
    sys.exit(f"cluster_bench.sh: {doc} has no '{begin}' ... '{end}' section to write into")
head, rest = text.split(begin, 1)
open(doc, "w").write(head + begin + "\n" + open(report).read().strip() + "\n" + end +
                     rest.split(end, 1)[1])
EOF
  echo "wrote docs/benchmarks.md (section bench/cluster_bench.sh)"
fi
rm -rf "$WORK"
exit $status
