#!/usr/bin/env bash
# Builds everything (core, FSAL module, tools, tests, benchmarks) into
# ${KVFS_BUILD_DIR:-build}/ after installing the Debian packages it needs:
# GCC, RelWithDebInfo, installing under /usr (what the Debian packages of
# tests/package are made from). Then the second configuration of the build
# matrix: clang, Release, every target compiled (warnings are errors) into
# ${KVFS_CLANG_BUILD_DIR:-<build dir>-clang}/, nothing run from it;
# KVFS_CLANG_BUILD=0 skips it. Both print how long they took.
set -euo pipefail
cd "$(dirname "$0")/.."
./ci/install-deps.sh
BUILD_DIR=${KVFS_BUILD_DIR:-build}
CLANG_BUILD_DIR=${KVFS_CLANG_BUILD_DIR:-${BUILD_DIR%/}-clang}

timed_build() {
  local what=$1 dir=$2
  shift 2
  local start=$SECONDS
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)"
  echo "build: $what in $dir: $((SECONDS - start)) s"
}

timed_build "GCC RelWithDebInfo" "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr
if [ "${KVFS_CLANG_BUILD:-1}" != 0 ]; then
  timed_build "clang Release (compile only)" "$CLANG_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
fi
