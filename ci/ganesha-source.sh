#!/usr/bin/env bash
# Fetches the NFS-Ganesha 4.3 upstream source (for its headers: Debian ships
# none) into a cache folder and prints the path of its src/include.
#
# Usage: ci/ganesha-source.sh CACHE_DIR
#
# Idempotent: once CACHE_DIR holds an unpacked tree it only prints the path;
# a kept tarball is unpacked again without network. On a fresh machine it adds
# a deb-src entry for bookworm (same mirror as the existing deb entry) in its
# own file under /etc/apt/sources.list.d, runs apt-get update, and `apt-get
# source --download-only nfs-ganesha` in a scratch folder. That command fails
# on the Debian tarball, which the mirror lacks, but leaves the orig tarball,
# which is all we need: the error is tolerated only if the orig tarball is
# there. Everything but the final path goes to stderr so that CMake can
# capture stdout.
set -euo pipefail

VERSION=4.3
PACKAGE=nfs-ganesha
ORIG="${PACKAGE}_${VERSION}.orig.tar.gz"
SRC_LIST=/etc/apt/sources.list.d/kvfs-ganesha-src.sources

log() { echo "ganesha-source: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

[ $# -eq 1 ] || die "usage: $0 CACHE_DIR"
mkdir -p "$1"
CACHE=$(cd "$1" && pwd)
TREE="$CACHE/nfs-ganesha-$VERSION"
STAMP="$CACHE/.unpacked-$VERSION"

cached() { [ -f "$STAMP" ] && [ -f "$TREE/src/include/fsal_api.h" ]; }
print_include() { echo "$TREE/src/include"; }

# Fast path: already unpacked.
if cached; then
  print_include
  exit 0
fi

# Serialize concurrent configures sharing one cache.
exec 9>"$CACHE/.lock"
flock 9
if cached; then
  print_include
  exit 0
fi

# Unpacks tarball $1 into $TREE; fails if it does not look like Ganesha.
unpack() {
  rm -rf "$TREE" "$CACHE/unpack" "$STAMP"
  mkdir -p "$CACHE/unpack"
  tar -xzf "$1" -C "$CACHE/unpack" || return 1
  # The tarball holds one top-level folder.
  local top
  top=$(find "$CACHE/unpack" -mindepth 1 -maxdepth 1 -type d | head -n 1)
  [ -n "$top" ] && [ -f "$top/src/include/fsal_api.h" ] || return 1
  mv "$top" "$TREE"
  rm -rf "$CACHE/unpack"
  touch "$STAMP"
  log "unpacked into $TREE"
}

# A tarball kept from an earlier download needs no network.
if [ -f "$CACHE/$ORIG" ] && unpack "$CACHE/$ORIG"; then
  print_include
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

added_entry=0
if [ ! -f "$SRC_LIST" ]; then
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

# apt-get source fails on the Debian tarball (missing on the mirror): only the
# presence of the orig tarball decides success.
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
log "downloaded $ORIG (an error about the Debian tarball above is expected)"

cp "$SCRATCH/$ORIG" "$CACHE/$ORIG.tmp"
mv "$CACHE/$ORIG.tmp" "$CACHE/$ORIG"
unpack "$CACHE/$ORIG" || die "unexpected layout of $ORIG"
print_include
