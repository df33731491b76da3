#!/usr/bin/env bash
# Runs bench/claims_bench (what a claim costs in the persistent store and in
# etcd, same run) against a one-member etcd started for it in private
# namespaces, with etcd's data and the store on this machine's disk under
# ${KVFS_BUILD_DIR:-build}/claims-bench. Prints a markdown table.
#
#   bench/claims_bench.sh [N]    N calls per operation (default 500)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath -m "${KVFS_BUILD_DIR:-$root/build}")
if [ "${1:-}" != "--inside" ]; then
  cmake --build "$build" --target claims_bench >/dev/null
  exec "$root/ci/run-in-namespace.sh" "$0" --inside "${1:-500}"
fi
n=$2
work=$build/claims-bench
rm -rf "$work"
mkdir -p "$work/store"
"$root/tests/etcd/etcd-server.sh" start "$work/etcd" 1
trap '"$root/tests/etcd/etcd-server.sh" stop "$work/etcd"' EXIT
"$build/bench/claims_bench" --store "$work/store" --etcd etcd://127.0.0.1:2379/bench --n "$n"
