#!/usr/bin/env bash
# Copies the third-party conformance suites (read-only, unmodified upstream
# sources) into the build tree and builds them there:
#
#   tests/conformance/build_suites.sh THIRD_PARTY_DIR DEST_DIR [SUITE...]
#
#   DEST_DIR/pynfs      pynfs with its XDR code generated (setup.py build)
#   DEST_DIR/cthon04    cthon04 basic, general, special built
#   DEST_DIR/fuse-nfs   fuse-nfs with third_party/fuse-nfs.patch, built
#   DEST_DIR/pjdfstest  pjdfstest's fstest program built
#   DEST_DIR/passthrough_ll/passthrough_ll
#                       libfuse's passthrough_ll example, from the upstream
#                       source of Debian's fuse3 package (ci/debian-source.sh),
#                       the FUSE floor kvfs-fuse is compared with
#
# Without SUITE names, all of them.
#
# A suite whose DEST_DIR/<suite>/.kvfs-built stamp exists is left alone (the
# sources are pinned, see third_party/README.md); delete DEST_DIR to rebuild.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 THIRD_PARTY_DIR DEST_DIR [SUITE...]" >&2
  exit 2
fi
src=$(readlink -f "$1")
dest=$2
mkdir -p "$dest"
dest=$(readlink -f "$dest")
shift 2
suites=("$@")
if [ ${#suites[@]} -eq 0 ]; then
  suites=(pynfs cthon04 fuse-nfs pjdfstest passthrough_ll)
fi
ci_dir=$(cd "$(dirname "$0")/../../ci" && pwd)

# Copies $src/$1 to $dest/$1 with write bits (CI's copy has none) and runs
# the remaining arguments there; stamps the result.
build() {
  local suite=$1
  shift
  if [ -e "$dest/$suite/.kvfs-built" ]; then
    return
  fi
  echo "build_suites: building $suite in $dest/$suite"
  rm -rf "$dest/$suite"
  cp -r "$src/$suite" "$dest/$suite"
  chmod -R u+w "$dest/$suite"
  (cd "$dest/$suite" && "$@") >"$dest/$suite.build.log" 2>&1 || {
    echo "build_suites: building $suite failed; end of $dest/$suite.build.log:" >&2
    tail -n 40 "$dest/$suite.build.log" >&2
    exit 1
  }
  touch "$dest/$suite/.kvfs-built"
}

# Git checkouts without symlink support (core.symlinks=false, as in some CI
# copies) store a symlink as a small file holding its target path; pynfs's
# nfs4.0/ shares code with nfs4.1/ through such links. Turns every file whose
# whole content is a relative path to an existing file back into a symlink.
restore_symlinks() {
  local f target
  while IFS= read -r -d '' f; do
    target=$(<"$f")
    case "$target" in
      ../* | */*) ;;
      *) continue ;;
    esac
    if [ "$(wc -l <"$f")" -eq 0 ] && [ -e "$(dirname "$f")/$target" ]; then
      ln -sfn "$target" "$f"
    fi
  done < <(find . -type f -size -200c -print0)
}

build_pynfs() {
  restore_symlinks
  # setup.py runs `python3` from PATH again; keep it Debian's (python3-ply).
  PATH="/usr/bin:$PATH" /usr/bin/python3 setup.py build
}

build_cthon04() {
  # Only these three: tools/ needs an RPC API glibc dropped, lock/ needs NLM.
  local dir
  for dir in basic general special; do
    make -C "$dir"
  done
  # CI's copy of the sources has no execute bits on the scripts.
  chmod +x runtests basic/runtests general/runtests special/runtests general/large4.sh \
    general/mkdummy general/rmdummy
}

build_fuse_nfs() {
  patch -p1 <"$src/fuse-nfs.patch"
  autoreconf -fi
  ./configure
  make
}

build_pjdfstest() {
  autoreconf -ifs
  ./configure
  make pjdfstest
}

# Not from third_party: libfuse's example, as Debian ships libfuse 3.14. The
# defines are what libfuse's own build finds on Linux.
build_passthrough_ll() {
  local tree
  tree=$("$ci_dir/debian-source.sh" fuse3 3.14.0 tar.xz "$dest/_debian-source" \
    example/passthrough_ll.c)
  mkdir -p "$dest/passthrough_ll"
  cc -O2 -Wall -DHAVE_FALLOCATE -DHAVE_COPY_FILE_RANGE -I"$tree/example" \
    "$tree/example/passthrough_ll.c" $(pkg-config --cflags --libs fuse3) \
    -o "$dest/passthrough_ll/passthrough_ll" >"$dest/passthrough_ll.build.log" 2>&1 || {
    echo "build_suites: building passthrough_ll failed:" >&2
    cat "$dest/passthrough_ll.build.log" >&2
    exit 1
  }
}

for suite in "${suites[@]}"; do
  case "$suite" in
    pynfs) build pynfs build_pynfs ;;
    cthon04) build cthon04 build_cthon04 ;;
    fuse-nfs) build fuse-nfs build_fuse_nfs ;;
    pjdfstest) build pjdfstest build_pjdfstest ;;
    passthrough_ll)
      if [ ! -x "$dest/passthrough_ll/passthrough_ll" ]; then
        echo "build_suites: building passthrough_ll in $dest/passthrough_ll"
        build_passthrough_ll
      fi
      ;;
    *)
      echo "build_suites: unknown suite $suite" >&2
      exit 2
      ;;
  esac
done
