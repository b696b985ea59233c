#!/usr/bin/env python3
"""The race's ratio table: gancu images/s over PyTorch images/s, one table per (image size, batch).

Reads the JSON lines that `gan bench` and bench/pytorch/dcgan_step.py print (other lines are skipped), from files or
stdin. A row with "error" (a mode that failed or timed out) shows as "failed" with its reason; a side with no rows at
all is named, so the table never hides that half of the race is missing.

  python3 bench/pytorch/ratio_table.py results.jsonl [more.jsonl ...]
"""
import json
import sys


def read_rows(paths):
    rows = []
    for path in paths:
        with (sys.stdin if path == "-" else open(path)) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if "framework" in row and "mode" in row:
                    rows.append(row)
    return rows


def table(rows, size, batch):
    ours = [r for r in rows if r["framework"] == "gancu"]
    theirs = [r for r in rows if r["framework"] != "gancu"]
    measured = [t for t in theirs if "error" not in t]
    out = [f"DCGAN-{size}, batch {batch}: images/s ratio, gancu / PyTorch (rows: gancu kernels/math/launch mode; "
           f"columns: PyTorch mode)"]
    if not ours:
        out.append("  no gancu rows (every gancu run failed before printing, or did not run)")
    if not theirs:
        out.append("  no PyTorch rows (PyTorch failed before printing, or did not run)")
    out.append(f"{'':34}" + "".join(f"{t['mode']:>15}" for t in measured))
    for o in ours:
        if "error" in o:
            out.append(f"{o['mode'] + ' failed':34}  {o['error']}")
            continue
        label = f"{o['mode']} {o['images_per_s']:.0f} img/s"
        out.append(f"{label:34}" + "".join(f"{o['images_per_s'] / t['images_per_s']:>14.2f}x" for t in measured))
    if measured:
        out.append("PyTorch img/s: " + ", ".join(f"{t['mode']} {t['images_per_s']:.0f}" for t in measured) +
                   f" ({measured[0]['framework']})")
    for t in theirs:
        if "error" in t:
            out.append(f"PyTorch {t['mode']} failed: {t['error']}")
    return "\n".join(out)


def main(argv):
    rows = read_rows(argv or ["-"])
    if not rows:
        print("no result lines")
        return 1
    configs = sorted({(r.get("image_size"), r.get("batch_size")) for r in rows}, key=lambda c: (-(c[0] or 0), c[1] or 0))
    print("\n\n".join(table([r for r in rows if (r.get("image_size"), r.get("batch_size")) == c], *c) for c in configs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
