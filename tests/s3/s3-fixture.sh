#!/usr/bin/env bash
# Keeps S3 servers running, each in a private network namespace of its own,
# for the tests (a CTest fixture, tests/s3/CMakeLists.txt):
#
#   tests/s3/s3-fixture.sh start KIND... BASE   start each (radosgw, swift) in
#                                               BASE/KIND at once; return when
#                                               all serve
#   tests/s3/s3-fixture.sh stop BASE            stop every server under BASE
#                                               (the namespaces die with them)
#
# For one server in BASE/KIND:
# `start` runs tests/s3/s3-server.sh inside ci/run-in-namespace.sh in the
# background (its own session, output in DIR/holder.log), waits until the
# server answers, and bind-mounts the namespace's network namespace on
# DIR/netns, so that test processes in other namespaces can reach it
# (tests/s3/s3_test_server.h opens their connections there). DIR/server.env
# names the endpoint and credentials. A server left by an earlier run in the
# same DIR is stopped first. `stop` kills only the namespace this script
# started (by the pid in DIR/holder.pid).
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
fixture_name=s3-fixture
# shellcheck source=../namespace-fixture.sh
source "$here/../namespace-fixture.sh"
marker=--kvfs-s3-serve

die() { fixture_die "$@"; }

stop() { fixture_stop "$1" "$marker"; }

# Inside the namespace: start the server (a second time if the first
# fails: a daemon of a busy machine may miss its start), say so, and keep the
# namespace.
serve() {
  local kind=$1 dir=$2 port
  case $kind in radosgw) port=8000 ;; swift) port=8080 ;; *) die "unknown server '$kind'" ;; esac
  if ! "$here/s3-server.sh" "$kind" "$dir/server" "$port"; then
    echo "s3-fixture: $kind failed to start; killing its daemons and trying again" >&2
    # Every process of this namespace but this script and its PID 1.
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      [ "$p" -eq 1 ] || [ "$p" -eq $$ ] || kill -9 "$p" 2>/dev/null || true
    done
    sleep 1
    if ! "$here/s3-server.sh" "$kind" "$dir/server" "$port"; then
      touch "$dir/failed"
      exit 1
    fi
  fi
  local key=test
  [ "$kind" = swift ] && key=test:tester
  cat >"$dir/server.env" <<ENV
kind=$kind
endpoint=http://127.0.0.1:$port
access_key=$key
secret_key=testing
region=us-east-1
netns=$dir/netns
server_dir=$dir/server
ENV
  touch "$dir/ready"
  exec sleep infinity
}

start() {
  local kind=$1 dir=$2
  rm -f "$dir/server.env"
  fixture_start "$dir" "$marker" "$kind" 1200 "$here/s3-fixture.sh" "$marker" "$kind" "$dir"
  echo "s3-fixture: $kind is described in $dir/server.env"
}

usage="usage: $0 start radosgw|swift... BASE | stop BASE"
case ${1:-} in
  start)
    [ $# -ge 3 ] || die "$usage"
    base=$(realpath -m "${!#}")
    pids=()
    for kind in "${@:2:$#-2}"; do
      start "$kind" "$base/$kind" &
      pids+=($!)
    done
    status=0
    for pid in "${pids[@]}"; do wait "$pid" || status=1; done
    [ "$status" -eq 0 ] || { "$0" stop "$base"; die "not every server started"; }
    ;;
  stop)
    [ $# -eq 2 ] || die "$usage"
    for dir in "$(realpath -m "$2")"/*/; do
      [ -e "$dir/holder.pid" ] && stop "${dir%/}"
    done
    exit 0
    ;;
  --kvfs-s3-serve) serve "$2" "$3" ;;
  *) die "$usage" ;;
esac
