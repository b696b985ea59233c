#!/usr/bin/env python3
"""The run report (report.html) of a real tiny run, opened in headless Chromium.

  report_in_chromium.py GAN WORKDIR

Trains a tiny DCGAN for 40 steps (grids every 5, checkpoints every 10), then loads its report.html in
`chromium --headless` and checks that the page ran without errors or requests (a script injected into a copy of the
page records errors, resource requests, every image's decoded size and every plot's curves into the DOM, which
--dump-dom prints), that the expected plots have curves with points, that every sample grid decoded, and that a
screenshot at 1200 px is not blank and shows the plots' colours. Then it damages the folder (a line that is not
JSON, a non-finite value, a corrupt PNG, an oversized PNG) and adds FID/KID lines, rebuilds the page with
`gan report`, and checks it again, with the evaluation plots and the list of what was left out.

Exit 0: passed; 1: failed, or Chromium is missing (tools/setup_debian.sh installs it); 77: skipped (no Fashion-MNIST).
WORKDIR is emptied first and kept for inspection.
"""
import html
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib

FASHION = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
STEPS = 40

# Injected at the start of <head> of a copy of the page: the page itself has no script.
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => __errors.push(e.message || ('failed to load ' + (e.target && (e.target.src || e.target.href)))), true);
window.addEventListener('load', () => {
  const images = [...document.images].map(i => ({ok: i.complete && i.naturalWidth > 0, width: i.naturalWidth,
                                                   scheme: i.getAttribute('src').split(':')[0]}));
  const plots = [...document.querySelectorAll('svg.plot')].map(s => ({
    id: s.id, width: s.getBoundingClientRect().width,
    curves: [...s.querySelectorAll('path.curve')].map(p => (p.getAttribute('d').match(/[ML]/g) || []).length)}));
  const out = document.createElement('pre');
  out.id = 'report-check';
  out.textContent = JSON.stringify({errors: __errors, images, plots, text: document.body.innerText.length,
                                    resources: performance.getEntriesByType('resource').map(r => r.name)});
  document.body.appendChild(out);
});
</script>"""


class Failed(Exception):
    pass


def check(ok, what):
    if not ok:
        raise Failed(what)


def chromium_binary():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise Failed("chromium is not installed (tools/setup_debian.sh installs Debian's chromium)")


def chromium(binary, args, what):
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000"] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, f"{what}: chromium exited {p.returncode}:\n{p.stderr[-3000:]}")
    return p.stdout, p.stderr


def decode_png(path):
    """(width, height, channels, pixel bytes) of an 8-bit RGB or RGBA PNG, e.g. Chromium's screenshot."""
    with open(path, "rb") as f:
        data = f.read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    check(depth == 8 and colour in (2, 6) and interlace == 0, f"{path}: unexpected PNG format {header}")
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    out, previous = bytearray(), bytearray(stride)
    for y in range(height):
        kind, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = row[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                row[i] = (row[i] + a) & 255
            elif kind == 2:
                row[i] = (row[i] + b) & 255
            elif kind == 3:
                row[i] = (row[i] + ((a + b) >> 1)) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += row
        previous = row
    return width, height, bpp, bytes(out)


def check_page(binary, run_dir, work, name, want_plots, want_images):
    """Loads a copy of run_dir/report.html with the probe, checks what it recorded; returns it."""
    page = open(os.path.join(run_dir, "report.html"), encoding="utf-8").read()
    check("<script" not in page, f"{name}: the report has a script of its own")
    probed = os.path.join(work, name + "_probe.html")
    with open(probed, "w", encoding="utf-8") as f:
        f.write(page.replace("<head>", "<head>\n" + PROBE, 1))
    dom, log = chromium(binary, ["--window-size=1200,2000", "--dump-dom", "file://" + probed], name)
    console = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line or "net::ERR" in line]
    check(not console, f"{name}: console messages or failed requests:\n" + "\n".join(console))
    found = re.search(r'<pre id="report-check">(.*?)</pre>', dom, re.S)
    check(found, f"{name}: the probe did not run (no #report-check in the DOM):\n{dom[-2000:]}\n{log[-2000:]}")
    got = json.loads(html.unescape(found.group(1)))
    check(not got["errors"], f"{name}: errors in the page: {got['errors']}")
    check(not got["resources"], f"{name}: the page requested {got['resources']}")
    check(len(got["images"]) >= want_images, f"{name}: {len(got['images'])} images, want at least {want_images}")
    bad = [i for i in got["images"] if not i["ok"] or i["scheme"] != "data"]
    check(not bad, f"{name}: images that did not decode or are not data: URIs: {bad}")
    plots = {p["id"]: p for p in got["plots"]}
    for plot_id, min_points in want_plots.items():
        check(plot_id in plots, f"{name}: no plot {plot_id} (plots: {sorted(plots)})")
        p = plots[plot_id]
        check(p["width"] > 300, f"{name}: {plot_id} is {p['width']} px wide")
        check(p["curves"] and min(p["curves"]) >= min_points,
              f"{name}: {plot_id}'s curves have {p['curves']} points, want at least {min_points} each")
    return got


