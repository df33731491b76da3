#!/usr/bin/env bash
# The Debian packages, as a user gets them (docs/operations.md):
#   package_test.sh BUILD_DIR SOURCE_DIR
# builds kvfs-plugins, nfs-ganesha-kvfs and kvfs-tools with CPack from
# BUILD_DIR, installs them with `apt-get install ./*.deb`, makes a store with
# the installed `kvfs` (no KVFS_*_PLUGIN_PATH: the installed plugins must be
# found), serves it with Debian's ganesha.nfsd in private namespaces with a
# configuration that has no Plugins_Dir, reads a file back through NFS
# (nfs-cat, NFSv3 and NFSv4), then removes the packages with
# `apt-get remove --purge` and checks that every file they installed is gone.
#
# The machine itself is never changed: the script runs in a private mount
# namespace in which /usr, /etc and /var are overlays whose writable layer is
# a tmpfs, so the installation (files, dpkg's database, apt's logs) exists
# only there and vanishes with the namespace, even if the test is killed.
# It refuses to run (and fails) if one of the packages is installed on the
# machine already: the removal check needs them absent below the overlay.
set -euo pipefail
PACKAGES=(kvfs-plugins nfs-ganesha-kvfs kvfs-tools)
OVERLAID=(/usr /etc /var)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
fail() { echo "package_test: FAIL: $*" >&2; exit 1; }

