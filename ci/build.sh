#!/usr/bin/env bash
# Builds everything (core, FSAL module, tools, tests, benchmarks) into
# ${KVFS_BUILD_DIR:-build}/ after installing the Debian packages it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
./ci/install-deps.sh
BUILD_DIR=${KVFS_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
