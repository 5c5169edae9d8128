"""A real Prometheus server for the demo and the PromQL it asks through the HTTP API.

The server is Debian's `prometheus` binary with deploy/prometheus/prometheus-local.yml
(the same jobs, labels and recording rules as the compose deployment); only its own
listen port and the rules path are adapted, and its data lives in a temporary folder.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml


class PromError(RuntimeError):
    pass


class Prometheus:
    def __init__(self, repo, port, log_path, targets=None):
        self.repo = repo
        self.targets_override = targets or {}  # job name -> [host:port], for tests
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.data = tempfile.mkdtemp(prefix="qv2x-demo-prometheus-")
        self.log_path = log_path
        self.proc = None
        self.queries = []  # every PromQL query made, with its evaluation time and value

    def config(self):
        """prometheus-local.yml with absolute rule paths and this server's own port."""
        src = os.path.join(self.repo, "deploy/prometheus/prometheus-local.yml")
        with open(src) as f:
            cfg = yaml.safe_load(f)
        cfg["rule_files"] = [os.path.join(self.repo, "deploy/prometheus", r)
                             for r in cfg.get("rule_files", [])]
        for job in cfg["scrape_configs"]:
            if job["job_name"] == "prometheus":
                job["static_configs"] = [{"targets": [f"127.0.0.1:{self.port}"]}]
            elif job["job_name"] in self.targets_override:
                job["static_configs"] = [{"targets": self.targets_override[job["job_name"]]}]
        path = os.path.join(self.data, "prometheus.yml")
        with open(path, "w") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
        return path

    def start(self, timeout_s=60):
        binary = shutil.which("prometheus")
        if binary is None:
            raise PromError("Debian's prometheus binary is not installed (make deps installs it)")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.config()}", f"--storage.tsdb.path={self.data}/tsdb",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
             "--web.enable-lifecycle"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        end = time.time() + timeout_s
        while time.time() < end:
            if self.proc.poll() is not None:
                raise PromError(f"prometheus exited with {self.proc.returncode} (log {self.log_path})")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.5)
        raise PromError(f"prometheus not ready on {self.url} after {timeout_s} s")

    def stop(self, keep_data=False):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not keep_data:
            shutil.rmtree(self.data, ignore_errors=True)

    def _get(self, path, params):
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            raise PromError(f"{path} {params}: HTTP {e.code}: {e.read().decode(errors='replace')}")
        if body.get("status") != "success":
            raise PromError(f"{path} {params}: {body.get('error')}")
        return body["data"]

    def targets(self):
        return self._get("/api/v1/targets", {"state": "active"})["activeTargets"]

    def query(self, expr, at=None, label=None):
        """An instant query's result vector: [(labels, value)], values as floats. Queries
        with a label are the figures of the run: they are kept in `queries`."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        out = [(r["metric"], float(r["value"][1])) for r in data["result"]]
        if label is not None:
            self.queries.append({"name": label, "query": expr, "time": at,
                                 "value": out[0][1] if len(out) == 1 else
                                 [{"labels": m, "value": v} for m, v in out]})
        return out

    def scalar(self, expr, at=None, label=None):
        """The single value of `expr` (NaN when it has no sample)."""
        r = self.query(expr, at, label)
        if not r:
            return float("nan")
        if len(r) > 1:
            raise PromError(f"{expr}: {len(r)} series, expected one")
        return r[0][1]

    def delta(self, expr, t0, t1, label=None):
        """Exact growth of a summed counter between two instants (raw values, no
        extrapolation): value at t1 minus value at t0."""
        a = self.scalar(f"sum({expr})", t0, f"{label} @start" if label else None)
        b = self.scalar(f"sum({expr})", t1, f"{label} @end" if label else None)
        return (0.0 if b != b else b) - (0.0 if a != a else a)

    def range(self, expr, start, end, step):
        data = self._get("/api/v1/query_range",
                         {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                          "step": f"{step}s"})
        return [(r["metric"], [(float(t), float(v)) for t, v in r["values"]])
                for r in data["result"]]
