#!/usr/bin/env bash
# Keeps one etcd running in a private network namespace for a group of tests
# (a CTest fixture, tests/etcd/CMakeLists.txt):
#
#   tests/etcd/etcd-fixture.sh start DIR [N]   start a cluster of N members
#                                              (default 1) with
#                                              tests/etcd/etcd-server.sh;
#                                              return when it serves
#   tests/etcd/etcd-fixture.sh stop DIR        stop it (the namespace dies
#                                              with it)
#
# `start` runs etcd-server.sh inside ci/run-in-namespace.sh in the
# background (its own session, output in DIR/holder.log), waits until it
# serves, and bind-mounts the namespace's network namespace on DIR/netns so
# that test processes can enter it (tests/etcd/etcd_test_server.h).
# DIR/server.env names the endpoints, the namespace and the server's
# directory. A cluster left by an earlier run in DIR is stopped first; `stop`
# kills only the namespace this script started (the pid in DIR/holder.pid).
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
root=$(readlink -f "$here/../..")

die() {
  echo "etcd-fixture: $*" >&2
  exit 1
}

# The holder's pid if it is still the namespace this script started in $1.
holder_pid() {
  local dir=$1 pid
  pid=$(cat "$dir/holder.pid" 2>/dev/null) || return 1
  grep -qa -- "--kvfs-etcd-serve" "/proc/$pid/cmdline" 2>/dev/null || return 1
  grep -qa -- "$dir" "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

stop() {
  local dir=$1 pid
  if mountpoint -q "$dir/netns" 2>/dev/null; then umount "$dir/netns"; fi
  if pid=$(holder_pid "$dir"); then
    # --kill-child: the unshare's death kills the namespace's PID 1 and so
    # every member.
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "$dir/holder.pid" "$dir/ready" "$dir/failed" "$dir/server.env"
}

# Inside the namespace: start the cluster, describe it, keep the namespace.
serve() {
  local dir=$1 n=$2
  if ! "$here/etcd-server.sh" start "$dir/server" "$n"; then
    touch "$dir/failed"
    exit 1
  fi
  cat >"$dir/server.env" <<ENV
endpoints=$("$here/etcd-server.sh" endpoints "$dir/server")
netns=$dir/netns
server_dir=$dir/server
ENV
  touch "$dir/ready"
  exec sleep infinity
}

start() {
  local dir=$1 n=$2 pid
  stop "$dir"
  mkdir -p "$dir"
  setsid "$root/ci/run-in-namespace.sh" "$here/etcd-fixture.sh" --kvfs-etcd-serve "$dir" "$n" \
    </dev/null >"$dir/holder.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/holder.pid"
  for _ in $(seq 900); do
    [ -e "$dir/ready" ] && break
    if [ -e "$dir/failed" ] || ! kill -0 "$pid" 2>/dev/null; then
      cat "$dir/holder.log" >&2
      stop "$dir"
      die "etcd did not start"
    fi
    sleep 0.1
  done
  [ -e "$dir/ready" ] || { cat "$dir/holder.log" >&2; stop "$dir"; die "etcd: no answer in 90 s"; }
  # The unshare process itself lives in the new network namespace.
  touch "$dir/netns"
  mount --bind "/proc/$pid/ns/net" "$dir/netns"
  echo "etcd-fixture: etcd serving in namespace $(readlink "/proc/$pid/ns/net") ($dir/server.env)"
}

usage="usage: $0 start DIR [1|3] | stop DIR"
case ${1:-} in
  start) [ $# -ge 2 ] || die "$usage"; start "$(realpath -m "$2")" "${3:-1}" ;;
  stop) [ $# -eq 2 ] || die "$usage"; stop "$(realpath -m "$2")" ;;
  --kvfs-etcd-serve) serve "$2" "$3" ;;
  *) die "$usage" ;;
esac
