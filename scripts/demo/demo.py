#!/usr/bin/env python3
"""`make demo`: the whole qv2x story on 127.0.0.1 with real processes.

1. a real Prometheus, then the 4-agent intersection scene (fusion, 3 vehicles, 1 roadside
   unit) with the trainer and the quantizer, each waited on through its health check;
2. the trainer RPC once per stage (a short fine-tune from the shipped checkpoints;
   FULL=1 trains from scratch with the stage configs as they are);
3. the quantizer RPC (W8A8) on the new stage-3 checkpoint;
4. a roll-out of the new model into the running scene: fusion first (holding the old and
   the new codebook), the agents one by one, then the old codebook retired;
5. the scene in FP32, every agent and the ego half swapped to INT8 live, then back;
6. bandwidth, latency and AP per precision read from Prometheus (PromQL);
7. a summary table, out/demo/summary.json, out/demo/frame.png, out/demo/timeline.png.
KEEP=1 leaves the cluster and Prometheus running. Exits non-zero naming the failing step.
"""
import json
import os
import shutil
import signal
import sys
import time

import yaml  # python3-yaml (scripts/install-deps.sh)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, StepError, free_port, port_free  # noqa: E402
from plots import frame_png, timeline_png  # noqa: E402
from prom import Prometheus  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
SCENE = "configs/scenes/intersection.yaml"
PRESET = "configs/cpu"
CLASSES = ("vehicle", "pedestrian", "truck")
IOUS = ("0.3", "0.5", "0.7")


def env_flag(name):
    return os.environ.get(name, "0") not in ("", "0", "false", "no")


