#!/usr/bin/env bash
# Starts a real S3 server for the tests and benchmarks, in the CURRENT network
# namespace (run it inside ci/run-in-namespace.sh, or through
# tests/s3/s3-fixture.sh, which makes that namespace and keeps it):
#
#   tests/s3/s3-server.sh radosgw DIR [PORT]  Ceph's radosgw on a one-node cluster
#                                             (1 monitor, 1 OSD in memory), S3 on
#                                             127.0.0.1:PORT (8000); ready in 3-7 s
#   tests/s3/s3-server.sh swift DIR [PORT]    OpenStack Swift + s3api on
#                                             127.0.0.1:PORT (8080); ready in 10-20 s
#   tests/s3/s3-server.sh stop-gateway DIR [SIG]  stops radosgw (the cluster stays)
#                                             with SIGTERM (or SIG, e.g. KILL):
#                                             connections are refused until
#   tests/s3/s3-server.sh start-gateway DIR   starts it again and waits until it serves
#
# radosgw takes access key "test", Swift "test:tester" (tempauth's account:user);
# the secret is "testing" for both (region us-east-1, path-style addressing).
# Both keep every file, log and pid under DIR (emptied first). The daemons
# fork into the background and die with the namespace. Exits 0 once the server answers S3 requests, non-zero with the
# tail of its logs otherwise. OBJECTSTORE=bluestore keeps radosgw's objects
# in a sparse file DIR/osd0.block instead of the OSD's memory.
# Recipe and measurements: ../shared/notes/s3.md, docs/stores.md.
set -euo pipefail

die() {
  echo "s3-server: $*" >&2
  exit 1
}

