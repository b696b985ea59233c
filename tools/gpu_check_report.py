#!/usr/bin/env python3
"""The report of tools/gpu_check.sh, rewritten after every step from what its work folder holds so far.

  gpu_check_report.py WORK RESULTS [--summary STEP]

Reads WORK/logs (steps.tsv, facts.tsv, each command's log, the gtest XML, race.jsonl, bench_<group>.json, ncu's
CSV) and writes RESULTS/report.md and RESULTS/bench_kernels.json, each replaced whole. With --summary, prints the
step's one-line summary. A failed test is shown with its message (from the XML, else from the log when the run was
cut before gtest wrote its XML), truncated, so the report alone explains it to someone without a GPU.
"""
import collections
import csv
import glob
import io
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "pytorch"))
import ratio_table  # noqa: E402

STEP_TITLES = [("smoke", "0 smoke"), ("kernels", "1 kernel tests"), ("backend", "2 backend"), ("race", "3 race"),
               ("bench", "4 kernel benchmark"), ("sanitizers", "5 sanitizers"), ("profile", "6 profile"),
               ("compile", "7 torch.compile")]
GTEST_SUBS = {"kernels": ["kernels_small", "kernels_model"], "backend": ["cuda_backend", "cuda_training"],
              "sanitizers": ["memcheck", "racecheck"]}
MESSAGE_CHARS = 1500
MESSAGE_LINES = 30
MAX_FAILURES_SHOWN = 25


def read(path, default=""):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return default


def truncate(text, chars=MESSAGE_CHARS, lines=MESSAGE_LINES):
    kept = text.strip().splitlines()
    cut = len(kept) > lines
    out = "\n".join(kept[:lines])
    if len(out) > chars:
        out, cut = out[:chars], True
    return out + ("\n[... truncated]" if cut else "")


def tail(text, lines=15):
    return "\n".join(text.rstrip().splitlines()[-lines:])


class Records:
    """steps.tsv: the last line of each step or sub-command name wins."""

    def __init__(self, path):
        self.steps, self.subs = {}, collections.OrderedDict()
        for line in read(path).splitlines():
            parts = line.split("\t")
            if len(parts) < 6:
                continue
            kind, name, status, seconds, cap, note = parts[:6]
            row = {"name": name, "status": status, "seconds": seconds, "cap": cap, "note": note}
            if kind == "step":
                self.steps[name] = row
            else:
                self.subs[name] = row

    def subs_of(self, step):
        return [r for n, r in self.subs.items() if n.split("/")[0] == step]


# ---- gtest ---------------------------------------------------------------------------------------------------------
def gtest_results(logs, name):
    """Per test: (status, message) from every shard's XML, or its log where the XML is missing (a cut run)."""
    results = collections.OrderedDict()
    shards = sorted(glob.glob(os.path.join(logs, f"{name}.*.log")))
    for log in shards:
        xml = log[:-4] + ".xml"
        if os.path.exists(xml):
            try:
                for case in ET.parse(xml).getroot().iter("testcase"):
                    test = case.get("classname", "") + "." + case.get("name", "")
                    failures = case.findall("failure")
                    if failures:
                        results[test] = ("FAIL", "\n".join(f.get("message", "") or (f.text or "") for f in failures))
                    elif case.get("result") == "skipped" or case.find("skipped") is not None:
                        results[test] = ("skipped", "")
                    elif case.get("status") == "notrun":
                        continue
                    else:
                        results[test] = ("pass", "")
                continue
            except ET.ParseError:
                pass
        results.update(gtest_log_results(read(log)))
    return results


def gtest_log_results(text):
    """Test results from gtest's console output; a test started and never ended was running when the run was cut."""
    results, current, lines = collections.OrderedDict(), None, []
    for line in text.splitlines():
        m = re.match(r"\[ +(RUN|OK|FAILED|SKIPPED) +\] (\S+)", line)
        if m and m.group(1) == "RUN":
            current, lines = m.group(2), []
        elif m and m.group(2) == current:
            status = {"OK": "pass", "FAILED": "FAIL", "SKIPPED": "skipped"}[m.group(1)]
            results[current] = (status, "\n".join(lines) if status == "FAIL" else "")
            current = None
        elif current:
            lines.append(line)
    if current:
        results[current] = ("cut", "was running when the run was cut:\n" + "\n".join(lines[-MESSAGE_LINES:]))
    return results


def gtest_section(logs, names):
    out, counts = [], collections.Counter()
    failed = []
    for name in names:
        results = gtest_results(logs, name)
        if not results:
            continue
        c = collections.Counter(s for s, _ in results.values())
        counts.update(c)
        out.append(f"- {name}: " + ", ".join(f"{c[k]} {k}" for k in ("pass", "FAIL", "cut", "skipped") if c[k]))
        failed += [(t, s, m) for t, (s, m) in results.items() if s in ("FAIL", "cut")]
    for test, status, message in failed[:MAX_FAILURES_SHOWN]:
        out.append(f"\n**{status}: {test}**\n\n```\n{truncate(message)}\n```")
    if len(failed) > MAX_FAILURES_SHOWN:
        out.append(f"\n... and {len(failed) - MAX_FAILURES_SHOWN} more failed: "
                   + ", ".join(t for t, _, _ in failed[MAX_FAILURES_SHOWN:]))
    return out, counts


