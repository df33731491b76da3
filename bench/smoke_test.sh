#!/usr/bin/env bash
# Smoke test of bench/nfs_bench_client (ctest: nfs_bench_smoke): a tiny corpus
# (a tarball of the project's common/ tree, and 200 generated files) through
# every phase against KVFS over NFSv3 (cold read-back) and NFSv4, and in POSIX
# mode. Checks that what was read back is what was written (the client exits
# non-zero otherwise), not timing. Runs inside ci/run-in-namespace.sh.
#
#   bench/smoke_test.sh CLIENT SOURCE_DIR
set -euo pipefail
CLIENT="$1"
SRC="$2"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/kvfs-bench-smoke-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

tar cf "$WORK/small.tar" -C "$SRC" common
run() {
  echo "+ nfs_bench_client $*"
  "$CLIENT" "$@" --lookups=500 | tee -a "$WORK/results.jsonl"
}
run --tarball="$WORK/small.tar" --server=kvfs --work="$WORK/v3" --cold --bigdir=300
# NFSv4: one request in flight (libnfs 4.0), and slow: no big directory.
run --tarball="$WORK/small.tar" --server=kvfs --work="$WORK/v4" --version=4
run --generate=200:7 --server=kvfs --work="$WORK/gen" --cold --inflight=8 --bigdir=300
run --tarball="$WORK/small.tar" --posix="$WORK/posix" --bigdir=300
# Every phase ran and read back correctly.
phases=$(grep -c '"ok": true' "$WORK/results.jsonl")
if grep -q '"ok": false' "$WORK/results.jsonl" || [ "$phases" -ne 22 ]; then
  echo "smoke test failed: $phases good phases of 22" >&2
  exit 1
fi
echo "nfs_bench_smoke: $phases phases OK"
