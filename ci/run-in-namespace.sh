#!/usr/bin/env bash
# Runs a command inside fresh private namespaces, so an NFS test server started
# by it can never clash with another test or with a real server on the machine.
#
#   ci/run-in-namespace.sh COMMAND [ARGS...]
#
# The command gets new network, mount and PID namespaces (no user namespace:
# this needs root) in which:
#   - only the loopback interface exists, it is up, and loopback routes carry
#     `quickack 1` (avoids ~40 ms delayed-ACK stalls on small RPC fragments);
#   - /run and /var/lib/nfs/ganesha are fresh tmpfs mounts (rpcbind state,
#     Ganesha's recovery database, pid files);
#   - rpcbind -w is running (Ganesha registers MOUNT/NLM/NFS with it; NFSv3
#     clients look the MOUNT port up there);
#   - KVFS_E2E_NAMESPACE holds the namespace ids, which the e2e harness checks
#     before it starts ganesha.nfsd.
# This script stays PID 1 of the new PID namespace (a PID 1 ignores signals it
# has no handler for, so it forwards INT/TERM/HUP to the command and reaps
# orphans); the command runs as its child. When the command exits, so does
# PID 1, and the kernel ends every process left in the namespace (rpcbind,
# ganesha). If the outer `unshare` is killed (e.g. a ctest timeout), the
# namespace is killed with it. The exit status is the command's (128+N if it
# died of signal N).
set -euo pipefail

if [ "${1:-}" != "--kvfs-inside-namespace" ]; then
  if [ $# -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "run-in-namespace: needs root (creates network/mount/pid namespaces)" >&2
    exit 2
  fi
  exec unshare --net --mount --pid --fork --kill-child --mount-proc \
    --propagation private -- "$(readlink -f "$0")" --kvfs-inside-namespace "$@"
fi
shift

ip link set lo up
for dst in 127.0.0.0/8 127.0.0.1; do
  ip route replace local "$dst" dev lo proto kernel scope host src 127.0.0.1 \
    table local quickack 1
done

for dir in /run /var/lib/nfs/ganesha; do
  mkdir -p "$dir"
  mount -t tmpfs -o mode=0755 tmpfs "$dir"
done

rpcbind -w

KVFS_E2E_NAMESPACE="$(readlink /proc/self/ns/net) $(readlink /proc/self/ns/pid)"
KVFS_E2E_NAMESPACE+=" $(readlink /proc/self/ns/mnt)"
export KVFS_E2E_NAMESPACE

# An explicit stdin redirection keeps the terminal/pipe (a background job of a
# non-interactive shell would otherwise read /dev/null); env restores the
# SIGINT/SIGQUIT default that such a job would otherwise ignore.
env --default-signal=INT,QUIT "$@" <&0 &
child=$!
for sig in INT TERM HUP; do
  trap 'kill -'"$sig"' "$child" 2>/dev/null || true' "$sig"
done
set +e
while true; do
  wait "$child"
  status=$?
  # `wait` also returns when a trapped signal arrives; go on until the child
  # is really gone.
  kill -0 "$child" 2>/dev/null || break
done
exit "$status"