# ---- the race, the benchmark, the profile --------------------------------------------------------------------------
def race_table(logs):
    rows = ratio_table.read_rows([p for p in [os.path.join(logs, "race.jsonl")] if os.path.exists(p)])
    if not rows:
        return None
    configs = sorted({(r.get("image_size"), r.get("batch_size")) for r in rows})
    return "\n\n".join(ratio_table.table([r for r in rows if (r.get("image_size"), r.get("batch_size")) == c], *c)
                       for c in configs)


def merge_bench(logs, results):
    """bench_<group>.json files, in run order, into one bench_kernels.json (the header of the first)."""
    merged = None
    for path in sorted(glob.glob(os.path.join(logs, "bench_*.json")), key=os.path.getmtime):
        try:
            part = json.loads(read(path))
        except json.JSONDecodeError:
            continue
        group = os.path.basename(path)[len("bench_"):-len(".json")]
        if merged is None:
            merged = dict(part, rows=[], failures=[], groups=[])
        merged["rows"] += part.get("rows", [])
        merged["failures"] += part.get("failures", [])
        merged["groups"].append(group)
    if merged is not None:
        tmp = os.path.join(results, ".bench_kernels.json")
        with open(tmp, "w") as f:
            json.dump(merged, f, indent=2)
        os.replace(tmp, os.path.join(results, "bench_kernels.json"))
    return merged


