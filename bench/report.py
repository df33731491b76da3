#!/usr/bin/env python3
"""Turns bench/run.sh's results.jsonl into Markdown tables (stdout) and a plot.

usage: bench/report.py OUT_DIR [PLOT]
  reads OUT_DIR/results.jsonl and OUT_DIR/machine.txt, and the direct parts
  when they ran (memory.jsonl, ingest.md, store-load.md); writes the plot to
  OUT_DIR/PLOT (default nfs-bench.png) if matplotlib is there, and links it
  by that name.

The machine the run was on, then one table per corpus: files/s of each phase per target, then KVFS's ratio
against FSAL_MEM and FSAL_VFS measured in the same run, then the issue's
targets with their measured ratios.
"""
import json
import sys
from collections import OrderedDict

TARGETS = ["ext4-cp", "ext4-tar", "ext4-posix", "vfs-v3", "mem-v3", "kvfs-v3"]
PHASES = ["copy_tarball", "untar", "read", "stat", "lookup", "bigdir_create", "bigdir_list"]


def load(path):
    rows = [json.loads(line) for line in open(path) if line.strip().startswith("{")]
    by = OrderedDict()
    for r in rows:
        corpus = "big directory" if r["phase"].startswith("bigdir") else r["corpus"]
        by.setdefault(corpus, {})[(r["target"], r["phase"])] = r
    return by


def rate(r):
    """files/s of a phase that read everything back right, else None."""
    if not r or not r.get("ok", True) or r["seconds"] <= 0:
        return None
    return r["files"] / r["seconds"]


def fmt(x, digits=0):
    return "—" if x is None else f"{x:,.{digits}f}"


def main():
    out = sys.argv[1]
    plot_name = sys.argv[2] if len(sys.argv) > 2 else "nfs-bench.png"
    by = load(out + "/results.jsonl")
    try:
        machine = open(out + "/machine.txt").read().strip()
        print("Machine and run:\n\n```\n" + machine + "\n```\n")
    except OSError:
        pass
    print("| corpus | phase | " + " | ".join(TARGETS) +
          " | KVFS/MEM | KVFS/VFS |")
    print("|---|---|" + "---:|" * (len(TARGETS) + 2))
    bad = []
    for corpus, res in by.items():
        for phase in PHASES[1:]:
            cells = [res.get((t, phase)) for t in TARGETS]
            if not any(cells):
                continue
            for c in cells:
                if c and not c.get("ok", True):
                    bad.append(f"{corpus} {c['target']} {phase}: {c.get('first_error', '')}")
            k, m, v = (rate(res.get((t, phase))) for t in ("kvfs-v3", "mem-v3", "vfs-v3"))
            ratio = lambda a, b: None if a is None or b is None else a / b
            shown = ["failed" if c and not c.get("ok", True) else fmt(rate(c)) for c in cells]
            print(f"| {corpus} | {phase} | " + " | ".join(shown) +
                  f" | {fmt(ratio(k, m), 2)} | {fmt(ratio(k, v), 2)} |")
    print()
    print("files/s; the ratios are KVFS's files/s over the baseline's (above 1: KVFS faster).")
    print()
    print("Seconds (copy_tarball: `cp` of the tarball + `sync`, the physical floor):")
    print()
    print("| corpus | phase | " + " | ".join(TARGETS) + " |")
    print("|---|---|" + "---:|" * len(TARGETS))
    for corpus, res in by.items():
        for phase in PHASES[:3]:
            cells = [res.get((t, phase)) for t in TARGETS]
            if any(cells):
                print(f"| {corpus} | {phase} | " +
                      " | ".join("—" if c is None else "failed" if not c.get("ok", True)
                                 else f"{c['seconds']:.1f}" for c in cells) + " |")
    cpu_rows = []
    for corpus, res in by.items():
        for phase in PHASES[1:]:
            cells = []
            for t in ("vfs-v3", "mem-v3", "kvfs-v3"):
                c = res.get((t, phase))
                cells.append(None if not c or "server_cpu_s" not in c or not c["files"] else
                             f"{1000 * c['server_cpu_s'] / c['files']:.3f} "
                             f"({1000 * c['client_cpu_s'] / c['files']:.3f})"
                             + (f" / {c['server_switches'] / c['files']:.1f}"
                                if "server_switches" in c else ""))
            if any(cells):
                cpu_rows.append(f"| {corpus} | {phase} | " +
                                " | ".join(x or "—" for x in cells) + " |")
    if cpu_rows:
        print()
        print("CPU per file, ms: the server's (the NFS client's in parentheses), "
              "from /proc during each phase; after the slash, the server's context "
              "switches per file (a thread blocking and being woken):")
        print()
        print("| corpus | phase | vfs-v3 | mem-v3 | kvfs-v3 |")
        print("|---|---|---:|---:|---:|")
        print("\n".join(cpu_rows))
    print()
    print("##### Targets (KVFS, ratios in this run)")
    print()
    for corpus, res in by.items():
        # A rate only for a phase that read everything back right.
        g = lambda t, p: rate(res.get((t, p))) if (res.get((t, p)) or {}).get("ok") else None
        k_untar, m_untar, v_untar = g("kvfs-v3", "untar"), g("mem-v3", "untar"), g("vfs-v3", "untar")
        k_read, v_read = g("kvfs-v3", "read"), g("vfs-v3", "read")
        k_stat, v_stat = g("kvfs-v3", "stat"), g("vfs-v3", "stat")
        k_look, v_look = g("kvfs-v3", "lookup"), g("vfs-v3", "lookup")
        halfway = (v_untar + m_untar) / 2 if v_untar and m_untar else None
        # Issue 17's targets (docs/benchmarks.md).
        checks = [
            ("untar >= FSAL_VFS", k_untar, v_untar, 1.0),
            ("untar >= halfway from FSAL_VFS to FSAL_MEM (stretch)", k_untar, halfway, 1.0),
            ("cold read >= 1.3x FSAL_VFS cold", k_read, v_read, 1.3),
            ("stat >= 1.2x FSAL_VFS", k_stat, v_stat, 1.2),
            ("random lookups >= 1.2x FSAL_VFS", k_look, v_look, 1.2),
        ]
        k_list, v_list = g("kvfs-v3", "bigdir_list"), g("vfs-v3", "bigdir_list")
        if k_list and v_list:
            checks.append(("big directory list >= FSAL_VFS per entry", k_list, v_list, 1.0))
        for t in ("kvfs-v3", "mem-v3", "vfs-v3", "ext4-posix"):
            d = (res.get((t, "bigdir_create")) or {}).get("decile_seconds")
            if d and len(d) == 10:
                print(f"- {corpus}: {t}: last tenth of the creates took {d[9] / d[1]:.2f}x "
                      f"the second tenth (target for KVFS at 1M vs 100K: <= 1.10x)")
        for name, a, b, need in checks:
            if a is None and b is None:
                continue
            if a is None or b is None:
                print(f"- {corpus}: {name}: no valid measurement (a phase failed)")
                continue
            r = a / b
            print(f"- {corpus}: {name}: {r:.2f}x (need {need:.1f}x) — "
                  f"{'**met**' if r >= need else '**not met**'}")
    if bad:
        print()
        print("##### Phases that failed (read back something wrong, or the server stopped answering)")
        for b in bad:
            print("- " + b)
    memory(out)
    plot(by, out, plot_name)
    direct_part(out + "/ingest.md", None)
    direct_part(out + "/store-load.md", "Persistent-store load (bench/store_load.sh)")


