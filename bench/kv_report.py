#!/usr/bin/env python3
"""Tables and plots of the key/value store evaluation (bench/kv_stores.sh).

Usage: kv_report.py OUT_DIR  -> markdown on stdout, OUT_DIR/kv-stores-*.png

Every throughput is also given as a ratio to RocksDB (the default backend)
measured in the same run on the same medium.
"""
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
rows = [json.loads(l) for l in (out / "kv-results.jsonl").read_text().splitlines() if l.strip()]

# (backend, medium, phase) -> row. NFS lines are labelled nfs-<backend>-<medium>.
data = {}
for r in rows:
    if "backend" in r:
        data[(r["backend"], r["medium"], r["phase"])] = r
    elif r.get("target", "").startswith("nfs-"):
        _, backend, medium = r["target"].split("-", 2)
        r["items_per_s"] = r["files_per_s"]
        data[(backend, medium, "nfs_" + r["phase"])] = r

backends = sorted({k[0] for k in data}, key=lambda b: (b != "rocksdb", b))
media = [m for m in ("disk", "tmpfs") if any(k[1] == m for k in data)]

THROUGHPUT = [  # phase, column title, unit
    ("ingest", "ingest", "files/s"),
    ("stat", "stat (cold)", "entries/s"),
    ("read", "read (cold)", "files/s"),
    ("hugedir_create", "1M-dir create", "files/s"),
    ("hugedir_list", "1M-dir list", "entries/s"),
    ("hugedir_lookup", "1M-dir lookup", "lookups/s"),
    ("evict", "evict tree", "inodes/s"),
    ("nfs_untar", "NFS untar", "files/s"),
    ("nfs_read", "NFS read (cold)", "files/s"),
    ("nfs_stat", "NFS stat", "entries/s"),
]


# Only the phases this run measured.
THROUGHPUT = [t for t in THROUGHPUT if any(k[2] == t[0] for k in data)]


def cell(backend, medium, phase):
    r = data.get((backend, medium, phase))
    base = data.get(("rocksdb", medium, phase))
    if r is None:
        return "-"
    v = r["items_per_s"]
    text = f"{v:,.0f}"
    if base and backend != "rocksdb" and base["items_per_s"] > 0:
        text += f" ({v / base['items_per_s']:.2f}x)"
    return text


def mib(n):
    return f"{n / 2**20:,.0f} MiB"


print("## Throughput (ratio to RocksDB on the same medium)\n")
for medium in media:
    print(f"### Store on {medium}\n")
    print("| backend | " + " | ".join(f"{t} ({u})" for _, t, u in THROUGHPUT) + " |")
    print("|---|" + "---|" * len(THROUGHPUT))
    for b in backends:
        print(f"| {b} | " + " | ".join(cell(b, medium, p) for p, _, _ in THROUGHPUT) + " |")
    print()

print("## Space, memory and write amplification\n")
print("| backend | medium | store after ingest | write amp. of ingest | store at end "
      "(+1M-dir, tree evicted) | write amp. of 1M-dir create | peak RSS of the direct run | read-back sum |")
print("|---|---|---|---|---|---|---|---|")
for medium in media:
    for b in backends:
        ing = data.get((b, medium, "ingest"))
        end = data.get((b, medium, "evict")) or data.get((b, medium, "hugedir_lookup"))
        create = data.get((b, medium, "hugedir_create"))
        read = data.get((b, medium, "read"))
        if not ing:
            continue
        wa = "-"
        if medium == "disk" and ing.get("archive_bytes"):
            wa = f"{ing['disk_write_bytes'] / ing['archive_bytes']:.2f}"
        wa_create = "-"
        if medium == "disk" and create:
            wa_create = f"{create['disk_write_bytes'] / create['items']:,.0f} B/file"
        print(f"| {b} | {medium} | {mib(ing['store_bytes'])} | {wa} | "
              f"{mib(end['store_bytes']) if end else '-'} | {wa_create} | "
              f"{end['peak_rss_kb'] / 1024 if end else 0:,.0f} MiB | "
              f"{read.get('xxh3_sum', '-') if read else '-'} |")
print()
print("Write amplification: bytes this process wrote to the block device during the "
      "phase (/proc/self/io) per byte of the tarball (ingest) or per file created; "
      "compaction that runs after a phase ends is not counted. On tmpfs nothing reaches a "
      "block device. Equal read-back sums mean every backend returned the same contents.\n")

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("(matplotlib missing: no plots; ci/install-deps.sh installs python3-matplotlib)")
    sys.exit(0)

fig, axes = plt.subplots(len(media), 1, figsize=(11, 3.6 * len(media)), squeeze=False)
for ax, medium in zip(axes[:, 0], media):
    width = 0.8 / max(1, len(backends))
    for i, b in enumerate(backends):
        ratios = []
        for p, _, _ in THROUGHPUT:
            r, base = data.get((b, medium, p)), data.get(("rocksdb", medium, p))
            ratios.append(r["items_per_s"] / base["items_per_s"] if r and base and
                          base["items_per_s"] > 0 else 0)
        ax.bar([x + i * width for x in range(len(THROUGHPUT))], ratios, width, label=b)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks([x + width * (len(backends) - 1) / 2 for x in range(len(THROUGHPUT))])
    ax.set_xticklabels([t for _, t, _ in THROUGHPUT], rotation=20, fontsize=8)
    ax.set_ylabel("throughput / RocksDB")
    ax.set_title(f"store on {medium}")
    ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(out / "kv-stores-throughput.png", dpi=90)
print("![throughput relative to RocksDB](kv-stores-throughput.png)\n")
