#!/usr/bin/env python3
"""Cross-checks the deployment files against each other and against the demo scene.

docker-compose and promtool validate each file's syntax; this checks what they cannot:
that the ports in the compose commands, health checks, published ports, Prometheus
targets, Kubernetes args, probes and annotations agree, that the agents are exactly the
scene's (agent k in scene order on 50090+k / 9490+k), that the dashboard only uses
recording rules that exist, and that every path a service is given exists in the repo.

Usage: deploy/check_deploy.py [REPO_ROOT]   (ctest: deploy_consistency). Needs PyYAML;
uses promtool, when found, to parse the dashboard's PromQL.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(__file__), ".."))
SCENE = "configs/scenes/intersection.yaml"
DEFAULT_PORTS = {  # binary -> (gRPC, metrics)
    "qv2x-fusion": (50080, 9480),
    "qv2x-trainer": (50070, 9470),
    "qv2x-quantizer": (50060, 9460),
}
# Labels the services put on their own series; a target label of the same name would
# make Prometheus rename theirs to exported_<name>.
SERVICE_LABELS = {"agent", "precision", "reason", "class", "iou", "term", "state"}

errors = []
checks = 0


def check(cond, msg):
    global checks
    checks += 1
    if not cond:
        errors.append(msg)


def load(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return yaml.safe_load(f)


def flags(args):
    out = {}
    for a in args[1:]:
        m = re.match(r"--([a-z_0-9]+)=(.*)$", a)
        if m:
            out[m.group(1)] = m.group(2)
        else:
            errors.append(f"argument {a!r} of {args[0]} is not --flag=value")
    return out


def port(addr):
    return int(addr.rsplit(":", 1)[1])


def repo_path(p):  # the image's /opt/qv2x/{configs,models} are the repo's folders
    return os.path.join(ROOT, p[len("/opt/qv2x/"):]) if p.startswith("/opt/qv2x/") else None


scene_ids = [int(a["id"]) for a in load(SCENE)["agents"]]
agent_ports = {aid: (50090 + k, 9490 + k) for k, aid in enumerate(scene_ids)}


def check_paths(where, fl):
    for key in ("scene", "config", "checkpoint", "configs"):
        if key in fl:
            p = repo_path(fl[key])
            check(p is not None and os.path.exists(p), f"{where}: --{key}={fl[key]} not in the repo")


# --------------------------------------------------------------------------- compose
compose = load("deploy/docker-compose.yml")
services = compose["services"]
metrics_targets = {}  # compose service -> metrics host:port
seen_agents = []
for name, svc in services.items():
    cmd = svc.get("command")
    if not cmd or not str(cmd[0]).startswith("qv2x-"):
        continue
    binary, fl = cmd[0], flags(cmd)
    where = f"compose {name}"
    check(svc.get("image") == "qv2x:cpu", f"{where}: image is not qv2x:cpu")
    check(svc.get("build", {}).get("dockerfile") == "docker/Dockerfile.cpu", f"{where}: build")
    check(fl.get("listen", "").startswith("0.0.0.0:"), f"{where}: --listen not on 0.0.0.0")
    check(fl.get("metrics", "").startswith("0.0.0.0:"), f"{where}: --metrics not on 0.0.0.0")
    g, m = port(fl["listen"]), port(fl["metrics"])
    if binary == "qv2x-agent":
        aid = int(fl["agent_id"])
        seen_agents.append(aid)
        check(aid in agent_ports, f"{where}: agent {aid} is not in {SCENE}")
        check((g, m) == agent_ports.get(aid), f"{where}: ports {(g, m)} != {agent_ports.get(aid)}")
        fusion_listen = services["fusion"]["command"]
        check(fl.get("fusion") == f"fusion:{port(flags(fusion_listen)['listen'])}",
              f"{where}: --fusion={fl.get('fusion')}")
        check(svc.get("depends_on", {}).get("fusion", {}).get("condition") == "service_healthy",
              f"{where}: does not wait for a healthy fusion")
    else:
        check((g, m) == DEFAULT_PORTS.get(binary), f"{where}: ports {(g, m)} != defaults")
    test = svc.get("healthcheck", {}).get("test", [])
    check(test == ["CMD", "qv2x", "health", f"127.0.0.1:{g}"], f"{where}: healthcheck {test}")
    published = {str(p) for p in svc.get("ports", [])}
    for p in (g, m):
        check(f"127.0.0.1:{p}:{p}" in published, f"{where}: port {p} not published on loopback")
    threads = fl.get("threads")
    if threads is not None:
        env = svc.get("environment", {})
        check(env.get("OMP_NUM_THREADS") == threads == env.get("BLIS_NUM_THREADS"),
              f"{where}: OMP/BLIS threads {env} != --threads={threads}")
    check_paths(where, fl)
    metrics_targets[name] = f"{name}:{m}"
check(sorted(seen_agents) == sorted(scene_ids), f"compose agents {seen_agents} != scene {scene_ids}")

# ------------------------------------------------------------------------ prometheus
for cfg, local in (("deploy/prometheus/prometheus.yml", False),
                   ("deploy/prometheus/prometheus-local.yml", True)):
    prom = load(cfg)
    found = {}
    for job in prom["scrape_configs"]:
        for sc in job.get("static_configs", []):
            labels = sc.get("labels", {})
            check(not SERVICE_LABELS & set(labels), f"{cfg}: target labels {sorted(labels)} "
                  "clash with the services' own labels")
            for t in sc["targets"]:
                if job["job_name"] != "prometheus":
                    found[labels.get("service")] = t
    for svc_name, target in metrics_targets.items():
        want = f"127.0.0.1:{port(target)}" if local else target
        check(found.get(svc_name) == want, f"{cfg}: {svc_name} scraped at {found.get(svc_name)}, "
              f"expected {want}")
    check(prom.get("rule_files") == ["rules.yml"], f"{cfg}: rule_files")

rules = load("deploy/prometheus/rules.yml")
recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}

# ------------------------------------------------------------------------- grafana
dash = json.load(open(os.path.join(ROOT, "deploy/grafana/qv2x-dashboard.json")))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
check(len(exprs) >= 8, "dashboard: too few queries")
for e in exprs:
    for name in re.findall(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", e):
        check(name in recorded, f"dashboard uses {name}, which rules.yml does not record")
ds = load("deploy/grafana/provisioning/datasources/prometheus.yml")["datasources"][0]
dsvar = [v for v in dash["templating"]["list"] if v["name"] == "datasource"][0]
check(dsvar["current"]["value"] == ds["uid"], "dashboard default data source != provisioned uid")
promtool = shutil.which("promtool")
if promtool:  # parse every query by running it through promtool as a recording rule
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:q{i}", "expr": e.replace("$agent", ".*")}
            for i, e in enumerate(exprs)]}]}, f)
    r = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
    os.unlink(f.name)
    check(r.returncode == 0, "dashboard PromQL does not parse:\n" + r.stdout + r.stderr)

# --------------------------------------------------------------------------- k8s
docs = []
for fname in ("namespace.yaml", "fusion.yaml", "agents.yaml"):
    with open(os.path.join(ROOT, "deploy/k8s", fname)) as f:
        docs += [(fname, d) for d in yaml.safe_load_all(f) if d]
kust = load("deploy/k8s/kustomization.yaml")
check(sorted(kust["resources"]) == ["agents.yaml", "fusion.yaml", "namespace.yaml"],
      "kustomization resources")
deployments = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Deployment"}
k8s_agents = []
for name, d in deployments.items():
    where = f"k8s {name}"
    tmpl = d["spec"]["template"]
    labels = tmpl["metadata"]["labels"]
    sel = d["spec"]["selector"]["matchLabels"]
    check(all(labels.get(k) == v for k, v in sel.items()), f"{where}: selector not in labels")
    for k, v in labels.items():
        check(re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", str(v)) is not None,
              f"{where}: label value {k}={v!r} is invalid")
    c = tmpl["spec"]["containers"][0]
    binary, fl = c["args"][0], flags(c["args"])
    g, m = port(fl["listen"]), port(fl["metrics"])
    cports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check(cports == {"grpc": g, "metrics": m}, f"{where}: containerPorts {cports} != args")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check(c.get(probe, {}).get("grpc", {}).get("port") == g, f"{where}: {probe} port")
    ann = tmpl["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == str(m),
          f"{where}: prometheus.io annotations")
    env = {e["name"]: e["value"] for e in c.get("env", [])}
    check(env.get("OMP_NUM_THREADS") == fl.get("threads") == env.get("BLIS_NUM_THREADS"),
          f"{where}: OMP/BLIS threads != --threads")
    check(tmpl["spec"]["securityContext"].get("runAsNonRoot") is True, f"{where}: runs as root")
    if binary == "qv2x-agent":
        aid = int(fl["agent_id"])
        k8s_agents.append(aid)
        check((g, m) == agent_ports.get(aid), f"{where}: ports {(g, m)} != {agent_ports.get(aid)}")
        check(fl.get("fusion") == "qv2x-fusion:50080", f"{where}: --fusion")
    else:
        check((g, m) == DEFAULT_PORTS.get(binary), f"{where}: ports")
    check_paths(where, fl)
check(sorted(k8s_agents) == sorted(scene_ids), f"k8s agents {k8s_agents} != scene {scene_ids}")
for fname, s in docs:
    if s["kind"] != "Service":
        continue
    where = f"k8s Service {s['metadata']['name']}"
    targets = [d for d in deployments.values()
               if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v
                      for k, v in s["spec"]["selector"].items())]
    check(len(targets) == 1, f"{where}: selects {len(targets)} deployments")
    if targets:
        c = targets[0]["spec"]["template"]["spec"]["containers"][0]
        cports = {p["name"]: p["containerPort"] for p in c["ports"]}
        for p in s["spec"]["ports"]:
            check(cports.get(p["targetPort"]) == p["port"], f"{where}: port {p['name']}")

if errors:
    print("\n".join("FAIL: " + e for e in errors))
    print(f"check_deploy: {len(errors)} of {checks} checks failed")
    sys.exit(1)
print(f"check_deploy: all {checks} checks ok")
