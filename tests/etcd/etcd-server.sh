#!/usr/bin/env bash
# Starts real etcd servers for the tests and benchmarks, in the CURRENT
# network namespace (run it inside ci/run-in-namespace.sh, or through
# tests/etcd/etcd-fixture.sh, which makes that namespace and keeps it):
#
#   tests/etcd/etcd-server.sh start DIR [N]        a cluster of N members (1 or
#                                                  3; default 1); returns once
#                                                  every member answers
#   tests/etcd/etcd-server.sh stop-member DIR I [SIG]  stops member I (0..N-1)
#                                                  with SIGTERM (or SIG, e.g.
#                                                  KILL) and waits for its end
#   tests/etcd/etcd-server.sh start-member DIR I...  starts members I... again on
#                                                  their data and waits until each
#                                                  answers (a member answers once
#                                                  a quorum runs: restart a lost
#                                                  quorum's members together)
#   tests/etcd/etcd-server.sh stop DIR             stops every member (SIGKILL)
#   tests/etcd/etcd-server.sh endpoints DIR        prints the client URLs,
#                                                  comma-separated
#   tests/etcd/etcd-server.sh leader DIR           prints the index I of the
#                                                  member that leads (waits up
#                                                  to 30 s for an election)
#
# Member I listens for clients on http://127.0.0.1:(2379 + 10000*I) and for
# its peers on the next port (2380, 12380, 22380). Data, logs and pids are in
# DIR/mI (DIR is emptied by `start`). The members run in the background and
# die with the namespace. Recipe and measurements: ../shared/notes/etcd.md,
# docs/coordination.md.
set -euo pipefail

die() {
  echo "etcd-server: $*" >&2
  exit 1
}

client_port() { echo $((2379 + 10000 * $1)); }
peer_port() { echo $((2380 + 10000 * $1)); }

members() { cat "$1/members" 2>/dev/null || die "no cluster in $1 (run start first)"; }

endpoints() {
  local dir=$1 n i urls=()
  n=$(members "$dir")
  for ((i = 0; i < n; i++)); do urls+=("http://127.0.0.1:$(client_port "$i")"); done
  local IFS=,
  echo "${urls[*]}"
}

# Waits until member $2 of $1 answers a health check (at most 60 s).
wait_member() {
  local dir=$1 i=$2 url
  url="http://127.0.0.1:$(client_port "$i")"
  for _ in $(seq 600); do
    if ETCDCTL_API=3 etcdctl --endpoints="$url" --dial-timeout=1s --command-timeout=2s \
      endpoint health >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$(cat "$dir/m$i/pid")" 2>/dev/null; then
      tail -n 20 "$dir/m$i/log" >&2
      die "member $i exited during its start"
    fi
    sleep 0.1
  done
  tail -n 20 "$dir/m$i/log" >&2
  die "member $i did not answer on $url within 60 s"
}

start_member() {
  local dir=$1 i=$2 n cluster=() j
  n=$(members "$dir")
  [ "$i" -ge 0 ] && [ "$i" -lt "$n" ] || die "no member $i in a cluster of $n"
  for ((j = 0; j < n; j++)); do cluster+=("m$j=http://127.0.0.1:$(peer_port "$j")"); done
  local IFS=,
  mkdir -p "$dir/m$i"
  # The initial-cluster flags only matter to a member without data; a
  # restarted member rejoins with what its data directory records.
  etcd --name "m$i" --data-dir "$dir/m$i/data" \
    --listen-client-urls "http://127.0.0.1:$(client_port "$i")" \
    --advertise-client-urls "http://127.0.0.1:$(client_port "$i")" \
    --listen-peer-urls "http://127.0.0.1:$(peer_port "$i")" \
    --initial-advertise-peer-urls "http://127.0.0.1:$(peer_port "$i")" \
    --initial-cluster "${cluster[*]}" --initial-cluster-token kvfs-test \
    --initial-cluster-state new --logger zap --log-outputs stderr \
    </dev/null >>"$dir/m$i/log" 2>&1 &
  echo $! >"$dir/m$i/pid"
}

start() {
  local dir=$1 n=${2:-1} i
  case $n in 1 | 3) ;; *) die "a cluster has 1 or 3 members, not '$n'" ;; esac
  command -v etcd >/dev/null || die "etcd is not installed (ci/install-deps.sh: etcd-server)"
  # A member left running on these ports would answer for the new ones.
  for ((i = 0; i < n; i++)); do
    for port in $(client_port "$i") $(peer_port "$i"); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port $port is in use (an etcd not stopped? tests/etcd/etcd-server.sh stop DIR)"
      fi
    done
  done
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "$n" >"$dir/members"
  for ((i = 0; i < n; i++)); do start_member "$dir" "$i"; done
  for ((i = 0; i < n; i++)); do wait_member "$dir" "$i"; done
}

stop_member() {
  local dir=$1 i=$2 sig=${3:-TERM} pid
  pid=$(cat "$dir/m$i/pid" 2>/dev/null) || die "no pid file for member $i in $dir"
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || return 0
    # A killed member that is our child stays a zombie until reaped.
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

# Prints the index of the leading member, as the live members report it
# (etcdctl endpoint status: each member's id and its leader's id).
leader() {
  local dir=$1 n i out id lead ids=()
  n=$(members "$dir")
  for _ in $(seq 300); do
    lead=""
    for ((i = 0; i < n; i++)); do
      ids[i]=""
      out=$(ETCDCTL_API=3 etcdctl --endpoints="http://127.0.0.1:$(client_port "$i")" \
        --dial-timeout=1s --command-timeout=2s endpoint status -w json 2>/dev/null) || continue
      id=$(sed -n 's/.*"member_id":\([0-9]*\).*/\1/p' <<<"$out")
      ids[i]=$id
      [ -z "$lead" ] && lead=$(sed -n 's/.*"leader":\([0-9]*\).*/\1/p' <<<"$out")
    done
    for ((i = 0; i < n; i++)); do
      if [ -n "$lead" ] && [ "$lead" != 0 ] && [ "${ids[i]}" = "$lead" ]; then
        echo "$i"
        return 0
      fi
    done
    sleep 0.1
  done
  die "no member of $dir leads (no quorum?)"
}

usage="usage: $0 start DIR [1|3] | stop-member DIR I [SIG] | start-member DIR I... | stop DIR | endpoints DIR | leader DIR"
case ${1:-} in
  start) [ $# -ge 2 ] || die "$usage"; start "$(realpath -m "$2")" "${3:-1}" ;;
  stop-member) [ $# -ge 3 ] || die "$usage"; stop_member "$(realpath -m "$2")" "$3" "${4:-TERM}" ;;
  start-member)
    [ $# -ge 3 ] || die "$usage"
    dir=$(realpath -m "$2")
    for i in "${@:3}"; do start_member "$dir" "$i"; done
    for i in "${@:3}"; do wait_member "$dir" "$i"; done
    ;;
  stop)
    [ $# -eq 2 ] || die "$usage"
    dir=$(realpath -m "$2")
    n=$(members "$dir")
    for ((i = 0; i < n; i++)); do stop_member "$dir" "$i" KILL; done
    ;;
  endpoints) [ $# -eq 2 ] || die "$usage"; endpoints "$(realpath -m "$2")" ;;
  leader) [ $# -eq 2 ] || die "$usage"; leader "$(realpath -m "$2")" ;;
  *) die "$usage" ;;
esac