def bench_section(merged):
    if not merged:
        return ["no benchmark results"]
    c = merged.get("ceilings", {})
    out = [f"groups measured: {', '.join(merged['groups'])}; ceilings: copy {c.get('copy_gbps', 0):.0f} GB/s, "
           f"SGEMM fp32 {c.get('gemm_fp32_tflops', 0):.1f} TFLOP/s, tf32 {c.get('gemm_tf32_tflops', 0):.1f} TFLOP/s",
           "", "| op | shape | mode | custom ms | baseline ms | speedup | custom rate | % ceiling |",
           "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in merged["rows"]:
        out.append(f"| {r['op']} | {r['shape']} | {r['mode']} | {r['custom_ms']:.4f} | {r['baseline_ms']:.4f} | "
                   f"{r['speedup']:.2f}x | {r['custom_rate']:.1f} {r['unit']} | {r['percent_of_ceiling']:.1f}% |")
    for f in merged["failures"]:
        out.append(f"\nFAILED group: {f}")
    return out


def ncu_top(text, top=10):
    """ncu --csv --page raw: one row per kernel launch; totals per kernel name, the `top` longest."""
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith('"ID"')), None)
    if start is None:
        return None
    rows = list(csv.reader(io.StringIO("\n".join(l for l in lines[start:] if l.startswith('"')))))
    header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0]) and r[0].isdigit()]
    col = {h: i for i, h in enumerate(header)}
    name_col = next(col[h] for h in ("Kernel Name", "Function Name", "Name") if h in col)

    def num(r, name):
        try:
            return float(r[col[name]].replace(",", ""))
        except (KeyError, ValueError):
            return float("nan")

    kernels = collections.OrderedDict()
    for r in body:
        k = kernels.setdefault(r[name_col][:90], {"n": 0, "ns": 0.0, "sm": [], "dram": [], "occ": [],
                                                            "regs": r[col.get("launch__registers_per_thread", 0)]})
        k["n"] += 1
        k["ns"] += num(r, "gpu__time_duration.sum")
        k["sm"].append(num(r, "sm__throughput.avg.pct_of_peak_sustained_elapsed"))
        k["dram"].append(num(r, "dram__throughput.avg.pct_of_peak_sustained_elapsed"))
        k["occ"].append(num(r, "sm__warps_active.avg.pct_of_peak_sustained_active"))
    total = sum(k["ns"] for k in kernels.values()) or 1.0
    mean = lambda v: sum(v) / len(v) if v else float("nan")  # noqa: E731
    out = [f"{len(body)} launches profiled, {len(kernels)} kernels; the {top} longest in total:", "",
           "| kernel | launches | total µs | % of profiled | SM % | DRAM % | occupancy % | regs |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, k in sorted(kernels.items(), key=lambda kv: -kv[1]["ns"])[:top]:
        out.append(f"| `{name}` | {k['n']} | {k['ns'] / 1e3:.1f} | {100 * k['ns'] / total:.1f} | {mean(k['sm']):.0f} | "
                   f"{mean(k['dram']):.0f} | {mean(k['occ']):.0f} | {k['regs']} |")
    return out


def sanitizer_lines(logs, name):
    text = "\n".join(read(p) for p in sorted(glob.glob(os.path.join(logs, f"{name}.*.log"))))
    summary = [l for l in text.splitlines() if re.search(r"(ERROR|RACECHECK) SUMMARY", l)]
    errors = [l for l in text.splitlines() if l.startswith("=========") and "SUMMARY" not in l]
    return summary, errors[:40]


# ---- report --------------------------------------------------------------------------------------------------------
def summary_line(step, rec, logs, counts):
    row = rec.steps.get(step, {})
    subs = rec.subs_of(step)
    text = f"{row.get('status', '?')} in {row.get('seconds', '?')} s (cap {row.get('cap', '?')} s)"
    if counts.get(step):
        c = counts[step]
        text += "; tests: " + ", ".join(f"{c[k]} {k}" for k in ("pass", "FAIL", "cut", "skipped") if c[k])
    bad = [f"{s['name'].split('/', 1)[1]} {s['status']}" for s in subs if s["status"] not in ("ok", "dry run")]
    if bad:
        text += "; " + ", ".join(bad)
    return text


def steps_section(rec, logs):
    out = ["## Steps", "", "| step | status | seconds | cap | note |", "|---|---|---:|---:|---|"]
    for step, title in STEP_TITLES:
        r = rec.steps.get(step)
        if r:
            if r["status"] == "running":  # the last report before the command ended: it was cut during this step
                r = dict(r, status="running (cut: the command ended during this step)")
            out.append(f"| {title} | {r['status']} | {r['seconds']} | {r['cap']} | {r['note']} |")
        for s in rec.subs_of(step):
            out.append(f"| &nbsp;&nbsp;{s['name']} | {s['status']} | {s['seconds']} | {s['cap']} | {s['note']} |")
    for s in rec.subs_of("setup"):
        out.append(f"| {s['name']} | {s['status']} | {s['seconds']} | {s['cap']} | {s['note']} |")
    # Every failed command's log tail, so a failure without a test message (a crash, a missing tool) is explained.
    failed = [s for s in rec.subs.values() if s["status"] in ("FAILED", "timed out")]
    if failed:
        out += ["", "## Failed or cut commands (log tails)"]
        for s in failed:
            name = s["name"].split("/", 1)[-1]
            text = read(os.path.join(logs, name + ".log")) or "\n".join(
                read(p) for p in sorted(glob.glob(os.path.join(logs, name + ".*.log"))))
            out += ["", f"**{s['name']}: {s['status']}** {s['note']}", "", "```", tail(text) or "(no output)", "```"]
    return out


def tests_section(logs, counts):
    out = []
    for step, names in GTEST_SUBS.items():
        section, c = gtest_section(logs, names)
        counts[step] = c
        if section:
            out += ([""] if out else []) + [f"## {dict(STEP_TITLES)[step]}: test results", ""] + section
    return out


def race_section(logs):
    return ["## 3 race: DCGAN-64 batch 128, gancu / PyTorch", "", "```", race_table(logs) or "no results", "```"]


def sanitizers_section(logs):
    out = ["## 5 sanitizers", "", "```", read(os.path.join(logs, "sanitizer_filter.log")).strip() or "not run", "```"]
    for tool in ("memcheck", "racecheck"):
        summary, errors = sanitizer_lines(logs, tool)
        if summary or errors:
            out += ["", f"### {tool}", "", "```"] + summary + errors + ["```"]
    return out


def profile_section(logs):
    profile = read(os.path.join(logs, "gan_profile.log"))
    out = ["## 6 profile", "", "```", truncate(profile, 6000, 80) if profile else "not run", "```"]
    top = ncu_top(read(os.path.join(logs, "ncu.log")))
    if top:
        out += ["", "ncu (--clock-control none):", ""] + top
    elif os.path.exists(os.path.join(logs, "ncu.log")):
        out += ["", "ncu: no metrics table (see ncu.log in the archive)"]
    return out


def safe(section, *args):
    """A section that cannot be parsed says so; the rest of the report still comes out."""
    try:
        return [""] + section(*args)
    except Exception as e:  # noqa: BLE001
        return ["", f"({section.__name__} could not be written: {type(e).__name__}: {e})"]


def write_report(work, results):
    logs = os.path.join(work, "logs")
    rec = Records(os.path.join(logs, "steps.tsv"))
    facts = [l.split("\t", 1) for l in read(os.path.join(logs, "facts.tsv")).splitlines() if "\t" in l]
    counts = {}
    out = ["# gancu GPU check", ""] + [f"- {k}: {v}" for k, v in facts]
    out += safe(steps_section, rec, logs)
    out += safe(tests_section, logs, counts)
    out += safe(race_section, logs)
    out += safe(lambda: ["## 4 kernel benchmark", ""] + bench_section(merge_bench(logs, results)))
    out += safe(sanitizers_section, logs)
    out += safe(profile_section, logs)
    tmp = os.path.join(results, ".report.md")
    with open(tmp, "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, os.path.join(results, "report.md"))
    return rec, counts


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--summary"):
        print(__doc__)
        return 2
    rec, counts = write_report(argv[0], argv[1])
    if len(argv) == 4:
        print(summary_line(argv[3], rec, os.path.join(argv[0], "logs"), counts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
