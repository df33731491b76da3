#!/usr/bin/env python3
"""Turns bench/fuse_bench.sh's results into Markdown (stdout).

usage: bench/fuse_report.py OUT_DIR
  reads OUT_DIR/results.jsonl and OUT_DIR/machine.txt.

One table of seconds per workload and target, then kvfs-fuse's speed against
passthrough_ll and ext4 measured in the same run (the other's time divided by
kvfs-fuse's: above 1 is faster), with when each target's result is durable.
"""
import json
import sys

TARGETS = ["ext4", "xfs", "btrfs", "ext4-sync", "passthrough_ll", "kvfs-fuse"]
PHASES = [
    ("untar", "tar xf + sync"),
    ("tar_cold", "tar cf, cold"),
    ("find_cold", "find -ls, cold"),
    ("bigdir_create", "create N files in one directory"),
    ("bigdir_list", "list that directory"),
]
# When what the workload wrote is on stable storage.
DURABLE = {
    "untar": "kvfs-fuse and ext4-sync: every file at its close, every directory, link and "
             "attribute when its call returns; the others: at the final sync",
    "bigdir_create": "kvfs-fuse and ext4-sync: each file when its create returns; the others: "
                     "whenever the page cache is written back (no sync in the workload)",
}
# Issue 19's targets: kvfs-fuse at least as fast as passthrough_ll
# everywhere, cold tar cf at least as fast as ext4.
# ext4-sync: the same durability as kvfs-fuse for the two write workloads.
TARGET_RATIOS = ([(p, "passthrough_ll") for p, _ in PHASES] + [("tar_cold", "ext4")] +
                 [("untar", "ext4-sync"), ("bigdir_create", "ext4-sync")])


def main():
    out = sys.argv[1]
    rows = [json.loads(l) for l in open(out + "/results.jsonl") if l.strip().startswith("{")]
    res = {(r["target"], r["phase"]): r for r in rows}
    try:
        print("Machine and run:\n\n```\n" + open(out + "/machine.txt").read().strip() + "\n```\n")
    except OSError:
        pass

    def seconds(target, phase):
        r = res.get((target, phase))
        if not r or not r.get("ok", True) or r["seconds"] <= 0:
            return None
        return r["seconds"]

    print("Seconds (files/s in brackets; — : did not run or read back something wrong):\n")
    print("| workload | " + " | ".join(TARGETS) + " |")
    print("|---|" + "---:|" * len(TARGETS))
    for phase, label in PHASES:
        cells = []
        for t in TARGETS:
            s = seconds(t, phase)
            r = res.get((t, phase))
            cells.append("—" if s is None else f"{s:,.1f} ({r['files'] / s:,.0f}/s)")
        files = next((res[(t, phase)]["files"] for t in TARGETS if (t, phase) in res), 0)
        print(f"| {label} ({files:,} files) | " + " | ".join(cells) + " |")

    print("\nkvfs-fuse's speed against the others in this run (their seconds / kvfs-fuse's; "
          "the issue's target is >= 1):\n")
    print("| workload | against | ratio | durable |")
    print("|---|---|---:|---|")
    for phase, other in TARGET_RATIOS:
        mine, theirs = seconds("kvfs-fuse", phase), seconds(other, phase)
        ratio = "—" if mine is None or theirs is None else f"{theirs / mine:.2f}"
        label = dict(PHASES)[phase]
        print(f"| {label} | {other} | {ratio} | {DURABLE.get(phase, 'reads only')} |")


if __name__ == "__main__":
    main()
