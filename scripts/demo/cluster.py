"""The demo's cluster: `qv2x scene up` (fusion, agents, trainer, quantizer as supervised
child processes on 127.0.0.1) and the `qv2x` client commands a user would type."""
import json
import os
import shlex
import signal
import socket
import subprocess
import time


class StepError(RuntimeError):
    pass


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, repo, build, scene, run_dir, artifacts, log_dir, echo):
        self.repo = repo
        self.qv2x = os.path.join(build, "bin/qv2x")
        self.scene = scene
        self.run_dir = run_dir
        self.artifacts = artifacts
        self.log_dir = log_dir
        self.echo = echo  # prints the commands it runs, as a user would type them
        self.proc = None
        self.endpoints = None

    def up(self, timeout_s=600):
        endpoints = os.path.join(self.run_dir, "endpoints.json")
        if os.path.exists(endpoints):
            os.remove(endpoints)
        argv = [self.qv2x, "scene", "up", "--config", self.scene, "--with-training",
                "--artifacts", self.artifacts, "--run-dir", self.run_dir]
        self.echo(self.display(argv) + "   &")
        log = open(os.path.join(self.log_dir, "scene.log"), "ab")
        # Its own session: Ctrl-C reaches the demo, which stops the scene in order.
        self.proc = subprocess.Popen(argv, cwd=self.repo, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        end = time.time() + timeout_s
        while time.time() < end:
            if self.proc.poll() is not None:
                raise StepError(f"qv2x scene up exited with {self.proc.returncode}: "
                                f"{self.log_tail()}")
            if os.path.exists(endpoints):
                with open(endpoints) as f:
                    self.endpoints = json.load(f)
                return
            time.sleep(0.5)
        raise StepError(f"the scene did not come up within {timeout_s} s: {self.log_tail()}")

    def display(self, argv):
        """The command as a user in the repository root would type it."""
        rel = lambda a: os.path.relpath(a, self.repo) if a.startswith(self.repo + "/") else a
        return " ".join(shlex.quote(rel(a)) for a in argv)

    def log_tail(self, n=5):
        path = os.path.join(self.log_dir, "scene.log")
        try:
            with open(path, errors="replace") as f:
                lines = [l.rstrip() for l in f if l.strip()]
        except OSError:
            return "(no log)"
        return " | ".join(lines[-n:]) + f" (log {path})"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def down(self, timeout_s=90):
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)  # agents first, then fusion, gracefully
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def address(self, service):
        if service == "fusion":
            e = self.endpoints["fusion"]
        else:
            e = self.endpoints["services"][service]
        return f"{e.get('host', '127.0.0.1')}:{e['grpc_port']}"

    def run(self, args, log_name=None, timeout_s=1800, capture=False):
        """Runs `qv2x ARGS`; raises StepError with the tail of its output on failure."""
        argv = [self.qv2x] + args
        self.echo(self.display(argv))
        log_path = os.path.join(self.log_dir, (log_name or args[0]) + ".log")
        with open(log_path, "ab") as log:
            p = subprocess.run(argv, cwd=self.repo, stdout=subprocess.PIPE,
                               stderr=log if capture else subprocess.STDOUT, timeout=timeout_s)
            if not capture:
                log.write(p.stdout)
        out = p.stdout.decode(errors="replace")
        if p.returncode != 0:
            try:
                with open(log_path, errors="replace") as f:
                    tail = " | ".join(l.strip() for l in f.readlines()[-4:] if l.strip())
            except OSError:
                tail = out[-400:]
            raise StepError(f"`qv2x {' '.join(args[:3])} ...` exited with {p.returncode}: {tail}")
        return out

    def json(self, args, log_name=None):
        return json.loads(self.run(args, log_name, capture=True))

    def endpoint_args(self):
        return ["--endpoints", os.path.join(self.run_dir, "endpoints.json")]
