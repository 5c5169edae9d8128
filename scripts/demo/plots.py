"""The demo's pictures, drawn by gnuplot (pngcairo): a bird's-eye view of one fused frame
with its detections and the ground truth, and the run's timeline from Prometheus."""
import math
import os
import shutil
import subprocess

AGENT_COLOURS = ["#1f77b4", "#2ca02c", "#9467bd", "#e377c2", "#17becf", "#bcbd22"]
CLASS_COLOURS = {"vehicle": 0x1F5FBF, "pedestrian": 0xE07B00, "truck": 0x8C564B}
DETECTION_COLOUR = "#d62728"


class PlotError(RuntimeError):
    pass


def _gnuplot(script, workdir):
    binary = shutil.which("gnuplot")
    if binary is None:
        raise PlotError("gnuplot is not installed (make deps installs gnuplot-nox)")
    path = os.path.join(workdir, "plot.gp")
    with open(path, "w") as f:
        f.write(script)
    p = subprocess.run([binary, path], cwd=workdir, capture_output=True, text=True)
    if p.returncode != 0:
        raise PlotError(f"gnuplot failed on {path}: {p.stderr.strip()[-600:]}")


def _corners(x, y, l, w, yaw):
    c, s = math.cos(yaw), math.sin(yaw)
    out = []
    for dx, dy in ((l / 2, w / 2), (-l / 2, w / 2), (-l / 2, -w / 2), (l / 2, -w / 2), (l / 2, w / 2)):
        out.append((x + c * dx - s * dy, y + s * dx + c * dy))
    return out


def _write_boxes(path, boxes, colour_of):
    """Closed polygons, one block per box; the third column is the line colour."""
    with open(path, "w") as f:
        for b in boxes:
            col = colour_of(b)
            for px, py in _corners(b["x"], b["y"], b["l"], b["w"], b["yaw"]):
                f.write(f"{px:.3f} {py:.3f} {col}\n")
            f.write("\n")
        if not boxes:
            f.write("NaN NaN 0\n")


def frame_png(frame, detections, out_png, workdir, title):
    """frame: `qv2x sim --export` JSON; detections: boxes of a qv2x.v1.DetectionFrame."""
    os.makedirs(workdir, exist_ok=True)
    hx, hy = frame["roi_half"]
    margin = max(4.0, 0.15 * hx)
    plots = []
    for i, a in enumerate(frame["agents"]):
        colour = AGENT_COLOURS[i % len(AGENT_COLOURS)]
        ground, above = os.path.join(workdir, f"ground{i}.dat"), os.path.join(workdir, f"pts{i}.dat")
        with open(ground, "w") as g, open(above, "w") as o:
            for x, y, h in a["points"]:
                if abs(x) <= hx + margin and abs(y) <= hy + margin:
                    (g if h < 0.3 else o).write(f"{x:.2f} {y:.2f}\n")
        kind = "roadside unit" if a["infrastructure"] else ("ego" if a["id"] == frame["ego_id"] else "vehicle")
        plots.append(f"'{ground}' w points pt 7 ps 0.08 lc rgb '#dddddd' notitle")
        plots.append(f"'{above}' w points pt 7 ps 0.12 lc rgb '{colour}' notitle")
        # Keys drawn by empty plots: the data's own dots are too small to show in a key.
        plots.append(f"NaN w points pt 7 ps 1 lc rgb '{colour}' "
                     f"title 'points of agent {a['id']} ({kind})'")
    seen = [b for b in frame["gt"] if b["seen_by_ego"]]
    others = [b for b in frame["gt"] if not b["seen_by_ego"] and b["seen_by"]]
    nobody = [b for b in frame["gt"] if not b["seen_by"]]
    cls = lambda b: CLASS_COLOURS.get(b["class"], 0x555555)
    for name, boxes in (("gt_ego", seen), ("gt_others", others), ("gt_nobody", nobody)):
        _write_boxes(os.path.join(workdir, name + ".dat"), boxes, cls)
    dets = [{"x": d["x"], "y": d["y"], "l": d["l"], "w": d["w"], "yaw": d["yaw"]} for d in detections]
    _write_boxes(os.path.join(workdir, "det.dat"), dets, lambda b: 0)
    with open(os.path.join(workdir, "agents.dat"), "w") as f:
        for a in frame["agents"]:
            f.write(f"{a['x']:.2f} {a['y']:.2f} \"{a['id']}\"\n")
    with open(os.path.join(workdir, "roi.dat"), "w") as f:
        for x, y in ((-hx, -hy), (hx, -hy), (hx, hy), (-hx, hy), (-hx, -hy)):
            f.write(f"{x} {y}\n")
    plots += [
        "'gt_ego.dat' w lines lw 2 lc rgb variable notitle",
        "'gt_others.dat' w lines lw 2 dt 2 lc rgb variable notitle",
        "'gt_nobody.dat' w lines lw 1 dt 3 lc rgb variable notitle",
        "NaN w lines lw 2 lc rgb '#444444' title 'ground truth the ego sees'",
        "NaN w lines lw 2 dt 2 lc rgb '#444444' title 'ground truth only other agents see'",
        "NaN w lines lw 1 dt 3 lc rgb '#444444' title 'ground truth nobody sees'",
        f"'det.dat' w lines lw 1.5 lc rgb '{DETECTION_COLOUR}' title 'fused detections'",
        "'agents.dat' u 1:2 w points pt 9 ps 2 lc rgb 'black' title 'agents'",
        "'agents.dat' u 1:2:3 w labels offset 1.2,1.2 font ',12' notitle",
        "'roi.dat' w lines dt 4 lc rgb '#888888' title 'evaluation range'",
        "NaN w lines lw 4 lc rgb '#1F5FBF' title 'vehicle (ground truth)'",
        "NaN w lines lw 4 lc rgb '#E07B00' title 'pedestrian (ground truth)'",
        "NaN w lines lw 4 lc rgb '#8C564B' title 'truck (ground truth)'",
    ]
    script = f"""set terminal pngcairo size 1600,820 font 'DejaVu Sans,11'
set output '{os.path.abspath(out_png)}'
set title "{title}"
set size ratio -1
set xrange [{-hx - margin}:{hx + margin}]
set yrange [{-hy - margin}:{hy + margin}]
set xlabel 'x (m, ego frame: forward)'
set ylabel 'y (m, left)'
set grid lc rgb '#eeeeee'
set key outside right top spacing 1.1
plot {", ".join(plots)}
"""
    _gnuplot(script, workdir)