# Waits until 127.0.0.1:$1 accepts connections (at most $2 tenths of a second).
wait_port() {
  local port=$1 tries=$2
  for _ in $(seq "$tries"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Prints the last lines of every log in $1.
log_tails() {
  local f
  for f in "$1"/log/*; do
    [ -f "$f" ] || continue
    echo "--- $f" >&2
    tail -n 15 "$f" >&2
  done
}

ceph_conf() {
  local dir=$1 port=$2 fsid=$3
  cat <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:3300,v1:127.0.0.1:6789]
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
run dir = $dir/run
log file = $dir/log/\$name.log
pid file = $dir/run/\$name.pid
admin socket = $dir/run/\$name.asok
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
mon allow pool size one = true
# radosgw creates its pools one monitor change at a time at first start: at the
# default 1 s interval that takes 10 s instead of about 1.5 s.
paxos propose interval = 0.05
paxos min wait = 0.01
[mon]
mon data = $dir/mon
[osd]
osd data = $dir/osd0
osd objectstore = ${OBJECTSTORE:-memstore}
memstore device bytes = 8589934592
bluestore block path = $dir/osd0.block
bluestore block size = 21474836480
bluestore block create = true
bluestore fsck on mkfs = false
[client.rgw.a]
# radosgw asks for a "secure" monitor connection, which auth none cannot give.
ms mon client mode = crc secure
rgw frontends = beast endpoint=127.0.0.1:$port
rgw data = $dir/rgw
CONF
}

start_gateway() {
  local dir=$1 port
  port=$(cat "$dir/port")
  radosgw -c "$dir/ceph.conf" -n client.rgw.a || { log_tails "$dir"; die "radosgw did not start"; }
  # The port opens once radosgw has created its pools.
  wait_port "$port" 600 || { log_tails "$dir"; die "radosgw did not open port $port"; }
}

start_radosgw() {
  local dir=$1 port=${2:-8000} fsid osd_uuid
  rm -rf "$dir"
  mkdir -p "$dir"/{mon,osd0,run,log}
  echo "$port" >"$dir/port"
  fsid=$(cat /proc/sys/kernel/random/uuid)
  ceph_conf "$dir" "$port" "$fsid" >"$dir/ceph.conf"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:3300,v1:127.0.0.1:6789]" \
    "$dir/monmap" >/dev/null
  ceph-mon -c "$dir/ceph.conf" -i a --mkfs --monmap "$dir/monmap"
  ceph-mon -c "$dir/ceph.conf" -i a
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  ceph -c "$dir/ceph.conf" osd new "$osd_uuid" >/dev/null
  ceph-osd -c "$dir/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid" \
    >"$dir/log/osd-mkfs.out" 2>&1 || { log_tails "$dir"; die "ceph-osd --mkfs failed"; }
  ceph-osd -c "$dir/ceph.conf" -i 0 >"$dir/log/osd.out" 2>&1
  start_gateway "$dir"
  radosgw-admin -c "$dir/ceph.conf" user create --uid=test --display-name=test \
    --access-key=test --secret-key=testing >/dev/null
}

stop_gateway() {
  local dir=$1 sig=${2:-TERM} pid
  pid=$(cat "$dir/run/client.rgw.a.pid" 2>/dev/null) || die "no radosgw pid file in $dir/run"
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

# Swift: one-replica rings (object 6200, container 6201, account 6202), the
# four servers with one worker each, memcached, and a proxy whose pipeline
# has s3api with tempauth (access key "test:tester", secret "testing").
start_swift() {
  local dir=$1 port=${2:-8080}
  rm -rf "$dir"
  mkdir -p "$dir"/{etc,node/sdb1,run,log,cache}
  echo "$port" >"$dir/port"
  /usr/bin/python3 - "$dir/etc" <<'PY'
import sys
from swift.common.ring import RingBuilder
etc = sys.argv[1]
for kind, port in (("object", 6200), ("container", 6201), ("account", 6202)):
    b = RingBuilder(8, 1, 0)
    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
               "device": "sdb1", "weight": 100})
    b.rebalance()
    b.get_ring().save(f"{etc}/{kind}.ring.gz")
    b.save(f"{etc}/{kind}.builder")
PY
  cat >"$dir/etc/swift.conf" <<CONF
[swift-hash]
swift_hash_path_suffix = kvfs-tests
swift_hash_path_prefix = kvfs
[storage-policy:0]
name = Policy-0
default = yes
CONF
  local kind port_of
  for kind in object container account; do
    case $kind in object) port_of=6200 ;; container) port_of=6201 ;; account) port_of=6202 ;; esac
    cat >"$dir/etc/$kind-server.conf" <<CONF
[DEFAULT]
devices = $dir/node
mount_check = false
bind_ip = 127.0.0.1
bind_port = $port_of
workers = 1
user = root
swift_dir = $dir/etc
log_level = WARNING
[pipeline:main]
pipeline = $kind-server
[app:$kind-server]
use = egg:swift#$kind
CONF
  done
  cat >"$dir/etc/proxy-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
workers = 1
user = root
swift_dir = $dir/etc
log_level = WARNING
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging listing_formats cache s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
s3_acl = false
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
reseller_prefix = AUTH
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:11211
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
CONF
  memcached -u root -l 127.0.0.1 -p 11211 -d -P "$dir/run/memcached.pid"
  for kind in object container account proxy; do
    "swift-$kind-server" "$dir/etc/$kind-server.conf" -v >"$dir/log/$kind.log" 2>&1 &
    echo $! >"$dir/run/$kind.pid"
  done
  for _ in $(seq 600); do
    if curl -fsS "http://127.0.0.1:$port/healthcheck" >/dev/null 2>&1; then
      # The proxy answers before the storage servers listen.
      if wait_port 6200 1 && wait_port 6201 1 && wait_port 6202 1; then return 0; fi
    fi
    sleep 0.1
  done
  log_tails "$dir"
  die "swift did not come up on port $port"
}

[ $# -ge 2 ] || die "usage: $0 radosgw|swift|stop-gateway|start-gateway DIR [PORT]"
kind=$1
dir=$(realpath -m "$2")
# A step that fails says which, with the logs so far.
trap 'echo "s3-server: $kind: failed at line $LINENO: $BASH_COMMAND" >&2; log_tails "$dir"' ERR
case $kind in
  radosgw) start_radosgw "$dir" "${3:-8000}" ;;
  swift) start_swift "$dir" "${3:-8080}" ;;
  stop-gateway) stop_gateway "$dir" "${3:-TERM}" ;;
  start-gateway) start_gateway "$dir" ;;
  *) die "unknown command '$kind'" ;;
esac
