#!/usr/bin/env python3
"""Load test: a scene's real services (`qv2x scene up`: fusion and N qv2x-agent processes)
on 127.0.0.1 for a bounded time, then every message accounted for from the metrics.

  scripts/load-test.py --agents 8 --seconds 60       # out/load/8agents.json + a table

Steps: start the scene; warm up; measure a window (rates, end-to-end latency per fused
frame from `qv2x watch --json` and from the fusion histogram, RSS of every process each
second); then drain so that the final counters are exact:
  1. fusion is paused (SIGSTOP): agents stop within two frames (lock-step waits for a
     closed frame; realtime holds at most two unclosed frames), and their counters are
     read once they stay unchanged;
  2. the agents are paused and fusion resumed: it reads what is in its sockets and its
     deadline closes every open frame; its counters are read once they stay unchanged;
  3. everything resumes and the scene is stopped (SIGTERM).
Messages that reach fusion only in step 2 may be counted late (or refused as stale):
the drain's, not the window's (the window's counts are reported separately).
Output: out/load/<run>.json (e.g. 16agents.json, 16agents-40hz-cav16.json) and a table;
logs and port files in out/load/run-<run>/.
--check exits 1 unless every identity holds exactly, no service restarted and no
process grew its RSS by more than --max-rss-growth-mib after the warm-up.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

import yaml  # python3-yaml (scripts/install-deps.sh)

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "load"))
import metrics  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


class LoadError(RuntimeError):
    pass


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} CPUs"
    return f"{os.cpu_count()} CPUs"


def wait_quiet(read, what, polls=4, interval_s=0.5, timeout_s=60):
    """Reads `read()` until it returns the same value `polls` times in a row."""
    end = time.time() + timeout_s
    last, same = None, 0
    while time.time() < end:
        value = read()
        same = same + 1 if value == last else 1
        last = value
        if same >= polls:
            return value
        time.sleep(interval_s)
    raise LoadError(f"{what} did not settle within {timeout_s} s (last {last})")


class Scene:
    """`qv2x scene up` in its own session, its services' pids and metrics endpoints."""

    def __init__(self, args, run_dir):
        self.args, self.run_dir = args, run_dir
        self.qv2x = os.path.join(args.build, "bin/qv2x")
        self.endpoints_path = os.path.join(run_dir, "endpoints.json")
        self.proc = self.watch = None
        self.pids = {}     # service name -> pid
        self.urls = {}     # service name -> /metrics URL
        self.frames = []   # (unix time, e2e seconds) per fused frame, from qv2x watch

    def up(self, timeout_s=600):
        os.makedirs(self.run_dir, exist_ok=True)
        if os.path.exists(self.endpoints_path):
            os.remove(self.endpoints_path)
        argv = [self.qv2x, "scene", "up", "--config", self.args.scene_file, "--agents",
                str(self.args.agents), "--ephemeral-ports", "--run-dir", self.run_dir]
        if self.args.pace:
            argv += ["--pace", self.args.pace]
        print("$ " + " ".join(os.path.relpath(a, REPO) if a.startswith(REPO) else a
                              for a in argv), flush=True)
        with open(os.path.join(self.run_dir, "scene.log"), "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        end = time.time() + timeout_s
        while not os.path.exists(self.endpoints_path):
            if self.proc.poll() is not None:
                raise LoadError(f"qv2x scene up exited with {self.proc.returncode} "
                                f"(log {self.run_dir}/scene.log)")
            if time.time() > end:
                raise LoadError(f"the scene did not come up within {timeout_s} s")
            time.sleep(0.2)
        with open(self.endpoints_path) as f:
            e = json.load(f)
        url = lambda ep: f"http://{ep.get('host', '127.0.0.1')}:{ep['metrics_port']}/metrics"
        self.urls = {"fusion": url(e["fusion"])}
        self.urls.update({f"agent {a}": url(ep) for a, ep in e["agents"].items()})
        self.pids = self.service_pids()
        missing = set(self.urls) - set(self.pids)
        if missing:
            raise LoadError(f"no process found for {sorted(missing)}")
        self.watch = subprocess.Popen([self.qv2x, "watch", "--endpoints", self.endpoints_path,
                                       "--json"], cwd=REPO, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        threading.Thread(target=self._read_watch, daemon=True).start()

    def _read_watch(self):
        for line in self.watch.stdout:
            try:
                f = json.loads(line)
            except ValueError:
                continue
            self.frames.append((time.time(), float(f.get("e2e_latency_seconds", 0.0))))

    def service_pids(self):
        out = {}
        for pid, argv in procs.children(self.proc.pid).items():
            name = procs.service_name(argv)
            if name:
                out[name] = pid
        return out

    def restarted(self):
        """Services whose process is not the one found at start (the launcher restarts
        a crashed service)."""
        now = self.service_pids()
        return sorted(n for n, pid in self.pids.items() if now.get(n) != pid)

    def scrape(self, names=None):
        return {n: metrics.scrape(self.urls[n]) for n in (names or self.urls)}

    def rss(self):
        out = {n: procs.rss_bytes(p) for n, p in self.pids.items()}
        out["launcher"] = procs.rss_bytes(self.proc.pid)
        return {n: v for n, v in out.items() if v is not None}

    def down(self):
        procs.resume(list(self.pids.values()))
        for p in (self.watch, self.proc):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def derived_scene(args, run_dir):
    """The scene file to run: --scene itself, or a copy in the run folder with --rate and
    --max-cav applied (max_cav is a model config key: the copy points at a copy of the
    model config too). Returns (path, scene as loaded, max_cav)."""
    with open(os.path.join(REPO, args.scene)) as f:
        scene = yaml.safe_load(f)
    with open(os.path.join(REPO, scene["cluster"]["model"]["config"])) as f:
        model = yaml.safe_load(f)
    if args.agents > len(scene["agents"]):
        raise LoadError(f"--agents {args.agents}: {args.scene} has {len(scene['agents'])}")
    if args.rate is None and args.max_cav is None:
        return args.scene, scene, model["train_params"]["max_cav"]
    os.makedirs(run_dir, exist_ok=True)
    if args.rate is not None:
        scene["rate_hz"] = args.rate
    if args.max_cav is not None:
        model["train_params"]["max_cav"] = args.max_cav
        scene["cluster"]["model"]["config"] = os.path.join(run_dir, "model.yaml")
        with open(scene["cluster"]["model"]["config"], "w") as f:
            yaml.safe_dump(model, f, sort_keys=False)
    path = os.path.join(run_dir, "scene.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(scene, f, sort_keys=False)
    return path, scene, model["train_params"]["max_cav"]


def run_name(args):
    """<n>agents, with the overrides: 16agents-40hz-cav16."""
    name = f"{args.agents}agents"
    if args.rate is not None:
        name += f"-{args.rate:g}hz"
    if args.max_cav is not None:
        name += f"-cav{args.max_cav}"
    return name


def run(args):
    run_dir = os.path.join(args.out, "run-" + run_name(args))
    args.scene_file, scene_yaml, max_cav = derived_scene(args, run_dir)
    rate_hz = float(scene_yaml["rate_hz"])
    pace = args.pace or scene_yaml["cluster"]["pace"]
    scene = Scene(args, run_dir)
    rss_max = {}
    stop_sampling = threading.Event()

    def sample_rss():
        while not stop_sampling.wait(1.0):
            for n, v in scene.rss().items():
                rss_max[n] = max(rss_max.get(n, 0), v)

    try:
        scene.up()
        agent_names = sorted((n for n in scene.urls if n.startswith("agent ")),
                             key=lambda n: int(n.split()[1]))
        agent_ids = [int(n.split()[1]) for n in agent_names]
        print(f"scene up: fusion and {len(agent_ids)} agents; warm-up {args.warmup:g} s, "
              f"then {args.seconds:g} s measured", flush=True)
        rss_start = scene.rss()
        threading.Thread(target=sample_rss, daemon=True).start()
        time.sleep(args.warmup)
        rss_warm, t_warm, warm = scene.rss(), time.time(), scene.scrape()
        load_warm = os.getloadavg()[0]
        while time.time() < t_warm + args.seconds:
            time.sleep(min(1.0, t_warm + args.seconds - time.time()))
            if scene.proc.poll() is not None:
                raise LoadError(f"qv2x scene up exited with {scene.proc.returncode}")
        t_end, end, rss_end = time.time(), scene.scrape(), scene.rss()
        load_end = os.getloadavg()[0]
        restarted = scene.restarted()

        # Drain (see the module doc): agents' final counters, then fusion's.
        fusion_pid = scene.pids["fusion"]
        agent_pids = [scene.pids[n] for n in agent_names]
        procs.stop([fusion_pid])
        sent = lambda: tuple(s.sum("qv2x_agent_frames_sent_total")
                             for s in scene.scrape(agent_names).values())
        wait_quiet(sent, "the agents' sent counters (fusion paused)")
        final_agents = scene.scrape(agent_names)
        procs.stop(agent_pids)
        procs.resume([fusion_pid])

        def fusion_state():
            f = scene.scrape(["fusion"])["fusion"]
            return tuple(f.sum(n) for n in (
                "qv2x_fusion_messages_total", "qv2x_fusion_late_messages_total",
                "qv2x_fusion_rejected_messages_total", "qv2x_fusion_frames_total",
                "qv2x_fusion_fused_messages_total", "qv2x_fusion_discarded_messages_total"))
        wait_quiet(fusion_state, "fusion's counters (agents paused)")
        final_fusion = scene.scrape(["fusion"])["fusion"]
    finally:
        stop_sampling.set()
        scene.down()

    # Samples keyed by agent id ("agent 3" -> 3), fusion's as "fusion".
    by_id = lambda samples: {n if n == "fusion" else int(n.split()[1]): s
                             for n, s in samples.items()}
    acc = report.accounting(agent_ids, by_id(final_agents), final_fusion)
    mem = report.memory(rss_start, rss_warm, rss_end, rss_max)
    growth = max((m["growth_mib"] or 0) for m in mem.values())
    win = report.window(agent_ids, by_id(warm), by_id(end), t_end - t_warm, rate_hz)
    checks = {"every agent sent during the window": win["agent_rate_hz_min"] > 0,
              "frames fused during the window": win["frames_fused"] > 0}
    checks.update(acc["checks"])
    checks["no service restarted"] = not restarted
    checks[f"RSS growth after warm-up <= {args.max_rss_growth_mib:g} MiB"] = (
        growth <= args.max_rss_growth_mib)
    result = {
        "agents": len(agent_ids),
        "scene": args.scene,
        "pace": pace,
        "rate_hz": rate_hz,
        "max_cav": max_cav,
        "warmup_s": args.warmup,
        "cpu": cpu_model(),
        # The machine may be shared: its 1-minute load average when the window began / ended.
        "load_average": [load_warm, load_end],
        "command": " ".join(sys.argv),
        "accounting": acc,
        "window": win,
        "latency_exact": report.exact_latency(
            [e for t, e in scene.frames if t_warm <= t <= t_end]),
        "memory": mem,
        "restarted": restarted,
        "checks": checks,
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, run_name(args) + ".json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    shown = os.path.relpath(path, REPO) if path.startswith(REPO + "/") else path
    print(report.table(result) + f"report: {shown}", flush=True)
    return all(v is not False for v in checks.values())


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", type=int, default=8, help="the scene's first N agents (ego first)")
    p.add_argument("--seconds", type=float, default=60, help="measured window after the warm-up")
    p.add_argument("--warmup", type=float, default=5, help="seconds before the window")
    p.add_argument("--scene", default="configs/scenes/load.yaml", help="scene file (repo-relative)")
    p.add_argument("--pace", choices=["realtime", "lockstep"], help="default: the scene's")
    p.add_argument("--rate", type=float, help="scene rate in Hz (default: the scene's)")
    p.add_argument("--max-cav", type=int,
                   help="agents fused per frame, the ego included (default: the model config's)")
    p.add_argument("--build", default=os.environ.get("BUILD_DIR", os.path.join(REPO, "build")),
                   help="build folder with bin/qv2x, bin/qv2x-fusion, bin/qv2x-agent")
    p.add_argument("--out", default=os.path.join(REPO, "out/load"), help="reports and logs")
    p.add_argument("--check", action="store_true", help="exit 1 when a check fails")
    p.add_argument("--max-rss-growth-mib", type=float, default=16)
    args = p.parse_args()
    if args.agents < 1 or args.seconds <= 0 or args.warmup < 0:
        p.error("--agents >= 1, --seconds > 0 and --warmup >= 0")
    if (args.rate is not None and args.rate <= 0) or (args.max_cav is not None and args.max_cav < 1):
        p.error("--rate > 0 and --max-cav >= 1")
    args.build, args.out = os.path.abspath(args.build), os.path.abspath(args.out)
    try:
        ok = run(args)
    except (LoadError, OSError) as e:
        print(f"load test failed: {e}", file=sys.stderr)
        return 1
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
