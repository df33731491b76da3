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
fixture_name=etcd-fixture
# shellcheck source=../namespace-fixture.sh
source "$here/../namespace-fixture.sh"
marker=--kvfs-etcd-serve

stop() {
  fixture_stop "$1" "$marker"
  rm -f "$1/server.env"
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
  local dir=$1 n=$2
  rm -f "$dir/server.env"
  fixture_start "$dir" "$marker" etcd 900 "$here/etcd-fixture.sh" "$marker" "$dir" "$n"
}

usage="usage: $0 start DIR [1|3] | stop DIR"
case ${1:-} in
  start) [ $# -ge 2 ] || fixture_die "$usage"; start "$(realpath -m "$2")" "${3:-1}" ;;
  stop) [ $# -eq 2 ] || fixture_die "$usage"; stop "$(realpath -m "$2")" ;;
  --kvfs-etcd-serve) serve "$2" "$3" ;;
  *) fixture_die "$usage" ;;
esac