class Demo:
    def __init__(self):
        self.full = env_flag("FULL")
        self.keep = env_flag("KEEP")
        self.build = os.path.abspath(os.environ.get("BUILD_DIR", os.path.join(REPO, "build")))
        self.out = os.path.join(REPO, "out/demo")
        self.logs = os.path.join(self.out, "logs")
        self.artifacts = os.path.join(self.out, "artifacts")
        # Frames per phase: at least the fusion service's rolling-AP window (the scene's
        # ap_window_frames), so that each phase's AP is its own.
        self.phase_frames = int(os.environ.get("PHASE_FRAMES", "100"))
        self.t0 = time.time()
        self.events = []  # (unix time, label)
        self.steps = []   # (name, seconds)
        self.summary = {"full": self.full}
        self.cluster = None
        self.prom = None

    # ------------------------------------------------------------------ helpers
    def say(self, text):
        print(f"[{time.time() - self.t0:6.1f}s] {text}", flush=True)

    def echo(self, command):
        print(f"           $ {command}", flush=True)

    def mark(self, label):
        self.events.append((time.time(), label))

    def step(self, name, fn):
        self.say(f"== {name}")
        start = time.time()
        try:
            result = fn()
        except Exception as e:  # every failure names its step
            raise StepError(f"step '{name}' failed: {e}") from e
        self.steps.append((name, time.time() - start))
        return result

    def fusion_status(self):
        return self.cluster.json(["fusion", "status", "--json"] + self.cluster.endpoint_args(),
                                 "fusion-status")

    def fused_frames(self):
        # From Prometheus, not `qv2x fusion status`: polling a LibTorch CLI every 2 s would
        # take CPU from the scene it measures.
        n = self.prom.scalar('sum(qv2x_fusion_frames_total{outcome="fused"})')
        return 0 if n != n else int(n)

    def wait_frames(self, n, timeout_s, what):
        """Waits until the fusion service fused `n` more frames."""
        start = self.fused_frames()
        end = time.time() + timeout_s
        while time.time() < end:
            if not self.cluster.alive():
                raise StepError(f"the scene stopped while {what}: {self.cluster.log_tail()}")
            done = self.fused_frames() - start
            if done >= n:
                return done
            time.sleep(2)
        raise StepError(f"only {self.fused_frames() - start} of {n} frames fused in "
                        f"{timeout_s} s while {what}")

    def settle(self):
        time.sleep(3)  # three scrapes at the 1 s interval: counters caught up

    # ------------------------------------------------------------------ steps
    def preflight(self):
        for b in ("qv2x", "qv2x-fusion", "qv2x-agent", "qv2x-trainer", "qv2x-quantizer"):
            if not os.access(os.path.join(self.build, "bin", b), os.X_OK):
                raise StepError(f"{self.build}/bin/{b} is not built (make build)")
        for tool in ("prometheus", "gnuplot"):
            if shutil.which(tool) is None:
                raise StepError(f"{tool} is not installed (scripts/install-deps.sh installs it)")
        busy = [p for p in (50080, 9480, 50070, 9470, 50060, 9460,
                            *range(50090, 50094), *range(9490, 9494)) if not port_free(p)]
        if busy:
            raise StepError(f"ports {busy} are in use on 127.0.0.1: is a scene already "
                            f"running (qv2x scene up, KEEP=1 make demo)? Stop it first")
        shutil.rmtree(self.out, ignore_errors=True)
        for d in (self.logs, os.path.join(self.artifacts, "shipped")):
            os.makedirs(d)
        # The trainer reads inputs from its artifacts folder only.
        shutil.copy(os.path.join(REPO, f"models/{os.path.basename(PRESET)}-stage1.pth"),
                    os.path.join(self.artifacts, "shipped/stage1.pth"))

    def start_prometheus(self):
        port = 9090 if port_free(9090) else free_port()
        self.prom = Prometheus(REPO, port, os.path.join(self.logs, "prometheus.log"))
        self.prom.start()
        self.say(f"Prometheus {self.prom.url} (data in {self.prom.data})")

    def start_scene(self):
        self.cluster = Cluster(REPO, self.build, SCENE, os.path.join(self.out, "run"),
                               self.artifacts, self.logs, self.echo)
        self.cluster.up()
        self.ego = self.scene_ego()
        # Every target Prometheus knows must be scraped and up.
        end = time.time() + 60
        while True:
            targets = self.prom.targets()
            down = [t["labels"].get("service", t["labels"]["job"]) for t in targets
                    if t["health"] != "up"]
            if not down and targets:
                break
            if time.time() > end:
                raise StepError(f"Prometheus targets not up: {down}")
            time.sleep(1)
        self.summary["prometheus_targets_up"] = len(targets)
        self.say(f"{len(targets)} Prometheus targets up")

    def scene_ego(self):
        with open(os.path.join(REPO, SCENE)) as f:
            return yaml.safe_load(f)["ego_id"]

    def rolling_ap(self, at, tag):
        return {c: {i: self.prom.scalar(f'qv2x_fusion_ap{{class="{c}",iou="{i}"}}', at,
                                        f"{tag}: rolling AP {c}@{i}") for i in IOUS}
                for c in CLASSES}

    def train(self):
        trainer = self.cluster.address("trainer")
        stages = {}
        prev = None
        for stage in (1, 2, 3):
            args = ["train", "--trainer", trainer, "--stage", str(stage),
                    "--config", f"{PRESET}/stage{stage}.yaml", "--out", f"demo/stage{stage}",
                    "--json", os.path.join(self.out, f"stage{stage}.json")]
            if stage == 1 and not self.full:
                args += ["--from", "shipped/stage1.pth"]
            if prev:
                args += ["--from", prev]
            if not self.full:
                # A short fine-tune: one epoch of a few frames, a small validation pass.
                # Stage 2 (the codebook alone: cheap steps) gets more frames, since the
                # new codebook is what every agent's messages will be decoded with.
                frames = {1: 8, 2: 96, 3: 16}[stage]
                args += ["--set", f"train_params.train_frames={frames}",
                         "--set", "train_params.epoches=1", "--set", "train_params.val_frames=4"]
                if stage == 1:  # fresh Adam steps at 0.002 would undo the shipped weights
                    args += ["--set", "optimizer.lr=0.00002"]
            self.mark(f"stage {stage}")
            start = time.time()
            self.cluster.run(args, f"train-stage{stage}")
            with open(os.path.join(self.out, f"stage{stage}.json")) as f:
                r = json.load(f)
            prev = f"demo/stage{stage}/last.pth"  # as the trainer names it: artifacts-relative
            stages[str(stage)] = {"steps": r["steps"], "final_loss": r["final_losses"].get("total"),
                                  "losses": r["final_losses"],
                                  "checkpoint": f"out/demo/artifacts/{prev}",
                                  "validation_ap": r["validation_ap"],
                                  "seconds": round(time.time() - start, 1)}
            self.say(f"stage {stage}: {r['steps']} steps, loss {r['final_losses']}, "
                     f"{r['checkpoint']}")
        self.summary["stages"] = stages
        self.stage3 = prev

    def quantize(self):
        out = "demo/cpu-stage3.int8"
        args = ["quantize", "--quantizer", self.cluster.address("quantizer"),
                "--checkpoint", self.stage3, "--config", f"{PRESET}/stage3.yaml", "--out", out,
                "--n-bits-w", "8", "--n-bits-a", "8",
                "--json", os.path.join(self.out, "quantize.json")]
        if not self.full:
            args += ["--num-cali-batches", "4", "--iters-w", "100", "--eval-frames", "8"]
        self.mark("quantize")
        self.cluster.run(args, "quantize")
        with open(os.path.join(self.out, "quantize.json")) as f:
            report = json.load(f)
        self.int8 = out
        self.summary["quantization"] = {
            "bits": {"weights": 8, "activations": 8},
            "model_bytes_fp32": report["fp32"]["bytes"],
            "model_bytes_int8": report["int8"]["bytes"],
            "artifact": out,
            "report": "out/demo/quantize.json",
        }
        self.say(f"INT8 artifact {out}: {report['int8']['bytes']:,} bytes of tensors "
                 f"(FP32 {report['fp32']['bytes']:,})")

    def rollout(self):
        ckpt = os.path.join(self.artifacts, self.stage3)
        int8 = os.path.join(self.artifacts, self.int8)
        before = self.fusion_status()
        old = before["codebook_digest"]
        t0 = time.time()
        # The shipped model's live AP, over the fusion service's last ap_window frames.
        ap_before = self.rolling_ap(t0, "shipped model")
        self.mark("roll-out")
        self.cluster.run(["fusion", "load", "--checkpoint", ckpt, "--int8", int8]
                         + self.cluster.endpoint_args(), "rollout")
        new = self.fusion_status()["codebook_digest"]
        order = sorted((int(a) for a in self.cluster.endpoints["agents"]), key=lambda a: (a == 0, a < 0, a))
        for agent in order:  # the ego last
            self.cluster.run(["agent", "load", "--agent", str(agent), "--checkpoint", ckpt,
                              "--int8", int8] + self.cluster.endpoint_args(), "rollout")
        # Every agent now sends the new codebook: the old one can go.
        held = {c["digest"]: c for c in self.fusion_status()["codebooks"]}
        if held.get(old, {}).get("agents"):
            raise StepError(f"agents {held[old]['agents']} still send codebook {old}")
        if old != new:
            self.cluster.run(["fusion", "retire-codebook", old] + self.cluster.endpoint_args(),
                             "rollout")
        self.wait_frames(5, 120, "the new model settled")
        self.settle()
        t1 = time.time()
        r = self.loss_between(t0, t1, "roll-out")
        r.update({"old_codebook": old, "new_codebook": new, "agents_order": order,
                  "ap_before": ap_before,
                  "seconds": round(t1 - t0, 1),
                  "messages_rejected_codebook_digest": self.prom.delta(
                      'qv2x_fusion_rejected_messages_total{reason="codebook_digest"}', t0, t1,
                      "roll-out: rejected for their codebook digest")})
        self.summary["rollout"] = r
        self.say(f"roll-out {old} -> {new}: {r['frames_fused']:.0f} frames fused, "
                 f"{r['frames_lost']:.0f} lost, {r['messages_rejected']:.0f} rejected")
        if r["frames_lost"] > 0 or r["messages_rejected_codebook_digest"] > 0:
            raise StepError(f"the roll-out lost {r['frames_lost']:.0f} frames and had "
                            f"{r['messages_rejected_codebook_digest']:.0f} digest rejections")

    def loss_between(self, t0, t1, what):
        """What happened to the frames between t0 and t1. A frame is lost when the ego sent
        its sweep and no boxes came out: fusing failed, or the ego's message was rejected
        or late. Frames that only other agents sent (the ego, pacing itself to its encode
        time, skipped that tick) close without boxes too: counted apart, not as lost."""
        p, ego = self.prom, self.ego
        r = {
            "frames_fused": p.delta('qv2x_fusion_frames_total{outcome="fused"}', t0, t1,
                                    f"{what}: frames fused"),
            "frames_failed": p.delta('qv2x_fusion_frames_total{outcome="error"}', t0, t1,
                                     f"{what}: frames that failed to fuse"),
            "frames_without_ego": p.delta('qv2x_fusion_frames_total{outcome="no_ego"}', t0, t1,
                                          f"{what}: ticks the ego skipped"),
            "ego_messages_rejected": p.delta(f'qv2x_agent_rejected_messages_total{{agent="{ego}"}}',
                                             t0, t1, f"{what}: ego messages rejected"),
            "ego_messages_late": p.delta(f'qv2x_fusion_late_messages_total{{agent="{ego}"}}',
                                         t0, t1, f"{what}: ego messages late"),
            "messages_rejected": p.delta("qv2x_fusion_rejected_messages_total", t0, t1,
                                         f"{what}: messages rejected"),
            # Deadline misses: a slow agent's message arrives after its frame was fused.
            "messages_late": p.delta("qv2x_fusion_late_messages_total", t0, t1,
                                     f"{what}: late messages"),
        }
        r["frames_lost"] = r["frames_failed"] + r["ego_messages_rejected"] + r["ego_messages_late"]
        return r

    def set_precision(self, precision):
        self.cluster.run(["fusion", "set-precision", precision] + self.cluster.endpoint_args(),
                         "swap")
        for agent in sorted(int(a) for a in self.cluster.endpoints["agents"]):
            self.cluster.run(["agent", "set-precision", "--agent", str(agent), precision]
                             + self.cluster.endpoint_args(), "swap")

    def phase(self, precision, frames):
        t0 = time.time()
        self.wait_frames(frames, 900, f"running the {precision.upper()} phase")
        self.settle()
        return t0, time.time()

    def phase_stats(self, precision, t0, t1):
        p, w = self.prom, f"{max(1, int(t1 - t0))}s"
        sel = f'precision="{precision}"'
        tag = precision.upper()
        sent = p.delta(f"qv2x_agent_sent_bytes_total{{{sel}}}", t0, t1, f"{tag}: bytes sent")
        msgs = p.delta(f"qv2x_agent_frames_sent_total{{{sel}}}", t0, t1, f"{tag}: messages sent")
        fp32 = p.delta(f"qv2x_agent_feature_fp32_bytes_total{{{sel}}}", t0, t1,
                       f"{tag}: FP32 feature bytes")
        q = lambda quant, metric, name: p.scalar(
            f"histogram_quantile({quant}, sum by (le) (increase({metric}_bucket{{{sel}}}[{w}])))",
            t1, f"{tag}: {name}")
        frames = p.delta('qv2x_fusion_frames_total{outcome="fused"}', t0, t1, f"{tag}: frames fused")
        agents = p.delta("qv2x_fusion_agents_per_frame_sum", t0, t1, f"{tag}: agents fused")
        return {
            "seconds": round(t1 - t0, 1),
            "frames": frames,
            "fused_frames_per_second": frames / (t1 - t0),
            "agents_per_frame": agents / frames if frames else None,
            "messages": msgs,
            "bytes_per_message": sent / msgs if msgs else None,
            "compression_ratio": fp32 / sent if sent else None,
            "encode_latency_p50_s": q(0.5, "qv2x_agent_encode_duration_seconds", "encode p50"),
            "encode_latency_p95_s": q(0.95, "qv2x_agent_encode_duration_seconds", "encode p95"),
            "e2e_latency_p50_s": q(0.5, "qv2x_fusion_e2e_latency_seconds", "end-to-end p50"),
            "e2e_latency_p95_s": q(0.95, "qv2x_fusion_e2e_latency_seconds", "end-to-end p95"),
            "ap": self.rolling_ap(t1, tag),
        }

    def swaps(self):
        fp32 = self.phase("fp32", self.phase_frames)
        self.summary["fp32"] = self.phase_stats("fp32", *fp32)
        self.grab_frame()
        swap_loss = {}
        for target, label in (("int8", "-> INT8"), ("fp32", "-> FP32")):
            t0 = time.time()
            self.mark(label)
            self.set_precision(target)
            if target == "int8":
                phase = self.phase("int8", self.phase_frames)
                self.summary["int8"] = self.phase_stats("int8", *phase)
            else:
                self.wait_frames(10, 300, "back in FP32")
                self.settle()
            swap_loss[target] = self.loss_between(t0, time.time(), f"swap to {target}")
        self.summary["swap"] = {
            "frames_lost": sum(s["frames_lost"] for s in swap_loss.values()),
            "messages_rejected": sum(s["messages_rejected"] for s in swap_loss.values()),
            "messages_late": sum(s["messages_late"] for s in swap_loss.values()),
            "to_int8": swap_loss["int8"], "back_to_fp32": swap_loss["fp32"],
        }

    def grab_frame(self):
        """One fused frame (its detections) for the bird's-eye picture."""
        out = self.cluster.run(["watch", "--json", "--frames", "1", "--fusion",
                                self.cluster.address("fusion")], "watch", timeout_s=60,
                               capture=True)
        self.frame = json.loads(out.strip().splitlines()[-1])

    def pictures(self):
        f = self.frame
        export = os.path.join(self.out, "frame.json")
        self.cluster.run(["sim", "--scene", SCENE, "--scenario", str(f.get("scenario", 0)),
                          "--render-frame", str(f.get("frame_index", 0)), "--export", export,
                          "--point-stride", "2"], "sim")
        with open(export) as fh:
            scene_frame = json.load(fh)
        agents = ", ".join(str(a["agent_id"]) for a in f["agents"])
        frame_png(scene_frame, f["boxes"], os.path.join(self.out, "frame.png"),
                  os.path.join(self.out, "plot-frame"),
                  f"fused frame {f['frame_id']} (scenario {f.get('scenario', 0)}, "
                  f"#{f.get('frame_index', 0)}): agents {agents}, {len(f['boxes'])} detections, "
                  f"e2e {1e3 * f['e2e_latency_seconds']:.0f} ms")
        start, end, step = self.t0, time.time(), 2
        p = self.prom

        def rows(expr, label_of, scale=1.0):
            out = []
            for labels, pts in p.range(expr, start, end, step):
                out.append((label_of(labels), [(t - start, v * scale) for t, v in pts]))
            return out

        series = {
            "bytes": rows("sum(rate(qv2x_agent_sent_bytes_total[10s])) / "
                          "sum(rate(qv2x_agent_frames_sent_total[10s]))",
                          lambda l: "all agents"),
            "encode": rows("histogram_quantile(0.5, sum by (le, precision) "
                           "(rate(qv2x_agent_encode_duration_seconds_bucket[10s])))",
                           lambda l: l.get("precision", "?").upper(), 1e3),
            "e2e": rows("histogram_quantile(0.5, sum by (le, precision) "
                        "(rate(qv2x_fusion_e2e_latency_seconds_bucket[10s])))",
                        lambda l: l.get("precision", "?").upper(), 1e3),
        }
        ev = {label: t - start for t, label in self.events}
        marks = [(t - start, label) for t, label in self.events]
        phases = [(ev["stage 1"], ev["roll-out"], "training + PTQ", "#999999"),
                  (ev["roll-out"], ev["roll-out"] + self.summary["rollout"]["seconds"],
                   "roll-out", "#ff9900"),
                  (ev["roll-out"] + self.summary["rollout"]["seconds"], ev["-> INT8"], "FP32",
                   "#1f77b4"),
                  (ev["-> INT8"], ev["-> FP32"], "INT8", "#2ca02c")]
        timeline_png(series, marks, phases, os.path.join(self.out, "timeline.png"),
                     os.path.join(self.out, "plot-timeline"),
                     "qv2x demo: bytes per message, encode and end-to-end latency (Prometheus, 10 s rates)")

    # ------------------------------------------------------------------ report
    def write_summary(self):
        self.summary["steps"] = {n: round(s, 1) for n, s in self.steps}
        self.summary["events"] = [{"t_s": round(t - self.t0, 1), "label": l} for t, l in self.events]
        self.summary["prometheus"] = {"url": self.prom.url, "queries": self.prom.queries}
        self.summary["cpu"] = cpu_model()
        self.summary["wall_seconds"] = round(time.time() - self.t0, 1)
        with open(os.path.join(self.out, "summary.json"), "w") as f:
            json.dump(self.summary, f, indent=2)
        print(table(self.summary), flush=True)

    def stop(self):
        if self.keep and self.cluster and self.cluster.alive():
            self.say("KEEP=1: the cluster and Prometheus keep running")
            print(f"  Prometheus   {self.prom.url}  (graph: {self.prom.url}/graph)")
            print("  metrics      fusion http://127.0.0.1:9480/metrics, agents 9490-9493")
            print(f"  try          build/bin/qv2x watch --endpoints out/demo/run/endpoints.json")
            print(f"               build/bin/qv2x fusion status --endpoints out/demo/run/endpoints.json")
            print(f"  stop         kill {self.cluster.proc.pid} {self.prom.proc.pid}   "
                  f"(the scene launcher, then Prometheus; data in {self.prom.data})")
            return
        if self.cluster:
            self.cluster.down()
        if self.prom:
            self.prom.stop()

    def run(self):
        self.step("preflight", self.preflight)
        self.step("start Prometheus", self.start_prometheus)
        self.step("start the scene (fusion, 4 agents, trainer, quantizer)", self.start_scene)
        self.step("train stages 1, 2, 3 through the trainer RPC", self.train)
        self.step("quantize W8A8 through the quantizer RPC", self.quantize)
        self.step("roll the new model into the running scene", self.rollout)
        self.step("FP32, then INT8 live, then back", self.swaps)
        self.step("pictures", self.pictures)
        self.write_summary()


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return "unknown"


