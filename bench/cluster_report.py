#!/usr/bin/python3
"""Markdown report of bench/cluster_bench.sh: OUT/results.jsonl and OUT/machine.txt.

Usage: cluster_report.py OUT. Exits 1 if a result says a client read
something wrong (its first error is shown)."""
import json
import statistics
import sys

out = sys.argv[1]
results = [json.loads(line) for line in open(f"{out}/results.jsonl") if line.strip()]
machine = [line.rstrip() for line in open(f"{out}/machine.txt")]
fields = dict(line.split(": ", 1) for line in machine if ": " in line)
print(f"##### Cluster benchmark, {fields.get('date', '?')}, {fields.get('nproc', '?')} cores, "
      f"load {fields.get('load before', '?')} before, {fields.get('load after', '?')} after")
print()
print("```")
print("\n".join(machine))
print("```")
print()

failed = False
MB = 1e6
tp = [r for r in results if r["bench"] == "throughput"]
if tp:
    print("Aggregate NFSv4 read throughput (every client reads a disjoint share of the files by path "
          "and checks every byte; cold includes each server's load of the tree from the store):")
    print()
    print("| servers x clients each | pass | seconds | files/s | MB/s | files/s per server | "
          "MB/s per server | "
          "server CPU s (each) | server CPU ms per file | client CPU s (all) | etcd requests | "
          "load before -> after | ok |")
    print("|---|---|---:|---:|---:|---|---|---|---:|---:|---:|---|---|")
    for r in tp:
        s = r["seconds"]
        per = ", ".join(f"{p['files'] / s:,.0f}" for p in r["per_server"])
        per_mb = ", ".join(f"{p['bytes'] / s / MB:,.1f}" for p in r["per_server"])
        cpu = ", ".join(f"{p['cpu_seconds']:.1f}" for p in r["per_server"])
        ok = "yes" if r["ok"] else f"**no**: {r.get('first_error', '?')}"
        failed = failed or not r["ok"]
        print(f"| {r['layout']} | {r['pass']} | {s:.2f} | {r['files'] / s:,.0f} | "
              f"{r['bytes'] / s / MB:,.1f} | {per} | {per_mb} | {cpu} | "
              f"{1000 * sum(p['cpu_seconds'] for p in r['per_server']) / max(r['files'], 1):.2f} | "
              f"{r['client_cpu_seconds']:.1f} | {r.get('etcd_requests', '?')} | "
              f"{r['load_before'].split()[0]} -> {r['load_after'].split()[0]} | {ok} |")
    print()

cc = [r for r in results if r["bench"] == "coordcost"]
if cc:
    rounds = len({r["round"] for r in cc})
    print(f"What etcd adds to a load and a write-back of `{cc[0]['tree']}` (cache manager in "
          f"process, directory store; {rounds} rounds, each mode in each round, alternating "
          "which goes first; medians with the range; requests: what etcd served during the "
          "step, from its `grpc_server_started_total`):")
    print()
    print("| step | none ms | etcd ms | etcd / none (per round) | etcd requests (per round) | "
          "by method |")
    print("|---|---:|---:|---:|---:|---|")
    for step in ["open", "load", "change", "flush", "close"]:
        def ms(mode):
            return [r["steps"][step]["ms"] for r in cc if r["coordination"] == mode]
        none, etcd = ms("none"), ms("etcd")
        reqs = [r["steps"][step]["etcd_requests"] for r in cc if r["coordination"] == "etcd"]
        stray = sum(r["steps"][step]["etcd_requests"] for r in cc if r["coordination"] == "none")
        methods = {}
        for r in cc:
            if r["coordination"] == "etcd":
                for m, n in r["steps"][step]["by_method"].items():
                    methods.setdefault(m, []).append(n)
        by = ", ".join(f"{m} {min(v)}" + (f"-{max(v)}" if max(v) != min(v) else "")
                       for m, v in sorted(methods.items()))
        rng = lambda v: f"{statistics.median(v):,.1f} ({min(v):,.0f}-{max(v):,.0f})"
        # Each etcd step against the same round's step without coordination.
        by_round = {(r["round"], r["coordination"]): r["steps"][step]["ms"] for r in cc}
        ratios = [by_round[(n, "etcd")] / by_round[(n, "none")]
                  for n in sorted({r["round"] for r in cc})
                  if (n, "etcd") in by_round and by_round.get((n, "none"), 0) > 0]
        ratio = (f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
                 if ratios else "-")
        print(f"| {step} | {rng(none)} | {rng(etcd)} | {ratio} | "
              f"{min(reqs)}" + (f"-{max(reqs)}" if max(reqs) != min(reqs) else "") +
              f" | {by or '-'}" + (f" (and {stray} without coordination?)" if stray else "") + " |")
    print()
sys.exit(1 if failed else 0)
