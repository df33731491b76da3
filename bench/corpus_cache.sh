# Sourced by bench/run.sh and bench/kv_stores.sh: the corpus cache they
# share. Needs CACHE (a directory) and CLIENT (bench/nfs_bench_client) set.
#
# After sourcing, CACHE/linux-source-6.1.tar is Debian's linux-source-6.1
# tarball decompressed (once), and make_tar writes further corpora.

LINUX_XZ=/usr/src/linux-source-6.1.tar.xz
[ -f "$LINUX_XZ" ] || { echo "$0: $LINUX_XZ missing (ci/install-deps.sh)" >&2; exit 2; }
mkdir -p "$CACHE"
if [ ! -f "$CACHE/linux-source-6.1.tar" ]; then
  echo "decompressing $LINUX_XZ once into $CACHE"
  xz -T2 -dc "$LINUX_XZ" > "$CACHE/linux-source-6.1.tar.part"
  mv "$CACHE/linux-source-6.1.tar.part" "$CACHE/linux-source-6.1.tar"
fi

# make_tar NAME ARGS...: writes CACHE/NAME.tar with the client (once), e.g.
# make_tar linux-3k --tarball="$CACHE/linux-source-6.1.tar" --max-files=3000
make_tar() {
  local name="$1"; shift
  if [ ! -f "$CACHE/$name.tar" ]; then
    "$CLIENT" "$@" --write-tar="$CACHE/$name.tar.part" 2>/dev/null
    mv "$CACHE/$name.tar.part" "$CACHE/$name.tar"
  fi
}
