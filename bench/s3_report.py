#!/usr/bin/env python3
"""Turns bench/s3_bench.sh's results.jsonl into the markdown tables of
docs/benchmarks.md ("Persistent store in a bucket")."""
import json
import statistics
import sys


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]

    def pick(phase, **kw):
        return [r for r in rows if r["phase"] == phase and all(r.get(k) == v for k, v in kw.items())]

    def med(phase, **kw):
        xs = [r["seconds"] for r in pick(phase, **kw)]
        return statistics.median(xs) if xs else float("nan")

    machine = pick("machine")[0]
    print(f"##### S3 benchmark, {machine['date']}, {machine['cores']} cores, load {machine['load']}\n")
    rounds = len([r for r in pick("load", kind="tar") if not r.get("counted")])
    print(f"Cold load of linux-source-6.1 from the bucket into a fresh cache, {rounds} rounds; each "
          "load is compared with the downloads of the same round (medians, seconds; the ratios are "
          "the median and range of the per-round ratios):\n")
    print("| tarball | aws s3 cp - | curl | KVFS cold load | load / aws s3 cp | load / curl |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, base, label in (("tar", "tar", "`.tar` (1.36 GB)"),
                              ("tar-none", "tar", "`.tar`, `bulk_load_compression=none`"),
                              ("xz", "xz", "`.tar.xz` (138 MB)")):
        loads = [r for r in pick("load", kind=kind) if not r.get("counted")]
        if not loads:
            continue
        ratios = {"aws_s3_cp": [], "curl": []}
        for r in loads:
            for phase in ratios:
                base_s = [x["seconds"] for x in pick(phase, kind=base, round=r["round"])]
                if base_s:
                    ratios[phase].append(r["seconds"] / base_s[0])

        def fmt(xs):
            return f"{statistics.median(xs):.2f}x ({min(xs):.2f}-{max(xs):.2f})"

        print(f"| {label} | {med('aws_s3_cp', kind=base):.2f} | {med('curl', kind=base):.2f} | "
              f"{statistics.median(r['seconds'] for r in loads):.2f} | {fmt(ratios['aws_s3_cp'])} | "
              f"{fmt(ratios['curl'])} |")

    print("\nListing and start-up with many tarballs in the bucket (medians, seconds):\n")
    aws_list = med("aws_list")
    n = pick("aws_list")[0]["objects"]
    print("| step | seconds | per tarball | vs aws s3api list-objects-v2 |")
    print("|---|---:|---:|---:|")
    for phase, label in (("aws_list", "aws s3api list-objects-v2 (baseline)"),
                         ("list", "PersistentStore::List"),
                         ("first_start", "first start: list + a stub per tarball"),
                         ("restart", "restart: adopt + list")):
        xs = [r["seconds"] for r in pick(phase) if not r.get("counted")]
        s = statistics.median(xs)
        print(f"| {label} | {s:.2f} | {s / n * 1e6:.0f} µs | {s / aws_list:.2f}x |")
    counted = [r for r in pick("list") if r.get("counted")]
    if counted:
        c = counted[0]
        print(f"\nThe listing of {n:,} tarballs took {c['requests']} requests "
              f"({c['bytes_down'] / 1e6:.1f} MB from the server).")

    print("\nWhat the server sees (counted by a proxy):\n")
    print("| access | requests | by method | bytes from the server | bytes to the server | seconds |")
    print("|---|---:|---|---:|---:|---:|")
    load = [r for r in pick("load", kind="tar") if r.get("counted")][0]
    wb = [r for r in pick("writeback") if r.get("counted")][0]
    files = [r for r in pick("read_files") if "requests" in r][0]
    files_time = [r for r in pick("read_files") if "requests" not in r]

    def methods(r):
        return ", ".join(f"{k} {v}" for k, v in sorted(r["by_method"].items()))

    print(f"| KVFS: cold load of the tree (`.tar`) | {load['requests']} | {methods(load)} | "
          f"{load['bytes_down']:,} | {load['bytes_up']:,} | {load['seconds']:.2f} |")
    print(f"| KVFS: write-back after one changed file | {wb['requests']} | {methods(wb)} | "
          f"{wb['bytes_down']:,} | {wb['bytes_up']:,} | {wb['seconds']:.2f} |")
    t = f"{files_time[0]['seconds']:.2f}" if files_time else "-"
    print(f"| the tree kept file by file: every file read once ({files['files']:,} files, "
          f"{files['directories']:,} directories) | {files['requests']:,} | {methods(files)} | "
          f"{files['bytes_down']:,} | {files['bytes_up']:,} | {t} |")
    print(f"\nA load costs {files['requests'] / load['requests']:,.0f}x fewer requests than reading "
          f"the files one by one, and every later read of the tree costs the bucket nothing.")


if __name__ == "__main__":
    main(sys.argv[1])
