#!/usr/bin/env python3
"""Counts what a traced run asked of the persistent store (bench/store_load.sh).

Usage: store_load.py STORE_DIR "LABEL=TRACE_FILE=SECONDS"...

A trace is `strace -f` output of openat/getdents64/stat*/read/pread64. A
file descriptor belongs to the store if it was opened on a path below
STORE_DIR or on a relative path (the traced commands work with absolute
paths outside the store and only walk the store relative to a directory in
it, as `tar -C` does); stats count likewise. Prints a markdown table.
"""
import re
import sys

store = sys.argv[1].rstrip("/") + "/"
OPEN = re.compile(r'^(\d+) +open(?:at)?\((?:AT_FDCWD|\d+), "([^"]*)".* = (\d+)$')
CALL = re.compile(r'^(\d+) +(read|pread64|getdents64)\((\d+),.* = (\d+)$')
STAT = re.compile(r'^(\d+) +(?:newfstatat|statx|lstat|stat)\((?:AT_FDCWD, |\d+, )?"([^"]*)"')


def in_store(p):
    return p.startswith(store) or p + "/" == store or not p.startswith("/")


print("| access | seconds | opens | directory reads | stats | read calls | bytes read |")
print("|---|---:|---:|---:|---:|---:|---:|")
for arg in sys.argv[2:]:
    label, path, seconds = arg.rsplit("=", 2)
    store_fds = set()
    opens = dirs = stats = reads = nbytes = 0
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        m = OPEN.match(line)
        if m:
            fd = int(m.group(3))
            if in_store(m.group(2)):
                store_fds.add(fd)
                opens += 1
            else:
                store_fds.discard(fd)
            continue
        m = CALL.match(line)
        if m and int(m.group(3)) in store_fds:
            if m.group(2) == "getdents64":
                dirs += 1
            else:
                reads += 1
                nbytes += int(m.group(4))
            continue
        m = STAT.match(line)
        if m and in_store(m.group(2)):
            stats += 1
    print(f"| {label} | {float(seconds):.1f} | {opens:,} | {dirs:,} | {stats:,} | {reads:,} | "
          f"{nbytes:,} |")
print()
print("Counted from strace: only files below the persistent store. A descriptor number reused "
      "for another file stops counting at that open. Reading the tree back through KVFS "
      "afterwards adds nothing here: it is served from the key/value store.")
