# Sourced by the fixture scripts of the test servers (tests/s3/s3-fixture.sh,
# tests/etcd/etcd-fixture.sh): keeps a server running in private namespaces
# (ci/run-in-namespace.sh) between a CTest fixture's setup and cleanup, and
# lets test processes in other namespaces enter its network namespace.
#
# For a server in DIR, started with a MARKER argument (a word of its command
# line that identifies it, such as --kvfs-s3-serve):
#   DIR/holder.pid   the unshare process holding the namespaces
#   DIR/holder.log   the output of everything in them
#   DIR/ready        made by the server's command once it serves
#   DIR/failed       made by it if it cannot start
#   DIR/netns        the network namespace, bind-mounted
# Callers set fixture_name (the prefix of messages).

fixture_root=$(readlink -f "$(dirname "${BASH_SOURCE[0]}")/..")

fixture_die() {
  echo "${fixture_name:-fixture}: $*" >&2
  exit 1
}

# The holder's pid if it is still the namespace started for DIR $1 with
# marker $2.
fixture_holder_pid() {
  local dir=$1 marker=$2 pid
  pid=$(cat "$dir/holder.pid" 2>/dev/null) || return 1
  grep -qa -- "$marker" "/proc/$pid/cmdline" 2>/dev/null || return 1
  grep -qa -- "$dir" "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

# fixture_stop DIR MARKER: stops what fixture_start started there.
fixture_stop() {
  local dir=$1 marker=$2 pid
  if mountpoint -q "$dir/netns" 2>/dev/null; then umount "$dir/netns"; fi
  if pid=$(fixture_holder_pid "$dir" "$marker"); then
    # unshare ignores SIGTERM while it waits; its death SIGKILLs the
    # namespace's PID 1 (--kill-child), and with it every server process.
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "$dir/holder.pid" "$dir/ready" "$dir/failed"
}

# fixture_start DIR MARKER WHAT TENTHS COMMAND...: stops what an earlier run
# left in DIR, runs COMMAND (whose arguments include MARKER and DIR) inside
# ci/run-in-namespace.sh in the background, in a session of its own, waits at
# most TENTHS tenths of a second for DIR/ready and bind-mounts the network
# namespace on DIR/netns. On failure prints the log, stops it and exits.
fixture_start() {
  local dir=$1 marker=$2 what=$3 tenths=$4 pid
  shift 4
  fixture_stop "$dir" "$marker"
  mkdir -p "$dir"
  setsid "$fixture_root/ci/run-in-namespace.sh" "$@" </dev/null >"$dir/holder.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/holder.pid"
  for _ in $(seq "$tenths"); do
    [ -e "$dir/ready" ] && break
    if [ -e "$dir/failed" ] || ! kill -0 "$pid" 2>/dev/null; then
      cat "$dir/holder.log" >&2
      fixture_stop "$dir" "$marker"
      fixture_die "$what did not start"
    fi
    sleep 0.1
  done
  if [ ! -e "$dir/ready" ]; then
    cat "$dir/holder.log" >&2
    fixture_stop "$dir" "$marker"
    fixture_die "$what: no answer in $((tenths / 10)) s"
  fi
  # The unshare process itself lives in the new network namespace.
  touch "$dir/netns"
  mount --bind "/proc/$pid/ns/net" "$dir/netns"
  echo "$fixture_name: $what serving in namespace $(readlink "/proc/$pid/ns/net")"
}
