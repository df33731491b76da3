#!/usr/bin/env bash
# A persistent store in an S3 bucket, measured against radosgw (one node,
# objects in the OSD's memory) in a private network namespace, next to the
# plain clients that are its floor (docs/stores.md, docs/benchmarks.md):
#
#   1. cold load of Debian's linux-source-6.1 tarball (.tar, 1.36 GB, and
#      .tar.xz, 138 MB) from the bucket into a fresh cache (s3_bench load)
#      against `aws s3 cp s3://... -` and `curl --aws-sigv4` of the same
#      object to /dev/null, ROUNDS rounds;
#   2. listing and start-up with TARBALLS tarballs in the bucket
#      (PersistentStore::List, TreeCache::Open on a fresh and on an existing
#      key/value store) against `aws s3api list-objects-v2` of them;
#   3. requests and bytes the server sees for a loaded tree and a write-back
#      (through s3_bench's counting proxy), against reading the same tree
#      kept file by file in a bucket (a listing per directory, a GET per file).
#
#   bench/s3_bench.sh [--rounds 3] [--tarballs 100000] [--out DIR]
#
# As root. Results: OUT/results.jsonl and OUT/report.md (default
# build/s3-bench). Takes 20-30 minutes on 2 cores.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${KVFS_BUILD_DIR:-$ROOT/build}"
ROUNDS=3
TARBALLS=100000
OUT="$BUILD/s3-bench"
INSIDE=0
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --tarballs) TARBALLS=$2; shift 2 ;;
    --out) OUT=$(realpath -m "$2"); shift 2 ;;
    --inside) INSIDE=1; shift ;;
    *) echo "usage: $0 [--rounds N] [--tarballs N] [--out DIR]" >&2; exit 2 ;;
  esac
done
if [ "$INSIDE" -eq 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "s3_bench.sh: needs root" >&2; exit 2; }
  cmake --build "$BUILD" -j2 --target s3_bench >/dev/null
  mkdir -p "$OUT"
  exec "$ROOT/ci/run-in-namespace.sh" "$0" --inside --rounds "$ROUNDS" --tarballs "$TARBALLS" \
    --out "$OUT"
fi

BENCH="$BUILD/bench/s3_bench"
E=http://127.0.0.1:8000
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
AWS=(/usr/bin/aws --endpoint-url "$E")
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
say() { echo "s3_bench: $*" >&2; }
record() { echo "$1" | tee -a "$RESULTS"; }
now() { date +%s.%N; }
since() { awk "BEGIN {printf \"%.3f\", $(now) - $1}"; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }

record "{\"phase\": \"machine\", \"cores\": $(nproc), \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"date\": \"$(date -u +%FT%TZ)\"}"
say "starting radosgw"
"$ROOT/tests/s3/s3-server.sh" radosgw "$OUT/rgw" 8000

TAR="$OUT/linux-source-6.1.tar"
[ -s "$TAR" ] || xz -dc /usr/src/linux-source-6.1.tar.xz >"$TAR"
for b in kvfs-tar kvfs-xz files many; do "${AWS[@]}" s3 mb "s3://$b" >/dev/null; done
"$BENCH" put --store s3://kvfs-tar -o s3_endpoint=$E --file "$TAR" --object linux-source-6.1.tar >&2
"$BENCH" put --store s3://kvfs-xz -o s3_endpoint=$E --file /usr/src/linux-source-6.1.tar.xz \
  --object linux-source-6.1.tar.xz >&2

# 1. Cold loads against plain downloads of the same object.
for round in $(seq "$ROUNDS"); do
  for kind in tar xz; do
    object=linux-source-6.1.tar; [ $kind = xz ] && object=linux-source-6.1.tar.xz
    drop
    t0=$(now); "${AWS[@]}" s3 cp "s3://kvfs-$kind/$object" - >/dev/null
    record "{\"phase\": \"aws_s3_cp\", \"kind\": \"$kind\", \"round\": $round, \"seconds\": $(since "$t0")}"
    drop
    t0=$(now)
    curl -fsS --aws-sigv4 aws:amz:us-east-1:s3 -u test:testing \
      -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -o /dev/null "$E/kvfs-$kind/$object"
    record "{\"phase\": \"curl\", \"kind\": \"$kind\", \"round\": $round, \"seconds\": $(since "$t0")}"
    drop
    line=$("$BENCH" load --store "s3://kvfs-$kind" -o s3_endpoint=$E --dir "$OUT/cache" \
      --tree linux-source-6.1)
    record "${line%\}}, \"kind\": \"$kind\", \"round\": $round}"
  done
  # The same load with the loaded SST files uncompressed (bulk_load_compression=none):
  # the ingest's CPU is mostly ZSTD (docs/benchmarks.md, "Ingest").
  drop
  line=$("$BENCH" load --store s3://kvfs-tar -o s3_endpoint=$E --dir "$OUT/cache" \
    --tree linux-source-6.1 --kv-options bulk_load_compression=none)
  record "${line%\}}, \"kind\": \"tar-none\", \"round\": $round}"
done

# 3a. What the server sees: a load and a write-back of the tree.
line=$("$BENCH" load --count --store s3://kvfs-tar -o s3_endpoint=$E --dir "$OUT/cache" \
  --tree linux-source-6.1)
record "${line%\}}, \"kind\": \"tar\", \"counted\": true}"
line=$("$BENCH" writeback --count --store s3://kvfs-tar -o s3_endpoint=$E --dir "$OUT/cache" \
  --tree linux-source-6.1)
record "${line%\}}, \"kind\": \"tar\", \"counted\": true}"
rm -rf "$OUT/cache"

# 3b. The same tree kept file by file, read back the way a file-by-file
# client does.
if [ ! -d "$OUT/tree/linux-source-6.1" ]; then
  mkdir -p "$OUT/tree"
  tar xf "$TAR" -C "$OUT/tree"
fi
say "uploading the tree file by file"
record "$("$BENCH" put-files --endpoint $E --bucket files --prefix linux-source-6.1 \
  --from "$OUT/tree/linux-source-6.1")"
record "$("$BENCH" read-files --count --endpoint $E --bucket files --prefix linux-source-6.1)"
record "$("$BENCH" read-files --endpoint $E --bucket files --prefix linux-source-6.1)"

# 2. Listing and start-up with many tarballs.
say "putting $TARBALLS tarballs"
record "$("$BENCH" fill --endpoint $E --bucket many --prefix t --objects "$TARBALLS")"
for round in $(seq "$ROUNDS"); do
  t0=$(now)
  "${AWS[@]}" s3api list-objects-v2 --bucket many --prefix t/ --delimiter / >/dev/null
  record "{\"phase\": \"aws_list\", \"round\": $round, \"objects\": $TARBALLS, \"seconds\": $(since "$t0")}"
  line=$("$BENCH" list --store s3://many/t -o s3_endpoint=$E)
  record "${line%\}}, \"round\": $round}"
  "$BENCH" startup --store s3://many/t -o s3_endpoint=$E --dir "$OUT/cache" |
    while read -r line; do record "${line%\}}, \"round\": $round}"; done
done
line=$("$BENCH" list --count --store s3://many/t -o s3_endpoint=$E)
record "${line%\}}, \"counted\": true}"
rm -rf "$OUT/cache"

/usr/bin/python3 "$ROOT/bench/s3_report.py" "$RESULTS" | tee "$OUT/report.md"