def fmt(v, scale=1.0, digits=1, unit=""):
    if v is None or v != v:
        return "n/a"
    return f"{v * scale:,.{digits}f}{unit}"


def table(s):
    rows = [("", "FP32", "INT8")]
    f, i = s["fp32"], s["int8"]
    rows += [
        ("frames fused", fmt(f["frames"], digits=0), fmt(i["frames"], digits=0)),
        ("fused frames/s, agents/frame",
         f"{fmt(f['fused_frames_per_second'], digits=1)}, {fmt(f['agents_per_frame'], digits=2)}",
         f"{fmt(i['fused_frames_per_second'], digits=1)}, {fmt(i['agents_per_frame'], digits=2)}"),
        ("bytes per message", fmt(f["bytes_per_message"], digits=0), fmt(i["bytes_per_message"], digits=0)),
        ("vs FP32 features", fmt(f["compression_ratio"], digits=0, unit="x"),
         fmt(i["compression_ratio"], digits=0, unit="x")),
        ("encode p50 / p95", f"{fmt(f['encode_latency_p50_s'], 1e3, 0)} / {fmt(f['encode_latency_p95_s'], 1e3, 0)} ms",
         f"{fmt(i['encode_latency_p50_s'], 1e3, 0)} / {fmt(i['encode_latency_p95_s'], 1e3, 0)} ms"),
        ("end-to-end p50 / p95", f"{fmt(f['e2e_latency_p50_s'], 1e3, 0)} / {fmt(f['e2e_latency_p95_s'], 1e3, 0)} ms",
         f"{fmt(i['e2e_latency_p50_s'], 1e3, 0)} / {fmt(i['e2e_latency_p95_s'], 1e3, 0)} ms"),
    ]
    for c in CLASSES:
        rows.append((f"{c} AP 0.3/0.5/0.7", "/".join(fmt(f["ap"][c][t], digits=2) for t in IOUS),
                     "/".join(fmt(i["ap"][c][t], digits=2) for t in IOUS)))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = ["", "qv2x demo summary (read from Prometheus)"]
    lines += [f"  {a:<{w0}}  {b:>{w1}}  {c}" for a, b, c in rows]
    st, q, r, sw = s["stages"], s["quantization"], s["rollout"], s["swap"]
    lines.append("  training: " + ", ".join(
        f"stage {k} {v['steps']} steps loss {fmt(v['final_loss'], digits=3)} ({v['seconds']:.0f} s)"
        for k, v in st.items()))
    lines.append(f"  INT8 model {q['model_bytes_int8']:,} B vs FP32 {q['model_bytes_fp32']:,} B "
                 f"({q['model_bytes_int8'] / q['model_bytes_fp32']:.1%})")
    lines.append(f"  roll-out {r['old_codebook']} -> {r['new_codebook']} in {r['seconds']:.0f} s: "
                 f"{r['frames_fused']:.0f} frames fused, {r['frames_lost']:.0f} lost, "
                 f"{r['messages_rejected']:.0f} messages rejected, {r['messages_late']:.0f} late")
    ab = r["ap_before"]["vehicle"]
    lines.append(f"  vehicle AP 0.3/0.5/0.7 before the roll-out (shipped model): "
                 + "/".join(fmt(ab[t], digits=2) for t in IOUS))
    lines.append(f"  swaps FP32 -> INT8 -> FP32: {sw['frames_lost']:.0f} frames lost, "
                 f"{sw['messages_rejected']:.0f} messages rejected, {sw['messages_late']:.0f} late")
    lines.append(f"  {s['wall_seconds']:.0f} s on {s['cpu']}; out/demo/summary.json, frame.png, timeline.png")
    return "\n".join(lines)


def main():
    demo = Demo()
    # SIGTERM stops the demo like Ctrl-C: the cluster goes down in order.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    code = 0
    try:
        demo.run()
    except StepError as e:
        print(f"demo FAILED: {e}", file=sys.stderr, flush=True)
        code = 1
    except KeyboardInterrupt:
        print("demo interrupted", file=sys.stderr, flush=True)
        code = 130
    finally:
        demo.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