def direct_part(path, title):
    """A direct part's own Markdown (OUT/ingest.md, OUT/store-load.md), if it
    ran, under a heading of this report's level: `title`, or its own."""
    try:
        text = open(path).read()
    except OSError:
        return
    print()
    if title:
        print("##### " + title + "\n")
    print("\n".join("##### " + line[2:] if line.startswith("# ") else line
                    for line in text.rstrip("\n").split("\n")))


def memory(out):
    """The memory part (kv_store_bench lines in OUT/memory.jsonl), if it ran."""
    try:
        rows = [json.loads(line) for line in open(out + "/memory.jsonl")
                if line.strip().startswith("{")]
    except OSError:
        return
    creates = [r for r in rows if r["phase"] == "hugedir_create"]
    settled = [r for r in rows if r["phase"] == "reopen"]
    print()
    print("##### Memory and store size (bench/kv_store_bench, files of 1-64 KiB in one directory)")
    print()
    print("| files | contents | settled store | r = (store - 60 x files) / contents "
          "| peak RSS | creates/s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for c, r in zip(creates, settled):
        n, contents, store = c["items"], c["bytes"], r["store_bytes"]
        ratio = (store - 60 * n) / contents if contents else 0
        print(f"| {n:,} | {contents / 1e9:.2f} GB | {store / 1e6:,.0f} MB | {ratio:.2f} "
              f"| {r['peak_rss_kb'] / 1e3:,.0f} MB | {c['items_per_s']:,.0f} |")


def plot(by, out, name):
    """One panel per corpus: files/s of each NFS phase per server, log scale."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("\n(matplotlib missing: no plot; ci/install-deps.sh installs python3-matplotlib)")
        return
    servers = ["vfs-v3", "mem-v3", "kvfs-v3"]
    corpora = [c for c, res in by.items() if any(t in servers for t, _ in res)]
    if not corpora:
        return
    fig, axes = plt.subplots(1, len(corpora), figsize=(4.2 * len(corpora), 3.6), squeeze=False)
    for ax, corpus in zip(axes[0], corpora):
        res = by[corpus]
        phases = [p for p in PHASES[1:] if any(rate(res.get((t, p))) for t in servers)]
        width = 0.8 / len(servers)
        for i, t in enumerate(servers):
            ax.bar([x + i * width for x in range(len(phases))],
                   [rate(res.get((t, p))) or 0 for p in phases], width, label=t)
        ax.set_yscale("log")
        ax.set_xticks([x + width for x in range(len(phases))])
        ax.set_xticklabels(phases, rotation=20, fontsize=8)
        ax.set_title(corpus)
        ax.set_ylabel("files/s (log)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out + "/" + name, dpi=90)
    print(f"\n![files/s per server and phase]({name})")


if __name__ == "__main__":
    main()
