#!/usr/bin/env bash
# Fetches the upstream source of a Debian bookworm source package (its orig
# tarball) into a cache folder, unpacks it there and prints the path of the
# unpacked tree.
#
# Usage: ci/debian-source.sh PACKAGE VERSION SUFFIX CACHE_DIR MARKER
#   PACKAGE_VERSION.orig.SUFFIX is the tarball (SUFFIX: tar.gz, tar.xz, ...);
#   the tree is CACHE_DIR/PACKAGE-VERSION; MARKER is a path inside it that
#   must exist (checks the layout).
#
# Idempotent: once CACHE_DIR holds an unpacked tree it only prints the path;
# a kept tarball is unpacked again without network. Otherwise, unless apt
# already knows a deb-src entry, it adds one for bookworm (same mirror as the
# existing deb entry) in its own file under /etc/apt/sources.list.d, runs
# apt-get update, and `apt-get source --download-only PACKAGE` in a scratch
# folder. That command may fail on the Debian tarball when a mirror lacks it,
# but the orig tarball is all we need: the error is tolerated only if the
# orig tarball is there. Everything but the final path goes to stderr so that
# CMake can capture stdout. Concurrent runs on one cache are serialized.
set -euo pipefail

log() { echo "debian-source: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

[ $# -eq 5 ] || die "usage: $0 PACKAGE VERSION SUFFIX CACHE_DIR MARKER"
PACKAGE=$1
VERSION=$2
SUFFIX=$3
mkdir -p "$4"
CACHE=$(cd "$4" && pwd)
MARKER=$5
ORIG="${PACKAGE}_${VERSION}.orig.${SUFFIX}"
TREE="$CACHE/$PACKAGE-$VERSION"
STAMP="$CACHE/.unpacked-$VERSION"
SRC_LIST=/etc/apt/sources.list.d/kvfs-debian-src.sources

cached() { [ -f "$STAMP" ] && [ -e "$TREE/$MARKER" ]; }

# Fast path: already unpacked.
if cached; then
  echo "$TREE"
  exit 0
fi

exec 9>"$CACHE/.lock"
flock 9
if cached; then
  echo "$TREE"
  exit 0
fi

# Unpacks tarball $1 into $TREE; fails if it does not hold MARKER.
unpack() {
  rm -rf "$TREE" "$CACHE/unpack" "$STAMP"
  mkdir -p "$CACHE/unpack"
  tar -xf "$1" -C "$CACHE/unpack" || return 1
  # The tarball holds one top-level folder.
  local top
  top=$(find "$CACHE/unpack" -mindepth 1 -maxdepth 1 -type d | head -n 1)
  [ -n "$top" ] && [ -e "$top/$MARKER" ] || return 1
  mv "$top" "$TREE"
  rm -rf "$CACHE/unpack"
  touch "$STAMP"
  log "unpacked $ORIG into $TREE"
}

# A tarball kept from an earlier download needs no network.
if [ -f "$CACHE/$ORIG" ] && unpack "$CACHE/$ORIG"; then
  echo "$TREE"
  exit 0
fi

command -v apt-get >/dev/null || die "apt-get not found (Debian needed)"
command -v dpkg-source >/dev/null || die "dpkg-source not found: apt-get install dpkg-dev"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    die "need root for: $*"
  fi
}

# The mirror of the main Debian archive: the URIs of the deb822 stanza whose
# Suites name plain bookworm, or the URI of a one-line bookworm entry.
mirror_uri() {
  local f=/etc/apt/sources.list.d/debian.sources
  if [ -f "$f" ]; then
    awk '
      /^[[:space:]]*$/ { if (uri != "" && suite) { print uri; exit } uri = ""; suite = 0; next }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") suite = 1 }
      END { if (uri != "" && suite) print uri }
    ' "$f"
  fi
  if [ -f /etc/apt/sources.list ]; then
    awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list
  fi
}

# Whether apt already has a deb-src entry (ours, or one an earlier version of
# this script or the administrator added).
has_deb_src() {
  grep -qs -E '^[[:space:]]*(Types:.*deb-src|deb-src[[:space:]])' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
}

added_entry=0
if ! has_deb_src; then
  uri=$(mirror_uri | head -n 1)
  [ -n "$uri" ] || die "no Debian bookworm mirror found in /etc/apt"
  log "adding a deb-src entry for $uri in $SRC_LIST"
  printf 'Types: deb-src\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By: %s\n' \
    "$uri" /usr/share/keyrings/debian-archive-keyring.gpg | as_root tee "$SRC_LIST" >/dev/null
  added_entry=1
fi

SCRATCH=$(mktemp -d "$CACHE/download.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
# apt drops privileges to _apt for downloads; let it write here.
chmod 0777 "$SCRATCH"

# Only the presence of the orig tarball decides success.
download() {
  (cd "$SCRATCH" && apt-get source --download-only -qq "$PACKAGE" 1>&2) || true
  [ -f "$SCRATCH/$ORIG" ]
}

# With a new entry the source index is missing: update first. Otherwise try
# the existing index and update only if that fails.
if [ "$added_entry" -eq 1 ] || ! download; then
  log "apt-get update"
  as_root apt-get -o DPkg::Lock::Timeout=900 update -qq >&2 || die "apt-get update failed"
  download || die "$ORIG was not downloaded"
fi
log "downloaded $ORIG"

cp "$SCRATCH/$ORIG" "$CACHE/$ORIG.tmp"
mv "$CACHE/$ORIG.tmp" "$CACHE/$ORIG"
unpack "$CACHE/$ORIG" || die "unexpected layout of $ORIG (no $MARKER)"
echo "$TREE"
