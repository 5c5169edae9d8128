#!/usr/bin/python3
"""`make bench`: every benchmark binary, the PyTorch side-by-side, one JSON and one table.

Runs each build/bench/*_bench (console output as it comes, JSON kept), then
bench/pytorch_reference.py bench (qv2x and PyTorch eager on the same inputs in alternating
rounds), and writes bench/results/latest.json: the machine (CPU model and the SIMD flags
that matter), the commit, every benchmark's figures, and the summary table printed at the
end: each stage at each preset and precision, qv2x against PyTorch where both ran, ratios
taken within one run only.

  scripts/bench-report.py [--build build] [--out bench/results/latest.json]
                          [--pytorch-repeat 12] [--no-pytorch] [--min-time 0.2]

Run with Debian's /usr/bin/python3 (python3-torch for the PyTorch side; without it that
side is skipped and said so).
"""

import argparse
import datetime
import glob
import json
import os
import subprocess
import sys
import tempfile

FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu():
    name, flags = "unknown", []
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and name == "unknown":
                name = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                have = set(line.split(":", 1)[1].split())
                flags = [x for x in FLAGS if x in have]
    return name, flags


def run_benches(build, min_time, work):
    results = {}
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    for binary in sorted(glob.glob(os.path.join(build, "bench", "*_bench"))):
        name = os.path.basename(binary)
        out = os.path.join(work, name + ".json")
        print(f"== {binary}", flush=True)
        r = subprocess.run([binary, f"--benchmark_min_time={min_time}",
                            f"--benchmark_out={out}", "--benchmark_out_format=json"], env=env)
        if r.returncode != 0:
            sys.exit(f"bench-report: {binary} failed (exit {r.returncode})")
        with open(out) as f:
            data = json.load(f)
        results[name] = {b["name"]: {k: b[k] for k in b if k not in ("name", "run_name")}
                         for b in data["benchmarks"]}
    return results


def find(bench, key):
    """The benchmark `key` (Google Benchmark appends /min_time:... to the name), or None."""
    return next((v for name, v in bench.items() if name == key or name.startswith(key + "/")),
                None)


def ms(b):
    return b["real_time"] * {"ms": 1, "us": 1e-3, "ns": 1e-6, "s": 1e3}[b.get("time_unit", "ns")]


def table(benches, pytorch):
    rows = []
    if pytorch:
        for preset, r in pytorch["presets"].items():
            for stage, s in r["stages"].items():
                rows.append({"preset": preset, "stage": stage, "precision": "FP32",
                             "qv2x_ms": s["qv2x_ms"], "pytorch_ms": s["pytorch_ms"],
                             "ratio": s["speedup"],
                             "ratio_is": "PyTorch eager / qv2x, same inputs, alternating rounds"})
    q = benches.get("quant_bench", {})
    for stage, fp32, int8 in (("encode_1_agent", "BM_EncodeFp32", "BM_EncodeInt8"),
                              ("fuse_{}_agents", "BM_Fuse<false>/4", "BM_Fuse<true>/4")):
        a, b = find(q, fp32), find(q, int8)
        if a and b:
            # The fuse bench takes up to 4 agents from its frame and counts them.
            rows.append({"preset": "cpu", "stage": stage.format(int(b.get("agents", 4))),
                         "precision": "INT8", "qv2x_ms": round(ms(b), 2), "pytorch_ms": None,
                         "ratio": round(ms(a) / ms(b), 3),
                         "ratio_is": "qv2x FP32 / qv2x INT8, quant_bench, same frame"})
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.environ.get("BUILD_DIR", "build"))
    p.add_argument("--out", default="bench/results/latest.json")
    p.add_argument("--min-time", default="0.2")
    p.add_argument("--pytorch-repeat", type=int, default=12)
    p.add_argument("--no-pytorch", action="store_true")
    args = p.parse_args()
    name, flags = cpu()
    result = {"cpu_model": name, "cpu_flags": flags, "cores": os.cpu_count(),
              "date": datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z",
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], text=True,
                                       capture_output=True).stdout.strip(),
              "omp_wait_policy": "PASSIVE"}
    with tempfile.TemporaryDirectory(prefix="qv2x-bench-") as work:
        result["benchmarks"] = run_benches(args.build, args.min_time, work)
        pytorch = None
        if args.no_pytorch:
            result["pytorch"] = "skipped (--no-pytorch)"
        elif subprocess.run(["/usr/bin/python3", "-c", "import torch"],
                            capture_output=True).returncode != 0:
            result["pytorch"] = "skipped: /usr/bin/python3 cannot import torch (python3-torch)"
        else:
            out = os.path.join(work, "pytorch.json")
            print("== bench/pytorch_reference.py bench", flush=True)
            r = subprocess.run(["/usr/bin/python3", "bench/pytorch_reference.py", "bench",
                                "--qv2x", os.path.join(args.build, "bin", "qv2x"),
                                "--repeat", str(args.pytorch_repeat), "--out", out])
            if r.returncode != 0:
                sys.exit("bench-report: bench/pytorch_reference.py bench failed")
            with open(out) as f:
                pytorch = json.load(f)
            result["pytorch"] = pytorch
    result["bf16"] = ("not implemented in qv2x; this CPU " +
                      ("has" if "avx512_bf16" in flags or "amx_bf16" in flags else "lacks") +
                      " native BF16 (avx512_bf16 / amx_bf16)")
    result["table"] = table(result["benchmarks"], pytorch)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"\n{name} ({', '.join(flags)}), {os.cpu_count()} cores, commit {result['commit']}")
    print(f"{'preset':9} {'stage':16} {'prec':5} {'qv2x ms':>9} {'PyTorch ms':>11} {'ratio':>7}  of")
    for r in result["table"]:
        py = f"{r['pytorch_ms']:11.1f}" if r["pytorch_ms"] is not None else f"{'-':>11}"
        print(f"{r['preset']:9} {r['stage']:16} {r['precision']:5} {r['qv2x_ms']:9.1f} {py} "
              f"{r['ratio']:6.2f}x  {r['ratio_is']}")
    print(f"BF16: {result['bf16']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
