#!/usr/bin/env bash
# Builds everything, then runs every test: unit tests, the long core tests,
# and the end-to-end tests that start ganesha.nfsd in private namespaces.
# Extra arguments go to ctest (e.g. -L long, -R fsal, -LE long).
set -euo pipefail
cd "$(dirname "$0")/.."
./ci/build.sh
BUILD_DIR=${KVFS_BUILD_DIR:-build}
cd "$BUILD_DIR"
ctest --output-on-failure -j"$(nproc)" "$@"