if [ "${1:-}" != "--inside-overlay" ]; then
  [ $# -eq 2 ] || { echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2; exit 2; }
  [ "$(id -u)" -eq 0 ] || fail "needs root (a mount namespace and overlay mounts)"
  for p in "${PACKAGES[@]}"; do
    if installed "$p"; then
      fail "$p is installed on this machine already (by someone else?); remove it first: apt-get remove --purge ${PACKAGES[*]}"
    fi
  done
  exec unshare --mount --propagation private -- "$(readlink -f "$0")" --inside-overlay "$@"
fi
shift
BUILD_DIR=$(readlink -f "$1")
SOURCE_DIR=$(readlink -f "$2")

WORK=$(mktemp -d /tmp/kvfs-package-test-XXXXXX)
apt_quiet=(-o DPkg::Lock::Timeout=900 -y -qq)
cleanup() {
  local status=$?
  # The overlays keep their layers alive until the namespace ends.
  umount -l "$WORK/overlay" 2>/dev/null || true
  rm -rf "$WORK"
  exit $status
}
trap cleanup EXIT

# Every change below /usr, /etc and /var lands in $WORK/overlay, a tmpfs seen
# only by this mount namespace.
mkdir "$WORK/overlay"
mount -t tmpfs -o mode=0755 kvfs-package-test "$WORK/overlay"
for dir in "${OVERLAID[@]}"; do
  layer="$WORK/overlay/${dir#/}"
  mkdir -p "$layer/upper" "$layer/work"
  mount -t overlay overlay -o "lowerdir=$dir,upperdir=$layer/upper,workdir=$layer/work" "$dir" ||
    fail "overlay on $dir"
done

echo "== building the packages"
cpack --config "$BUILD_DIR/CPackConfig.cmake" -B "$WORK/debs" >"$WORK/cpack.log" 2>&1 ||
  { cat "$WORK/cpack.log"; fail "cpack"; }
debs=("$WORK"/debs/*.deb)
[ ${#debs[@]} -eq 3 ] || fail "expected 3 packages, got: ${debs[*]}"
for deb in "${debs[@]}"; do
  echo "-- $(basename "$deb")"
  dpkg-deb -f "$deb" Package Version Depends Recommends
done
# The module's package names the exact nfs-ganesha it was built against, and
# the shared libraries' packages come from dpkg-shlibdeps.
ganesha_version=$(dpkg-query -W -f='${Version}' nfs-ganesha)
fsal_depends=$(dpkg-deb -f "$WORK"/debs/nfs-ganesha-kvfs_*.deb Depends)
[[ $fsal_depends == *"nfs-ganesha (= $ganesha_version)"* ]] || fail "nfs-ganesha-kvfs Depends: $fsal_depends"
[[ $fsal_depends == *"kvfs-plugins (= "* ]] || fail "nfs-ganesha-kvfs Depends: $fsal_depends"
plugin_depends=$(dpkg-deb -f "$WORK"/debs/kvfs-plugins_*.deb Depends)
[[ $plugin_depends == *librocksdb* && $plugin_depends == *libcurl* ]] ||
  fail "kvfs-plugins Depends lacks shared libraries: $plugin_depends"
tools_depends=$(dpkg-deb -f "$WORK"/debs/kvfs-tools_*.deb Depends)
[[ $tools_depends == *libfuse3* && $tools_depends == *libarchive* ]] ||
  fail "kvfs-tools Depends lacks shared libraries: $tools_depends"

echo "== apt-get install ./*.deb"
(cd "$WORK/debs" && DEBIAN_FRONTEND=noninteractive apt-get "${apt_quiet[@]}" install ./*.deb) >"$WORK/apt.log" 2>&1 ||
  { cat "$WORK/apt.log"; fail "apt-get install"; }
for p in "${PACKAGES[@]}"; do installed "$p" || fail "$p not installed"; done
[ -f "$WORK/overlay/usr/upper/bin/kvfs" ] && [ -f "$WORK/overlay/var/upper/lib/dpkg/status" ] ||
  fail "the installation did not land in the overlay"
dpkg -L "${PACKAGES[@]}" | sort -u >"$WORK/files"
fsal_dir=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/ganesha
for f in "$fsal_dir/libfsalkvfs.so" /usr/bin/kvfs /usr/bin/kvfs-ingest /usr/bin/kvfs-export \
  /usr/bin/kvfs-evict /usr/bin/kvfs-fuse /usr/share/doc/nfs-ganesha-kvfs/examples/ganesha.conf \
  "/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/kvfs/libkvfs-kv-rocksdb.so" \
  "/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/kvfs/libkvfs-store-s3.so"; do
  grep -qx "$f" "$WORK/files" || fail "no $f in the packages"
  [ -e "$f" ] || fail "$f not installed"
done

echo "== the installed commands"
unset KVFS_KV_PLUGIN_PATH KVFS_STORE_PLUGIN_PATH
for cmd in kvfs kvfs-ingest kvfs-export kvfs-evict kvfs-fuse; do
  "/usr/bin/$cmd" --help >"$WORK/help" 2>&1 || fail "$cmd --help exits $?"
  grep -qi "usage" "$WORK/help" || fail "$cmd --help prints no usage"
done
head -c 100000 /dev/urandom >"$WORK/payload"
mkdir "$WORK/trees"
/usr/bin/kvfs mkdir --db "$WORK/db" -p /pkg
/usr/bin/kvfs put --db "$WORK/db" "$WORK/payload" /pkg/
chmod 0755 "$WORK"

echo "== Debian's ganesha.nfsd, no Plugins_Dir"
cat >"$WORK/ganesha.conf" <<CONF
NFS_CORE_PARAM { Protocols = 3, 4; Enable_NLM = false; Enable_RQUOTA = false; }
NFSV4 { Graceless = true; Only_Numeric_Owners = true; }
EXPORT {
  Export_Id = 1; Path = "/kvfs"; Pseudo = "/kvfs"; Access_Type = RW; Squash = No_Root_Squash;
  FSAL { Name = KVFS; db_path = "$WORK/db"; persistent_store = "$WORK/trees"; }
}
CONF
! grep -qi plugins_dir "$WORK/ganesha.conf" || fail "the configuration names a Plugins_Dir"
"$SOURCE_DIR/ci/run-in-namespace.sh" "$SOURCE_DIR/tests/package/serve_and_read.sh" "$WORK" ||
  fail "serving the store through the installed module"

echo "== apt-get remove --purge"
DEBIAN_FRONTEND=noninteractive apt-get "${apt_quiet[@]}" remove --purge "${PACKAGES[@]}" >"$WORK/apt.log" 2>&1 ||
  { cat "$WORK/apt.log"; fail "apt-get remove"; }
for p in "${PACKAGES[@]}"; do ! installed "$p" || fail "$p still installed"; done
left=0
while read -r f; do
  if [ -f "$f" ] || [ -L "$f" ]; then
    echo "left behind: $f" >&2
    left=1
  fi
done <"$WORK/files"
[ $left -eq 0 ] || fail "files left after removal"
[ -d "$fsal_dir" ] || fail "$fsal_dir (nfs-ganesha's) removed with the packages"
echo "package_test: OK ($(grep -c . "$WORK/files") paths installed and removed)"
