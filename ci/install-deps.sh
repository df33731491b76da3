#!/usr/bin/env bash
# Installs every Debian package KVFS needs to build, test and serve.
# Idempotent: packages already present are not reinstalled, and nothing is
# printed beyond a one-line summary when there is nothing to do.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config clang-format git
  # the build matrix's second compiler (ci/build.sh: clang Release, compile only)
  clang
  # core
  librocksdb-dev liblmdb-dev libleveldb-dev libgtest-dev libgmock-dev libbenchmark-dev libxxhash-dev
  libzstd-dev liblz4-dev libsnappy-dev libbz2-dev zlib1g-dev
  # ingest
  libarchive-dev libarchive-tools xz-utils zstd
  # the S3 persistent store plugin (store/s3: libcurl's SigV4 signing, pugixml)
  libcurl4-openssl-dev libpugixml-dev libssl-dev
  # coordination between servers (coord/: etcd's JSON gateway over libcurl,
  # nlohmann-json); etcd itself for the tests (tests/etcd/etcd-server.sh) and etcdctl
  nlohmann-json3-dev etcd-server etcd-client
  # S3 servers of the tests (tests/s3/s3-server.sh): Ceph's radosgw on a one-node
  # cluster, and OpenStack Swift with s3api
  ceph-mon ceph-osd radosgw
  swift swift-proxy swift-object swift-container swift-account python3-swift memcached
  # the real tree of the ingest round-trip test and benchmark (/usr/src/linux-source-6.1.tar.xz)
  linux-source-6.1
  # Ganesha FSAL (headers come from the orig source tarball, see ci/ganesha-source.sh)
  nfs-ganesha nfs-ganesha-mem nfs-ganesha-vfs libntirpc-dev liburcu-dev libdbus-1-dev libkrb5-dev libnfsidmap-dev
  libcap-dev libblkid-dev uuid-dev dpkg-dev
  # end-to-end tests: NFS client library, rpcbind, namespaces
  libnfs-dev libnfs-utils rpcbind iproute2 util-linux procps
  # conformance suites (built from ../shared/third_party)
  python3 python3-ply autoconf automake libtool libfuse-dev fuse3
  libtirpc-dev libnsl-dev groff-base time patch pkg-config
  # kvfs-fuse (libfuse 3 low-level API); its tests and benchmarks: fusermount3,
  # the file systems it is raced against on loop-mounted images
  libfuse3-dev fuse3 xfsprogs btrfs-progs e2fsprogs
  # metrics (metrics/: Prometheus exposition over HTTP) and their test (promtool, curl)
  prometheus-cpp-dev prometheus curl
  # benchmarks (bench/run.sh, bench/kv_stores.sh): the linux tree corpus,
  # profiler, plots, syscall counts (bench/store_load.sh)
  linux-source-6.1 linux-perf python3-matplotlib strace
  # the S3 benchmarks' baseline client (bench/s3_bench.sh: aws s3 cp, aws s3api list-objects-v2)
  awscli
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Another apt run (a second checkout's build) may hold the lock: wait for it.
lock_wait=(-o DPkg::Lock::Timeout=900)
apt-get "${lock_wait[@]}" update -qq
apt-get "${lock_wait[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