def check_screenshot(binary, run_dir, work, name):
    shot = os.path.join(work, name + ".png")
    # Laid out at 1200 CSS px, rendered at half scale: enough pixels to judge, quick to decode here.
    chromium(binary, ["--window-size=1200,1800", "--force-device-scale-factor=0.5", "--screenshot=" + shot,
                      "file://" + os.path.join(run_dir, "report.html")], name + " screenshot")
    width, height, bpp, pixels = decode_png(shot)
    check(width == 600, f"{name}: screenshot {width} px wide, want 600 (1200 at scale 0.5)")
    colours, not_white = set(), 0
    for i in range(0, len(pixels), bpp):
        rgb = pixels[i:i + 3]
        colours.add(rgb)
        not_white += rgb != b"\xff\xff\xff"
    # The page background is near-white; grids, text and curves make the rest. Blue and orange: the first two
    # curves' colours (tab10), antialiased, so matched loosely.
    def near(r, g, b):
        return sum(1 for i in range(0, len(pixels), bpp)
                   if abs(pixels[i] - r) < 40 and abs(pixels[i + 1] - g) < 40 and abs(pixels[i + 2] - b) < 40)
    blue, orange = near(31, 119, 180), near(255, 127, 14)
    total = width * height
    check(len(colours) > 200, f"{name}: the screenshot has {len(colours)} colours: blank?")
    check(not_white > total // 10, f"{name}: only {not_white} of {total} pixels are not white")
    check(blue > 50 and orange > 50, f"{name}: plot colours missing from the screenshot (blue {blue}, orange {orange})")
    return f"{len(colours)} colours, {100 * not_white // total}% not white, curve pixels {blue} blue {orange} orange"


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    gan, work = sys.argv[1], sys.argv[2]
    try:
        binary = chromium_binary()
        if not os.path.exists(FASHION):
            print(f"SKIPPED: {FASHION} is missing (tools/setup_debian.sh installs dataset-fashion-mnist)")
            return 77
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        run_dir = os.path.join(work, "run")
        train = [gan, "train", "--data", FASHION, "--ngf", "8", "--ndf", "8", "--nz", "16", "--batch-size", "8",
                 "--steps", str(STEPS), "--sample-every", "5", "--checkpoint-every", "10", "--out", run_dir,
                 "--no-progress"]
        p = subprocess.run(train, capture_output=True, text=True, timeout=300)
        check(p.returncode == 0, f"gan train failed:\n{p.stderr}")
        check("warning" not in p.stderr, f"gan train warned:\n{p.stderr}")

        curves = {"plot-losses": STEPS, "plot-loss-d-terms": STEPS, "plot-discriminator": STEPS,
                  "plot-throughput": STEPS}
        got = check_page(binary, run_dir, work, "trained", curves, STEPS // 5 + 1)
        shot = check_screenshot(binary, run_dir, work, "trained")
        print(f"trained: {len(got['images'])} images decoded, plots {[p['id'] for p in got['plots']]}; screenshot {shot}")

        # Damage the folder, add evaluation lines (synthetic values: only their drawing is tested), rebuild.
        with open(os.path.join(run_dir, "metrics.jsonl"), "a") as f:
            f.write("this line is not JSON\n")
            f.write('{"step": 41, "loss_d": "not a number"}\n')
            f.write('{"step": 42, "loss_g": null, "<b>odd key</b>": 0.5}\n')
            for step, fid, kid in ((10, 310.0, 0.31), (20, 250.0, 0.24), (30, 205.0, 0.19), (40, 180.0, 0.16)):
                f.write(json.dumps({"step": step, "fid": fid, "kid": kid}) + "\n")
        with open(os.path.join(run_dir, "samples", "step_000045.png"), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
        with open(os.path.join(run_dir, "samples", "step_000050.png"), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + struct.pack(">II", 1 << 20, 1 << 20) + b"\x08\x02\x00\x00\x00")
        p = subprocess.run([gan, "report", run_dir], capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, f"gan report failed:\n{p.stderr}")
        page = open(os.path.join(run_dir, "report.html"), encoding="utf-8").read()
        for text in ("not JSON objects with a step", "not finite numbers", "samples/step_000045.png",
                     "samples/step_000050.png"):
            check(text in page, f"rebuilt: the page does not say it left out {text!r}")
        check("<b>" not in page and "&lt;b&gt;odd key" in page, "rebuilt: text from metrics.jsonl was not escaped")
        got = check_page(binary, run_dir, work, "rebuilt", dict(curves, **{"plot-fid": 4, "plot-kid": 4}), STEPS // 5 + 1)
        shot = check_screenshot(binary, run_dir, work, "rebuilt")
        print(f"rebuilt with damage and FID/KID lines: {len(got['images'])} images decoded, "
              f"plots {[p['id'] for p in got['plots']]}; screenshot {shot}")
    except (Failed, subprocess.TimeoutExpired, OSError) as e:
        print(f"FAILED: {e}\n(the files are kept in {work})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
