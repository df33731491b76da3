#!/usr/bin/env bash
# Runs a test with TMPDIR on a fresh, loop-mounted XFS or btrfs, so that the
# direct I/O paths of the directory store and of local tarballs
# (store/local_file.cc, store/posix/posix_store.cc) are tested on every local
# file system they claim (docs/stores.md), not only on the machine's own ext4.
#
#   tests/store/on-loop-fs.sh xfs|btrfs COMMAND [ARGS...]
#
# The image (512 MiB, sparse) lives in a fresh directory under $TMPDIR (or
# /tmp) and is removed afterwards; the mount lives in a private mount namespace
# (ci/run-in-namespace.sh), so it disappears with the command however that
# ends. Exits with COMMAND's status, or 2 with a message if the file system
# cannot be made or mounted (mkfs.xfs and mkfs.btrfs come from
# ci/install-deps.sh; loop devices must be usable).
set -euo pipefail

root=$(readlink -f "$(dirname "${BASH_SOURCE[0]}")/../..")
die() {
  echo "on-loop-fs: $*" >&2
  exit 2
}

if [ "${1:-}" = "--inside" ]; then
  # In the private mount namespace: mount, check, run.
  fs=$2 scratch=$3
  shift 3
  mount -o loop "$scratch/image" "$scratch/mnt" ||
    die "cannot loop-mount the $fs image (are loop devices usable here?)"
  type=$(stat -f -c %T "$scratch/mnt")
  [ "$type" = "$fs" ] || die "mounted $type, expected $fs"
  TMPDIR=$scratch/mnt "$@"
  exit
fi

[ $# -ge 2 ] || die "usage: $0 xfs|btrfs COMMAND [ARGS...]"
fs=$1
shift
case $fs in
  xfs) mkfs=(mkfs.xfs -q -f) ;;
  btrfs) mkfs=(mkfs.btrfs -q -f) ;;
  *) die "unknown file system '$fs' (xfs or btrfs)" ;;
esac
command -v "${mkfs[0]}" >/dev/null || die "${mkfs[0]} is missing: run ci/install-deps.sh"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/kvfs-loop-$fs.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
truncate -s 512M "$scratch/image"
"${mkfs[@]}" "$scratch/image" >/dev/null || die "${mkfs[*]} failed"
mkdir "$scratch/mnt"
# COMMAND's status is the script's (set -e), after the trap removes the image.
"$root/ci/run-in-namespace.sh" "$(readlink -f "$0")" --inside "$fs" "$scratch" "$@"
