#!/usr/bin/python3
"""`qv2x model forward` against the PyTorch eager reference (ctest model_forward_reference).

On frame 0 of the held-out scene at the cpu preset (`qv2x model inputs`), for a freshly
initialised checkpoint and the shipped models/cpu-stage3.pth (read only): qv2x's outputs
must agree with bench/pytorch_reference.py tensor by tensor within 1e-4 relative, with
equal codebook indices. Then the check must fail: against a copy of the shipped model with
one cls-head weight off by 1e-3 (flagging cls alone), and on indices changed to a codeword
at a different distance; and it must accept indices changed to an exact duplicate of the
chosen codeword (a distance tie). Exit 77 (skipped) when this python3 cannot import torch.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError:
    print("skipped: /usr/bin/python3 cannot import torch (Debian package python3-torch)")
    sys.exit(77)

# Every tensor `qv2x model forward` writes for a 3-agent frame of a 3-level pyramid model.
EXPECTED = (["warp_to_ego", "bev_features", "indices.0", "decoded", "fused", "shrink", "cls",
             "reg", "dir"]
            + [f"agents.{i}.pillar_features" for i in range(3)]
            + [f"pyramid.{l}.{t}" for l in range(3)
               for t in ("features", "occupancy", "warped", "weights", "fused")])


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    return r.stdout


class Check:
    def __init__(self, source, inputs, work):
        self.script = os.path.join(source, "bench", "pytorch_reference.py")
        self.inputs, self.work = inputs, work

    def __call__(self, checkpoint, outputs, label):
        """(exit status, rows by tensor, printed table) of one reference check."""
        report = os.path.join(self.work, f"{label}.json")
        r = subprocess.run([sys.executable, self.script, "check", "--checkpoint", checkpoint,
                            "--inputs", self.inputs, "--outputs", outputs, "--json", report],
                           capture_output=True, text=True)
        print(f"--- check {label}: exit {r.returncode}\n{r.stdout}{r.stderr}")
        if not os.path.exists(report):
            sys.exit(f"FAILED: check {label} wrote no report")
        with open(report) as f:
            rows = {row["tensor"]: row for row in json.load(f)["rows"]}
        return r.returncode, rows


def expect(condition, what):
    if not condition:
        sys.exit(f"FAILED: {what}")
    print(f"ok: {what}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--qv2x", required=True)
    p.add_argument("--source", required=True)
    args = p.parse_args()
    config = os.path.join(args.source, "configs", "cpu", "stage3.yaml")
    scene = os.path.join(args.source, "configs", "scenes", "test.yaml")
    shipped = os.path.join(args.source, "models", "cpu-stage3.pth")
    with tempfile.TemporaryDirectory(prefix="qv2x-forward-ref-") as work:
        inputs = os.path.join(work, "in.pth")
        made = run([args.qv2x, "model", "inputs", "--config", config, "--scene", scene,
                    "--frame", "0", "--out", inputs])
        expect("3 agents" in made, f"test scene frame 0: 3 agents in range ({made.strip()})")
        fresh = os.path.join(work, "fresh.pth")
        run([args.qv2x, "model", "init", "--config", config, "--out", fresh, "--seed", "1"])
        check = Check(args.source, inputs, work)
        outputs = {}
        for label, ckpt in (("fresh", fresh), ("shipped", shipped)):
            outputs[label] = os.path.join(work, f"out-{label}.pth")
            run([args.qv2x, "model", "forward", "--config", config, "--checkpoint", ckpt,
                 "--inputs", inputs, "--out", outputs[label]])
            rc, rows = check(ckpt, outputs[label], label)
            expect(rc == 0, f"{label} checkpoint: qv2x agrees with PyTorch (exit {rc})")
            missing = [t for t in EXPECTED if t not in rows]
            expect(not missing, f"{label}: every output compared (missing {missing})")
            worst = max(r["rel"] for r in rows.values() if "rel" in r)
            expect(worst <= 1e-4, f"{label}: worst relative error {worst:.3g} <= 1e-4")
            expect(rows["indices.0"]["differ"] == 0, f"{label}: codebook indices all equal")

        # One weight of the last layer off by 1e-3 (the one on the shrink channel of the largest
        # activation, so that it moves cls by about 7e-4 relative): cls alone must differ.
        shrink = torch.load(outputs["shipped"])["shrink"]
        channel = int(shrink.amax(dim=(0, 2, 3)).argmax())
        sd = torch.load(shipped)
        sd["cls_head.weight"][0, channel, 0, 0] += 1e-3
        perturbed = os.path.join(work, "perturbed.pth")
        torch.save(sd, perturbed)
        rc, rows = check(perturbed, outputs["shipped"], "perturbed")
        failing = [t for t, r in rows.items() if not r["ok"]]
        expect(rc == 1 and failing == ["cls"], f"a 1e-3 change of one cls weight fails cls alone "
               f"(exit {rc}, failing {failing})")

        # Codebook ties: codeword j (unused) made an exact copy of the most used codeword i.
        out = torch.load(outputs["fresh"])
        idx = out["indices.0"]
        used, counts = idx.unique(return_counts=True)
        i = int(used[counts.argmax()])
        sd = torch.load(fresh)
        words = sd["codebook.codewords.0"]
        unused = [c for c in range(words.shape[1]) if c not in set(used.tolist())]
        above = [c for c in unused if c > i]
        expect(above and len(unused) >= 2, f"codewords unused by this frame: {len(unused)}")
        j = above[0]
        k = next(c for c in unused if c != j)
        words[:, j] = words[:, i]
        tied = os.path.join(work, "tied.pth")
        torch.save(sd, tied)
        cells = (idx == i).nonzero()[::2]  # every other cell that chose i
        for label, replacement, want_rc in (("ties", j, 0), ("not-ties", k, 1)):
            edited = dict(out)
            e = idx.clone()
            e[tuple(cells.t())] = replacement
            edited["indices.0"] = e
            path = os.path.join(work, f"out-{label}.pth")
            torch.save(edited, path)
            rc, rows = check(tied, path, label)
            row = rows["indices.0"]
            expect(rc == want_rc and row["differ"] == len(cells),
                   f"{label}: {len(cells)} indices moved from {i} to {replacement}: exit {rc}, "
                   f"{row['differ']} differ, {row['ties']} ties")
            expect((row["ties"] == row["differ"]) == (want_rc == 0),
                   f"{label}: classified as {'ties' if want_rc == 0 else 'real differences'}")
    print("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