def timeline_png(series, events, phases, out_png, workdir, title):
    """series: {panel: [(label, [(t, v)])]} for the panels 'bytes', 'encode', 'e2e'
    (t in seconds since the start, latencies in ms); events: [(t, label)];
    phases: [(t0, t1, label, colour)] shaded in every panel."""
    os.makedirs(workdir, exist_ok=True)
    panels = [("bytes", "bytes per message"), ("encode", "agent encode p50 (ms)"),
              ("e2e", "end-to-end p50 (ms)")]
    tmax = max([t for rows in series.values() for _, pts in rows for t, _ in pts] + [1])
    lines = [f"set terminal pngcairo size 1500,1050 font 'DejaVu Sans,11'",
             f"set output '{os.path.abspath(out_png)}'",
             f"set multiplot layout 3,1 title \"{title}\" margins 0.08,0.84,0.06,0.88 spacing 0,0.03",
             f"set xrange [0:{tmax:.0f}]", "set grid lc rgb '#e5e5e5'",
             "set key outside right top"]
    for k, (t0, t1, label, colour) in enumerate(phases):
        lines.append(f"set object {k + 1} rect from {t0:.1f}, graph 0 to {t1:.1f}, graph 1 "
                     f"fc rgb '{colour}' fs transparent solid 0.18 noborder behind")
    for k, (t, label) in enumerate(events):
        lines.append(f"set arrow {k + 1} from {t:.1f}, graph 0 to {t:.1f}, graph 1 nohead "
                     f"dt 2 lc rgb '#555555'")
    for i, (panel, ylabel) in enumerate(panels):
        rows = series.get(panel, [])
        plots = []
        for j, (label, pts) in enumerate(rows):
            path = os.path.join(workdir, f"{panel}{j}.dat")
            with open(path, "w") as f:
                for t, v in pts:
                    # A blank line breaks the curve where the series has no value.
                    f.write(f"{t:.1f} {v}\n" if v == v and abs(v) != float("inf") else "\n")
            plots.append(f"'{path}' w lines lw 2 title '{label}'")
        if not plots:
            plots = ["NaN notitle"]
        lines.append(f"set ylabel '{ylabel}'")
        if i == 0:
            for k, (t, label) in enumerate(events):
                lines.append(f"set label {k + 1} '{label}' at {t:.1f}, graph 1.02 rotate by 35 "
                             f"font ',9' front")
            for k, (t0, t1, label, colour) in enumerate(phases):
                lines.append(f"set label {100 + k} '{label}' at {(t0 + t1) / 2:.1f}, graph 0.92 "
                             f"center font ',9' front")
        else:
            lines.append("unset label")
        if i < len(panels) - 1:
            lines.append("set format x ''")
            lines.append("unset xlabel")
        else:
            lines.append("set format x '%g'")
            lines.append("set xlabel 'seconds since the demo started'")
        lines.append("plot " + ", ".join(plots))
    lines.append("unset multiplot")
    _gnuplot("\n".join(lines) + "\n", workdir)
