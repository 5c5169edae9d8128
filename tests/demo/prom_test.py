#!/usr/bin/env python3
"""The demo's Prometheus wrapper against a real Prometheus server: the config it derives
from deploy/prometheus/prometheus-local.yml is valid, and the PromQL helpers give exact
counter deltas, NaN for absent series, and range data. A stand-in /metrics endpoint
(a small HTTP server in this process) plays the fusion service."""
import http.server
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(REPO, "scripts/demo"))
from cluster import free_port  # noqa: E402
from prom import Prometheus  # noqa: E402

FUSED = {"n": 0}


class Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("# TYPE qv2x_fusion_frames_total counter\n"
                f'qv2x_fusion_frames_total{{outcome="fused"}} {FUSED["n"]}\n'
                f'qv2x_fusion_frames_total{{outcome="no_ego"}} 0\n').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@unittest.skipIf(shutil.which("prometheus") is None, "Debian's prometheus is not installed")
class PrometheusTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
        threading.Thread(target=cls.http.serve_forever, daemon=True).start()
        cls.log = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"prom_test_{os.getpid()}.log")
        cls.prom = Prometheus(REPO, free_port(), cls.log,
                              targets={"qv2x-fusion": [f"127.0.0.1:{cls.http.server_port}"]})
        cls.prom.start()

    @classmethod
    def tearDownClass(cls):
        cls.prom.stop()
        cls.http.shutdown()
        cls.http.server_close()

    def wait_value(self, expr, want, timeout_s=20):
        end = time.time() + timeout_s
        while time.time() < end:
            if self.prom.scalar(expr) == want:
                return time.time()
            time.sleep(0.2)
        self.fail(f"{expr} never reached {want}")

    def test_config_is_valid_and_points_at_the_repository_rules(self):
        path = os.path.join(self.prom.data, "prometheus.yml")
        with open(path) as f:
            text = f.read()
        self.assertIn(os.path.join(REPO, "deploy/prometheus/rules.yml"), text)
        self.assertIn(f"127.0.0.1:{self.prom.port}", text)
        if shutil.which("promtool"):
            r = subprocess.run(["promtool", "check", "config", path], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_target_is_scraped_and_deltas_are_exact(self):
        expr = 'qv2x_fusion_frames_total{outcome="fused"}'
        FUSED["n"] = 5
        t0 = self.wait_value(f"sum({expr})", 5)
        FUSED["n"] = 12
        t1 = self.wait_value(f"sum({expr})", 12)
        self.assertEqual(self.prom.delta(expr, t0, t1, "fused"), 7)
        self.assertEqual(self.prom.delta('qv2x_fusion_frames_total{outcome!="fused"}', t0, t1), 0)
        # A series that does not exist reads as NaN, and as no growth.
        self.assertTrue(math.isnan(self.prom.scalar("sum(qv2x_no_such_metric)")))
        self.assertEqual(self.prom.delta("qv2x_no_such_metric", t0, t1), 0)
        up = {t["labels"]["job"]: t["health"] for t in self.prom.targets()}
        self.assertEqual(up["qv2x-fusion"], "up")
        # Whole steps back from t1, so that the last point is evaluated at t1 itself.
        series = self.prom.range(f"sum({expr})", t1 - 10, t1, 1)
        self.assertEqual(len(series), 1)
        values = [v for _, v in series[0][1]]
        self.assertEqual(values[-1], 12)
        self.assertEqual(sorted(values), values, "a counter only grows")
        logged = [q for q in self.prom.queries if q["name"] == "fused @end"]
        self.assertEqual(logged[-1]["value"], 12)


if __name__ == "__main__":
    unittest.main(verbosity=2)
