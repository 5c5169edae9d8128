#!/usr/bin/env python3
"""The bandwidth-accuracy curve (issue 13): bytes per agent message against vehicle AP from
the fusion tables `qv2x infer --sparse ... [--zstd-dictionary D]` writes, drawn by gnuplot
(pngcairo), and the same points as one Markdown table.

usage: scripts/plot-bandwidth-ap.py --out bench/results/bandwidth-ap.png \
           LABEL=run/fusion-table.json [LABEL=other/fusion-table.json ...] [--md FILE]

Each table gives one curve per codec (bit-packed, zstd, zstd + dictionary when measured):
its dense intermediate (codebook) row and its sparse rows, ordered by bytes. Bytes are the
whole serialized FeatureMessage, mean per non-ego agent and frame."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

CODECS = [("raw", "bit-packed"), ("zstd", "zstd"), ("zstd_dictionary", "zstd + dictionary")]


def points(table):
    """(label, codec name, [(bytes, ap50, ap70, row label, cell share, ratio)]) per codec."""
    rows = [r for r in table["rows"] if r["method"].startswith("intermediate (codebook")]
    out = []
    for key, name in CODECS:
        pts = []
        for r in rows:
            b = r["bytes"].get(key)
            if not b or not b["messages"]:
                continue
            ap = r["ap"]["vehicle"]
            pts.append((b["mean"], ap["0.5"], ap["0.7"], r["method"],
                        r.get("sent_cell_fraction", 1.0), b.get("ratio_vs_fp32_features")))
        if pts:
            out.append((name, sorted(pts)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--md")
    ap.add_argument("tables", nargs="+", help="LABEL=fusion-table.json")
    a = ap.parse_args()
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None:
        sys.exit("gnuplot is not installed (make deps installs gnuplot-nox)")
    series, md = [], ["| grid | codec | rows | cells sent | bytes/message | ÷ FP32 features | "
                      "vehicle AP@0.5 | AP@0.7 |", "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as work:
        for spec in a.tables:
            label, _, path = spec.partition("=")
            with open(path) as f:
                table = json.load(f)
            for codec, pts in points(table):
                data = os.path.join(work, f"s{len(series)}.dat")
                with open(data, "w") as f:
                    for p in pts:
                        f.write(f"{p[0]} {p[1]} {p[2]}\n")
                series.append((f"{label}, {codec}", data))
                for p in pts:
                    ratio = f"{p[5]:,.0f}×" if p[5] else "—"
                    md.append(f"| {label} | {codec} | {p[3]} | {100 * p[4]:.1f} % | {p[0]:,.0f} | "
                              f"{ratio} | {p[1]:.3f} | {p[2]:.3f} |")
        plots = []
        for i, (title, data) in enumerate(series):
            plots.append(f"'{data}' using 1:2 with linespoints lc {i + 1} pt 7 title '{title}, AP@0.5'")
            plots.append(f"'{data}' using 1:3 with linespoints lc {i + 1} pt 5 dt 2 "
                         f"title '{title}, AP@0.7'")
        script = f"""set terminal pngcairo size 1100,700 font 'Sans,10' noenhanced
set output '{os.path.abspath(a.out)}'
set title 'Bandwidth against accuracy: bytes per agent message (whole FeatureMessage) vs vehicle AP'
set logscale x
set xlabel 'bytes per message (log)'
set ylabel 'vehicle AP'
set key outside right
set grid
plot {', '.join(plots)}
"""
        path = os.path.join(work, "plot.gp")
        with open(path, "w") as f:
            f.write(script)
        p = subprocess.run([gnuplot, path], capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"gnuplot failed: {p.stderr.strip()[-600:]}")
    text = "\n".join(md) + "\n"
    if a.md:
        with open(a.md, "w") as f:
            f.write(text)
    print(text, end="")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
