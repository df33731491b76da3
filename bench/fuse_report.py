#!/usr/bin/env python3
"""Turns bench/fuse_bench.sh's results into Markdown (stdout).

usage: bench/fuse_report.py OUT_DIR
  reads OUT_DIR/results.jsonl and OUT_DIR/machine.txt.

One table of seconds per workload and target (the tree workloads per corpus,
then the big directory), then kvfs-fuse's speed against passthrough_ll, ext4
and ext4 -o sync measured in the same run (the other's time divided by
kvfs-fuse's: above 1 is faster), with when each result is durable.
"""
import json
import sys

TARGETS = ["ext4", "xfs", "btrfs", "ext4-sync", "passthrough_ll", "kvfs-fuse"]
TREE_PHASES = [("untar", "tar xf + sync"), ("tar_cold", "tar cf, cold"),
               ("find_cold", "find -ls, cold")]
BIGDIR_PHASES = [("bigdir_create", "create N files in one directory"),
                 ("bigdir_list", "list that directory")]
BIGDIR = "big directory"
# When what the workload wrote is on stable storage.
DURABLE = {
    "untar": "kvfs-fuse and ext4-sync: every file at its close, every directory, link and "
             "attribute when its call returns; the others: at the final sync",
    "bigdir_create": "kvfs-fuse and ext4-sync: each file when its create returns; the others: "
                     "whenever the page cache is written back (no sync in the workload)",
}
# Issue 19's targets: kvfs-fuse at least as fast as passthrough_ll on every
# workload, cold tar cf at least as fast as ext4; ext4-sync gives the same
# durability as kvfs-fuse on the two write workloads.
OTHERS = {"untar": ["passthrough_ll", "ext4-sync"], "tar_cold": ["passthrough_ll", "ext4"],
          "find_cold": ["passthrough_ll"], "bigdir_create": ["passthrough_ll", "ext4-sync"],
          "bigdir_list": ["passthrough_ll"]}


def main():
    out = sys.argv[1]
    rows = [json.loads(l) for l in open(out + "/results.jsonl") if l.strip().startswith("{")]
    res, corpora = {}, []
    for r in rows:
        corpus = BIGDIR if r["phase"].startswith("bigdir") else r["corpus"]
        if corpus not in corpora:
            corpora.append(corpus)
        res[(corpus, r["target"], r["phase"])] = r
    try:
        print("Machine and run:\n\n```\n" + open(out + "/machine.txt").read().strip() + "\n```\n")
    except OSError:
        pass

    def seconds(corpus, target, phase):
        r = res.get((corpus, target, phase))
        if not r or not r.get("ok", True) or r["seconds"] <= 0:
            return None
        return r["seconds"]

    def cell(corpus, target, phase):
        r = res.get((corpus, target, phase))
        if r is None:
            return "—"
        if not r.get("ok", True):
            return "failed"
        return f"{r['seconds']:,.1f} ({r['files'] / r['seconds']:,.0f}/s)"

    print("Seconds (files/s in brackets; — : not run; failed: see below):\n")
    print("| corpus | workload | " + " | ".join(TARGETS) + " |")
    print("|---|---|" + "---:|" * len(TARGETS))
    for corpus in corpora:
        phases = BIGDIR_PHASES if corpus == BIGDIR else TREE_PHASES
        for phase, label in phases:
            files = next((res[(corpus, t, phase)]["files"] for t in TARGETS
                          if (corpus, t, phase) in res), 0)
            cells = [cell(corpus, t, phase) for t in TARGETS]
            print(f"| {corpus} ({files:,} files) | {label} | " + " | ".join(cells) + " |")

    print("\nkvfs-fuse's speed against the others in this run (their seconds / kvfs-fuse's; "
          "issue 19's targets: >= 1 against passthrough_ll everywhere and against ext4 for "
          "cold tar cf):\n")
    print("| corpus | workload | against | ratio | durable |")
    print("|---|---|---|---:|---|")
    for corpus in corpora:
        phases = BIGDIR_PHASES if corpus == BIGDIR else TREE_PHASES
        for phase, label in phases:
            for other in OTHERS[phase]:
                mine, theirs = seconds(corpus, "kvfs-fuse", phase), seconds(corpus, other, phase)
                ratio = "—" if mine is None or theirs is None else f"{theirs / mine:.2f}"
                print(f"| {corpus} | {label} | {other} | {ratio} | "
                      f"{DURABLE.get(phase, 'reads only')} |")


if __name__ == "__main__":
    main()
