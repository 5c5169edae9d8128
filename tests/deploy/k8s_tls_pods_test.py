#!/usr/bin/env python3
"""The pods of deploy/k8s/tls/cpu, run as processes on 127.0.0.1 with the certificates of
deploy/k8s/tls/make-secret.sh (ctest deploy_k8s_tls_pods; no cluster needed).

For fusion, agent 1, the trainer and the quantizer, each started with its container's
args and environment as the kustomization builds them, and only the Secret items its
volume projects (in a folder standing for /etc/qv2x/tls, mode 0440):
  - the services start with TLS, mutual TLS and the token from the FLAGS_* variables;
  - each exec probe, with its QV2X_TLS_* variables, gets SERVING; the same `qv2x health`
    without them (what a native gRPC probe asks, in plaintext) does not;
  - agent 1, presenting agent-1 from its own items, gets its feature messages accepted by
    fusion under its id, with no identity refusal.
What differs from a pod: /opt/qv2x is this repository, the artifacts folder a temporary
one, the addresses 127.0.0.1 with port 0 (the probes dial the ports actually bound), and
the agent dials fusion at 127.0.0.1 (the fusion certificate names 127.0.0.1 too). No
Kubernetes code runs: kubelet's part (the Secret's projection, the probes) is emulated.

Usage: k8s_tls_pods_test.py --bin BUILD/bin [REPO_ROOT]
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import yaml

CLI = argparse.ArgumentParser()
CLI.add_argument("root", nargs="?", default=os.path.join(os.path.dirname(__file__), "../.."))
CLI.add_argument("--bin", required=True)
ARGS, _rest = CLI.parse_known_args()
ROOT = os.path.abspath(ARGS.root)
BIN = os.path.abspath(ARGS.bin)
TLS_DIR = "/etc/qv2x/tls"
ARTIFACTS = "/var/lib/qv2x/artifacts"
WAIT_S = 300  # bound on each wait, so that a broken service fails the test instead of hanging


def render(rel_dir):
    """deploy/k8s/<rel_dir> built by validate.mjs (equal to kubectl kustomize's build, ctest
    deploy_k8s_kustomize), else by kubectl."""
    d = os.path.join(ROOT, "deploy/k8s", rel_dir)
    validate = os.path.join(ROOT, "deploy/k8s/validate/validate.mjs")
    if shutil.which("node") and os.path.isdir(os.path.join(os.path.dirname(validate), "node_modules")):
        return json.loads(subprocess.run(["node", validate, "--print", d], check=True,
                                         capture_output=True, text=True).stdout)
    out = subprocess.run(["kubectl", "kustomize", d], check=True, capture_output=True, text=True).stdout
    return [o for o in yaml.safe_load_all(out) if o]


def wait_for(what, fn):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.5)
    raise AssertionError(f"gave up after {WAIT_S} s waiting for {what}")


def metric_sum(text, name, **labels):
    total = 0.0
    for m in re.finditer(rf"^{name}(?:\{{([^}}]*)\}})? (\S+)$", text, re.M):
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


class Pod:
    """One Deployment's container as a process: its args and env, paths mapped here."""

    def __init__(self, deployment, tmp, replace=None):
        self.name = deployment["metadata"]["name"]
        self.artifacts = os.path.join(tmp, "artifacts")
        pod = deployment["spec"]["template"]["spec"]
        self.container = c = pod["containers"][0]
        self.dir = os.path.join(tmp, self.name)
        self.tls = os.path.join(self.dir, "tls")
        os.makedirs(self.tls)
        # kubelet's projection of the Secret: only the volume's items, at their paths.
        vol = next(v for v in pod["volumes"] if "secret" in v)
        for item in vol["secret"]["items"]:
            dst = os.path.join(self.tls, item["path"])
            shutil.copyfile(os.path.join(tmp, "certs", item["key"]), dst)
            os.chmod(dst, vol["secret"]["defaultMode"])
        self.env = {e["name"]: self.map(e["value"]) for e in c.get("env", [])}
        args = []
        for a in c["args"][1:]:
            flag = a.split("=", 1)[0]
            if flag in ("--listen", "--metrics"):
                a = f"{flag}=127.0.0.1:0"
            args.append(self.map((replace or {}).get(flag, a)))
        self.port_file = os.path.join(self.dir, "ports")
        args.append(f"--port_file={self.port_file}")
        self.log = open(os.path.join(self.dir, "log"), "w")
        # The container's environment alone (and PATH).
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self.env}
        self.proc = subprocess.Popen([os.path.join(BIN, c["args"][0]), *args], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.ports = None

    def map(self, v):
        return v.replace(TLS_DIR, self.tls).replace(ARTIFACTS, self.artifacts).replace(
            "/opt/qv2x/", ROOT + "/")

    def wait_serving(self):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            if os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    parts = f.read().split()
                return [int(p) for p in parts] if len(parts) == 2 else None
            return None
        self.ports = wait_for(f"{self.name} to serve", ready)

    def probe(self, kind, with_tls_env=True):
        """Runs the container's `kind` probe command (its port: the one bound here)."""
        cmd = list(self.container[kind]["exec"]["command"])
        cmd[-1] = f"127.0.0.1:{self.ports[0]}"
        env = {"PATH": os.environ.get("PATH", "")}
        if with_tls_env:
            env.update({k: v for k, v in self.env.items() if k.startswith("QV2X_")})
        return subprocess.run([os.path.join(BIN, cmd[0]), *cmd[1:]], env=env,
                              capture_output=True, text=True, timeout=60)

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[1]}/metrics", timeout=10) as r:
            return r.read().decode()

    def tail(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()[-3000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class K8sTlsPodsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="qv2x-k8s-tls-pods-")
        os.makedirs(os.path.join(cls.tmp, "artifacts"))
        subprocess.run([os.path.join(ROOT, "deploy/k8s/tls/make-secret.sh"),
                        os.path.join(cls.tmp, "certs")], check=True, capture_output=True)
        deployments = {o["metadata"]["name"]: o for o in render("tls/cpu") if o["kind"] == "Deployment"}
        cls.pods = {}
        try:
            for name in ("qv2x-fusion", "qv2x-trainer", "qv2x-quantizer"):
                cls.pods[name] = Pod(deployments[name], cls.tmp)
            cls.pods["qv2x-fusion"].wait_serving()
            fusion_port = cls.pods["qv2x-fusion"].ports[0]
            cls.pods["qv2x-agent-vehicle-1"] = Pod(
                deployments["qv2x-agent-vehicle-1"], cls.tmp,
                replace={"--fusion": f"--fusion=127.0.0.1:{fusion_port}"})
            for p in cls.pods.values():
                p.wait_serving()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for p in reversed(list(cls.pods.values())):
            p.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_each_pod_holds_only_its_own_key(self):
        for name, p in self.pods.items():
            keys = sorted(f for f in os.listdir(p.tls) if f.endswith(".key"))
            self.assertEqual(len(keys), 1, f"{name}: {keys}")
            self.assertEqual(os.stat(os.path.join(p.tls, keys[0])).st_mode & 0o777, 0o440)

    def test_exec_probes_serving_with_the_pods_certificate_only(self):
        for name, p in self.pods.items():
            kinds = [k for k in ("startupProbe", "readinessProbe", "livenessProbe") if k in p.container]
            self.assertIn("readinessProbe", kinds)
            for kind in kinds:
                r = p.probe(kind)
                self.assertEqual((r.returncode, r.stdout.strip()), (0, "SERVING"),
                                 f"{name} {kind}: {r.stdout}{r.stderr}")
            # What the native gRPC probe would ask: plaintext, refused by the TLS server.
            r = p.probe("readinessProbe", with_tls_env=False)
            self.assertNotEqual(r.returncode, 0, f"{name}: plaintext health check answered")
            # TLS but no client certificate: refused by mutual TLS.
            env_ca_only = {k: v for k, v in p.env.items() if k == "QV2X_TLS_CA"}
            r = subprocess.run([os.path.join(BIN, "qv2x"), "health", f"127.0.0.1:{p.ports[0]}"],
                               env={"PATH": os.environ.get("PATH", ""), **env_ca_only},
                               capture_output=True, text=True, timeout=60)
            self.assertNotEqual(r.returncode, 0, f"{name}: answered a client without certificate")

    def test_agent_streams_to_fusion_under_its_certificate(self):
        fusion = self.pods["qv2x-fusion"]

        def accepted():
            text = fusion.metrics()
            refused = re.findall(r"^qv2x_fusion_rejected_messages_total\{.*\} [1-9].*$", text, re.M)
            self.assertEqual(refused, [], "fusion refused agent 1's messages")
            return metric_sum(text, "qv2x_fusion_messages_total", agent="1")
        self.assertGreaterEqual(wait_for("fusion to accept agent 1's messages", accepted), 1)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], *_rest], verbosity=2)
