#!/usr/bin/env bash
# Fetches the NFS-Ganesha 4.3 upstream source (for its headers: Debian ships
# none) into a cache folder and prints the path of its src/include.
#
# Usage: ci/ganesha-source.sh CACHE_DIR
#
# The orig tarball of Debian's nfs-ganesha source package, fetched and
# unpacked once by ci/debian-source.sh (the mirror lacks the Debian tarball of
# this package, which is tolerated: only the orig tarball is needed).
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "ganesha-source: usage: $0 CACHE_DIR" >&2
  exit 1
fi
tree=$("$(dirname "$0")/debian-source.sh" nfs-ganesha 4.3 tar.gz "$1" src/include/fsal_api.h)
echo "$tree/src/include"
