#!/usr/bin/env python3
"""Cross-checks the deployment files against each other and against the demo scene.

docker-compose and promtool validate each file's syntax; this checks what they cannot:
that the ports in the compose commands, health checks, published ports, Prometheus
targets, Kubernetes args, probes and annotations agree, that the agents are exactly the
scene's (agent k in scene order on 50090+k / 9490+k), that the dashboard only uses
recording rules that exist, and that every path a service is given exists in the repo.
For deploy/docker-compose.tls.yml: every qv2x service takes its TLS flags from the
environment (--tryfromenv), and the override gives each its own certificate (an agent
the agent-<id> one that fusion checks its id against), the CA, the token, and the health
probe a client certificate.
For deploy/k8s it checks the references the object schemas (deploy_k8s_schema) cannot:
Service and ServiceMonitor selectors, probe and Service ports, claim names, the artifacts
mounts, the GPU placement of the trainer and quantizer, and flags equal to compose's.
For the mutual-TLS variants (deploy/k8s/tls): that they change only the TLS parts of the
pods, that each pod gets compose's FLAGS_* values, its own certificate (an agent the
agent-<id> one) and nothing else from the Secret, readable by its uid and no one else,
exec probes presenting it, and, with openssl, that the certificates make-secret.sh makes
are the files mounted and name the hosts the clients dial.
With --bin DIR (the build's bin/): every flag in a command, --tryfromenv list or FLAGS_*
variable is a flag of that binary (--helpfull), and every QV2X_* variable of a health
probe is one `qv2x health` reads.

Usage: deploy/check_deploy.py [--bin DIR] [REPO_ROOT]   (ctest: deploy_consistency). Needs
PyYAML; uses promtool, when found, to parse the dashboard's PromQL, and node (with
deploy/k8s/validate's packages) or else kubectl to build the kustomizations.
"""
import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

_cli = argparse.ArgumentParser(description="Cross-checks the deployment files.")
_cli.add_argument("root", nargs="?", default=os.path.join(os.path.dirname(__file__), ".."))
_cli.add_argument("--bin", help="folder with qv2x, qv2x-fusion, ... to check flag names against")
ARGS = _cli.parse_args()
ROOT = os.path.abspath(ARGS.root)
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


_binary_flags = {}


def binary_flags(binary):
    """The flags `binary --helpfull` lists; None without --bin."""
    if not ARGS.bin:
        return None
    if binary not in _binary_flags:
        exe = os.path.join(ARGS.bin, binary)
        out = ""
        if os.access(exe, os.X_OK):
            r = subprocess.run([exe, "--helpfull"], capture_output=True, text=True)
            out = r.stdout + r.stderr
        _binary_flags[binary] = set(re.findall(r"^\s+--([a-z0-9_]+) ", out, re.M))
        check(bool(_binary_flags[binary]), f"--bin: {exe} lists no flags with --helpfull")
    return _binary_flags[binary]


def check_flag_names(where, binary, names):
    known = binary_flags(binary)
    unknown = sorted(set(names) - known) if known else []
    check(not unknown, f"{where}: {binary} has no flag {', '.join('--' + n for n in unknown)}")


def check_command_flags(where, binary, fl):  # the flags given and those --tryfromenv names
    check_flag_names(where, binary, list(fl) + fl.get("tryfromenv", "").split(","))


def probe_variables():
    """The QV2X_* variables `qv2x health` reads (its --help names them); None without --bin."""
    if not ARGS.bin:
        return None
    exe = os.path.join(ARGS.bin, "qv2x")
    r = subprocess.run([exe, "health", "--help"], capture_output=True, text=True) \
        if os.access(exe, os.X_OK) else None
    names = set(re.findall(r"\$(QV2X_[A-Z_]+)", r.stdout + r.stderr)) if r else set()
    check(bool(names), f"--bin: `{exe} health --help` names no QV2X_* variable")
    return names


PROBE_VARIABLES = probe_variables()


def check_tls_variables(where, binary, fl, env):
    """FLAGS_* variables are flags of `binary` that its --tryfromenv takes up; QV2X_* ones
    are read by `qv2x health`."""
    flag_vars = [k[len("FLAGS_"):] for k in env if k.startswith("FLAGS_")]
    tryfromenv = fl.get("tryfromenv", "").split(",")
    check(set(flag_vars) <= set(tryfromenv),
          f"{where}: FLAGS_ variables {sorted(set(flag_vars) - set(tryfromenv))} not in --tryfromenv")
    check_flag_names(where, binary, flag_vars)
    probe_vars = {k for k in env if k.startswith("QV2X_")}
    check(PROBE_VARIABLES is None or probe_vars <= PROBE_VARIABLES,
          f"{where}: `qv2x health` reads no {sorted(probe_vars - (PROBE_VARIABLES or set()))}")


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
    check_command_flags(where, binary, fl)
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

# ------------------------------------------------------------------- compose TLS
TLS_FLAGS = ["tls_cert", "tls_key", "tls_ca", "auth_token_file"]
TLS_DIR = "/etc/qv2x/tls"


def tls_cert_name(binary, fl):  # make-certs.sh's name for a service's certificate
    return f"agent-{fl.get('agent_id')}" if binary == "qv2x-agent" else binary[len("qv2x-"):]


def tls_env_of(binary, fl, probe_cert):
    """The TLS variables of a service; its health probe presents `probe_cert` (None: its own)."""
    cert = tls_cert_name(binary, fl)
    probe = probe_cert or cert
    env = {"FLAGS_tls_cert": f"{TLS_DIR}/{cert}.crt", "FLAGS_tls_key": f"{TLS_DIR}/{cert}.key",
           "FLAGS_tls_ca": f"{TLS_DIR}/ca.crt", "FLAGS_auth_token_file": f"{TLS_DIR}/token",
           "QV2X_TLS_CA": f"{TLS_DIR}/ca.crt", "QV2X_TLS_CERT": f"{TLS_DIR}/{probe}.crt",
           "QV2X_TLS_KEY": f"{TLS_DIR}/{probe}.key"}
    if binary == "qv2x-agent":
        env["FLAGS_fusion_tls_ca"] = f"{TLS_DIR}/ca.crt"
    return env
tls = load("deploy/docker-compose.tls.yml")["services"]
for name, svc in services.items():
    cmd = svc.get("command")
    if not cmd or not str(cmd[0]).startswith("qv2x-"):
        continue
    where = f"compose TLS {name}"
    fl = flags(cmd)
    agent = cmd[0] == "qv2x-agent"
    want_flags = TLS_FLAGS + (["fusion_tls_ca"] if agent else [])
    check(fl.get("tryfromenv", "").split(",") == want_flags,
          f"{where}: --tryfromenv={fl.get('tryfromenv')} != {','.join(want_flags)}")
    over = tls.get(name, {})
    check(any(str(v).endswith(f":{TLS_DIR}:ro") for v in over.get("volumes", [])),
          f"{where}: certificates not mounted read-only at {TLS_DIR}")
    env = over.get("environment", {})
    want_env = tls_env_of(cmd[0], fl, probe_cert="client")
    check({k: env.get(k) for k in want_env} == want_env, f"{where}: environment {env}")
    check_tls_variables(where, cmd[0], fl, env)
check(set(tls) <= set(services), f"compose TLS: unknown services {set(tls) - set(services)}")

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
# deploy/k8s/base holds the objects; deploy/k8s (GPU), cpu/ and single-node/ are overlays
# and monitoring/ the ServiceMonitors. deploy/k8s/validate/validate.mjs builds every
# kustomization and checks each object against the Kubernetes schemas (deploy_k8s_schema);
# this checks what the schemas cannot: references between objects, ports, flags against
# compose, volumes and the GPU placement.
K8S = "deploy/k8s"
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")  # Service names: RFC 1035 label
ARTIFACTS = "/var/lib/qv2x/artifacts"
GPU = "nvidia.com/gpu"


def k8s_docs(rel_file):
    with open(os.path.join(ROOT, K8S, rel_file)) as f:
        return [(rel_file, d) for d in yaml.safe_load_all(f) if d]


def compose_value(v):  # ${VAR:-default} -> default, as compose runs without VAR set
    return re.sub(r"\$\{[A-Za-z0-9_]+:-([^}]*)\}", r"\1", str(v))


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


base_kust = load(f"{K8S}/base/kustomization.yaml")
check(sorted(base_kust["resources"]) == ["agents.yaml", "artifacts-pvc.yaml", "fusion.yaml",
                                         "namespace.yaml", "quantizer.yaml", "trainer.yaml"],
      f"k8s base resources {base_kust['resources']}")
check(base_kust.get("namespace") == "qv2x", "k8s base: namespace is not qv2x")
docs = [d for r in base_kust["resources"] for d in k8s_docs(f"base/{r}")]
for fname, d in docs:
    name = d["metadata"]["name"]
    check(DNS_LABEL.match(name) is not None, f"k8s {fname}: name {name!r} is not a DNS label")
    if d["kind"] != "Namespace":
        check(d["metadata"].get("namespace") == "qv2x", f"k8s {fname} {name}: namespace")
pvcs = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "PersistentVolumeClaim"}
check(set(pvcs) == {"qv2x-artifacts"}, f"k8s PVCs {sorted(pvcs)}")
for name, pvc in pvcs.items():
    check(pvc["spec"].get("accessModes") == ["ReadWriteMany"], f"k8s PVC {name}: not ReadWriteMany")

# Variants: which base, and the image each image name becomes.
variants = {"": ("base", {"qv2x": "qv2x:cpu", "qv2x-cuda": "qv2x:cuda"}),
            "cpu": ("../base", {"qv2x": "qv2x:cpu", "qv2x-cuda": "qv2x:cpu"})}
for vdir, (base_ref, want_images) in variants.items():
    where = f"k8s {os.path.join(K8S, vdir)}/kustomization.yaml"
    k = load(os.path.join(K8S, vdir, "kustomization.yaml"))
    check(k.get("resources") == [base_ref], f"{where}: resources {k.get('resources')}")
    got = {i["name"]: f"{i.get('newName', i['name'])}:{i.get('newTag')}" for i in k.get("images", [])}
    check(got == want_images, f"{where}: images {got} != {want_images}")
cpu_kust = load(f"{K8S}/cpu/kustomization.yaml")
patched = sorted(p["target"]["name"] for p in cpu_kust.get("patches", []))
check(patched == ["qv2x-quantizer", "qv2x-trainer"], f"k8s cpu: patches target {patched}")
drop = {op["path"] for op in load(f"{K8S}/cpu/drop-gpu.yaml") if op["op"] == "remove"}
check(drop == {"/spec/template/spec/containers/0/resources/requests/nvidia.com~1gpu",
               "/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu",
               "/spec/template/spec/nodeSelector", "/spec/template/spec/tolerations"},
      f"k8s cpu/drop-gpu.yaml removes {sorted(drop)}")
check(load(f"{K8S}/single-node/kustomization.yaml").get("resources") == ["../cpu"],
      "k8s single-node: not an overlay of ../cpu")

# compose services by what they run, to compare flags and threads with.
compose_by_role = {}
for cname, svc in services.items():
    cmd = svc.get("command")
    if cmd and str(cmd[0]).startswith("qv2x-"):
        fl = flags([compose_value(a) for a in cmd])
        compose_by_role[(cmd[0], fl.get("agent_id"))] = (cname, fl, svc.get("environment", {}))

deployments = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Deployment"}
k8s_agents = []
for name, d in deployments.items():
    where = f"k8s {name}"
    tmpl = d["spec"]["template"]
    pod = tmpl["spec"]
    labels = tmpl["metadata"]["labels"]
    sel = d["spec"]["selector"]["matchLabels"]
    check(selects(sel, labels), f"{where}: selector not in labels")
    check(selects(sel, d["metadata"].get("labels", {})), f"{where}: own labels lack the selector's")
    for k, v in labels.items():
        check(re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", str(v)) is not None,
              f"{where}: label value {k}={v!r} is invalid")
    check(d["spec"].get("replicas") == 1 and d["spec"].get("strategy", {}).get("type") == "Recreate",
          f"{where}: not one replica with Recreate")
    check(len(pod["containers"]) == 1, f"{where}: one container expected")
    c = pod["containers"][0]
    binary, fl = c["args"][0], flags(c["args"])
    check_command_flags(where, binary, fl)
    g, m = port(fl["listen"]), port(fl["metrics"])
    cports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check(cports == {"grpc": g, "metrics": m}, f"{where}: containerPorts {cports} != args")
    # Probes through grpc.health.v1 on the gRPC port; a startup probe where the model is
    # loaded before serving (--checkpoint at start), none needed where it is loaded per RPC.
    probes = ["readinessProbe", "livenessProbe"] + (["startupProbe"] if "checkpoint" in fl else [])
    for probe in probes:
        check(c.get(probe, {}).get("grpc", {}).get("port") == g, f"{where}: {probe} not gRPC on {g}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        pp = c.get(probe, {}).get("grpc", {}).get("port")
        check(pp is None or pp in cports.values(), f"{where}: {probe} port {pp} not a container port")
    ann = tmpl["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == str(m)
          and ann.get("prometheus.io/path") == "/metrics", f"{where}: prometheus.io annotations")
    env = {e["name"]: e["value"] for e in c.get("env", [])}
    check(env.get("OMP_NUM_THREADS") == env.get("BLIS_NUM_THREADS") is not None,
          f"{where}: OMP_NUM_THREADS != BLIS_NUM_THREADS")
    if "threads" in fl:
        check(env.get("OMP_NUM_THREADS") == fl["threads"], f"{where}: OMP/BLIS threads != --threads")
    check(pod["securityContext"].get("runAsNonRoot") is True, f"{where}: runs as root")
    # The same flags and threads as the compose service that runs the same binary (agent).
    cname, cfl, cenv = compose_by_role.get((binary, fl.get("agent_id")), (None, {}, {}))
    check(cname is not None, f"{where}: no compose service runs {binary} {fl.get('agent_id', '')}")
    if cname:
        ours = {k: v for k, v in fl.items() if k != "fusion"}
        theirs = {k: v for k, v in cfl.items() if k != "fusion"}
        check(ours == theirs, f"{where}: flags differ from compose {cname}: "
              f"{sorted(set(ours.items()) ^ set(theirs.items()))}")
        check({k: cenv.get(k) for k in ("OMP_NUM_THREADS", "BLIS_NUM_THREADS")} ==
              {k: env.get(k) for k in ("OMP_NUM_THREADS", "BLIS_NUM_THREADS")},
              f"{where}: OMP/BLIS threads differ from compose {cname}")
    if binary == "qv2x-agent":
        aid = int(fl["agent_id"])
        k8s_agents.append(aid)
        check((g, m) == agent_ports.get(aid), f"{where}: ports {(g, m)} != {agent_ports.get(aid)}")
        check(fl.get("fusion") == "qv2x-fusion:50080", f"{where}: --fusion")
    else:
        check((g, m) == DEFAULT_PORTS.get(binary), f"{where}: ports")
    check_paths(where, fl)
    # The artifacts volume: every pod mounts the claim at ARTIFACTS; the writers (those with
    # --artifacts) read-write, the others read-only.
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for vm in c.get("volumeMounts", []):
        check(vm["name"] in vols, f"{where}: volumeMount {vm['name']} has no volume")
    for vname, v in vols.items():
        claim = v.get("persistentVolumeClaim", {}).get("claimName")
        check(claim is None or claim in pvcs, f"{where}: volume {vname} claims {claim}, no such PVC")
    mounts = [vm for vm in c.get("volumeMounts", []) if vm["mountPath"] == ARTIFACTS]
    art = vols.get(mounts[0]["name"], {}) if mounts else {}
    check(art.get("persistentVolumeClaim", {}).get("claimName") == "qv2x-artifacts",
          f"{where}: qv2x-artifacts not mounted at {ARTIFACTS}")
    # Agents get --artifacts too: the only folder their LoadModel reads from.
    writer = binary in ("qv2x-trainer", "qv2x-quantizer")
    check(writer <= ("artifacts" in fl), f"{where}: no --artifacts")
    if "artifacts" in fl:
        check(fl["artifacts"] == ARTIFACTS, f"{where}: --artifacts={fl['artifacts']}")
    if mounts:
        check(bool(mounts[0].get("readOnly")) != writer, f"{where}: artifacts readOnly should be "
              f"{not writer}")
    # GPU placement: trainer and quantizer on the CUDA image with one GPU; the scene on CPU.
    res = c.get("resources", {})
    if binary in ("qv2x-trainer", "qv2x-quantizer"):
        check(c["image"] == "qv2x-cuda", f"{where}: image {c['image']} != qv2x-cuda")
        check(res.get("requests", {}).get(GPU) == res.get("limits", {}).get(GPU) == 1,
              f"{where}: {GPU} request and limit should both be 1")
        check(pod.get("nodeSelector", {}).get("nvidia.com/gpu.present") == "true",
              f"{where}: no GPU nodeSelector")
        check(any(t.get("key") == GPU for t in pod.get("tolerations", [])),
              f"{where}: no {GPU} toleration")
        check(pod["securityContext"].get("fsGroup") == 10001, f"{where}: fsGroup for the volume")
    else:
        check(c["image"].split(":")[0] == "qv2x", f"{where}: image {c['image']}")
        check(GPU not in res.get("requests", {}) and GPU not in res.get("limits", {}),
              f"{where}: asks for a GPU")
check(sorted(k8s_agents) == sorted(scene_ids), f"k8s agents {k8s_agents} != scene {scene_ids}")
check({b for b, _ in compose_by_role} ==
      {d["spec"]["template"]["spec"]["containers"][0]["args"][0] for d in deployments.values()},
      "k8s runs a different set of services than compose")

k8s_services = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Service"}
served = set()
for sname, s in k8s_services.items():
    where = f"k8s Service {sname}"
    targets = [dn for dn, d in deployments.items()
               if selects(s["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
    check(len(targets) == 1, f"{where}: selects {len(targets)} deployments")
    served.update(targets)
    if targets:
        c = deployments[targets[0]]["spec"]["template"]["spec"]["containers"][0]
        cports = {p["name"]: p["containerPort"] for p in c["ports"]}
        for p in s["spec"]["ports"]:
            check(cports.get(p["targetPort"]) == p["port"], f"{where}: port {p['name']}")
check(served == set(deployments), f"k8s Deployments without a Service: {set(deployments) - served}")

# ServiceMonitors: each selects Services that have its endpoint port, and names the
# Prometheus job the compose configuration uses for the same role.
mon_kust = load(f"{K8S}/monitoring/kustomization.yaml")
check(mon_kust.get("resources") == ["servicemonitors.yaml"], "k8s monitoring resources")
prom_jobs = {j["job_name"] for j in load("deploy/prometheus/prometheus.yml")["scrape_configs"]}
monitored = set()
for _, sm in k8s_docs("monitoring/servicemonitors.yaml"):
    where = f"k8s ServiceMonitor {sm['metadata']['name']}"
    check(sm["kind"] == "ServiceMonitor" and sm["metadata"].get("namespace") == "qv2x", where)
    sel = sm["spec"]["selector"]["matchLabels"]
    matched = [s for s in k8s_services.values() if selects(sel, s["metadata"].get("labels", {}))]
    check(matched, f"{where}: selects no Service")
    for ep in sm["spec"]["endpoints"]:
        for s in matched:
            check(ep["port"] in {p["name"] for p in s["spec"]["ports"]},
                  f"{where}: Service {s['metadata']['name']} has no port {ep['port']}")
        jobs = [r.get("replacement") for r in ep.get("relabelings", []) if r.get("targetLabel") == "job"]
        check(len(jobs) == 1 and jobs[0] in prom_jobs, f"{where}: job {jobs} not in prometheus.yml")
        targets = {r.get("targetLabel") for r in ep.get("relabelings", [])}
        check(not SERVICE_LABELS & targets, f"{where}: target labels clash with the services' own")
    monitored.update(s["metadata"]["name"] for s in matched)
check(monitored == set(k8s_services), f"k8s Services without a ServiceMonitor: "
      f"{set(k8s_services) - monitored}")

# ----------------------------------------------------------------------- k8s TLS
# deploy/k8s/tls/component (mutual TLS and the token, as docker-compose.tls.yml) on the cpu
# and single-node variants. Each is built and compared with the same variant without it.
K8S_VALIDATE = os.path.join(ROOT, K8S, "validate")
SECRET = "qv2x-tls"
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
notes = []


def kustomize(rel_dir):
    """The objects of `kustomize build deploy/k8s/<rel_dir>`: validate.mjs's build (held
    equal to kubectl kustomize's by ctest deploy_k8s_kustomize), else kubectl's; None when
    neither can run."""
    d = os.path.join(ROOT, K8S, rel_dir)
    node, kubectl = shutil.which("node"), shutil.which("kubectl")
    if node and os.path.isdir(os.path.join(K8S_VALIDATE, "node_modules")):
        cmd = [node, os.path.join(K8S_VALIDATE, "validate.mjs"), "--print", d]
    elif kubectl:
        cmd = [kubectl, "kustomize", d]
    else:
        return None
    r = subprocess.run(cmd, capture_output=True, text=True)
    check(r.returncode == 0, f"k8s {rel_dir}: {' '.join(cmd[:2])}: {r.stderr.strip()}")
    if r.returncode != 0:
        return []
    return json.loads(r.stdout) if cmd[0] == node else [o for o in yaml.safe_load_all(r.stdout) if o]


def tls_volume(pod):
    return next((v for v in pod.get("volumes", []) if v.get("secret", {}).get("secretName") == SECRET),
                None)


def without_tls(d):
    """A copy of Deployment `d` without what the TLS component may set: TLS variables, the
    Secret's volume and mount, fsGroup, and the probes' handler and timeout."""
    d = json.loads(json.dumps(d))
    pod = d["spec"]["template"]["spec"]
    vol = tls_volume(pod)
    pod["volumes"] = [v for v in pod.get("volumes", []) if v != vol]
    for k in ("fsGroup", "fsGroupChangePolicy"):
        pod.get("securityContext", {}).pop(k, None)
    for c in pod["containers"]:
        c["env"] = [e for e in c.get("env", []) if not re.match(r"(FLAGS_|QV2X_TLS_)", e["name"])]
        c["volumeMounts"] = [m for m in c.get("volumeMounts", []) if not vol or m["name"] != vol["name"]]
        for p in PROBES:
            for k in ("grpc", "exec", "timeoutSeconds"):
                c.get(p, {}).pop(k, None)
    return d


def obj_key(o):
    return (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])


compose_tls_env = {}  # (binary, agent id) -> the compose TLS override's FLAGS_* variables
compose_probe = {}    # (binary, agent id) -> the compose health check, without "CMD"
for cname, svc in services.items():
    cmd = svc.get("command")
    if cmd and str(cmd[0]).startswith("qv2x-"):
        role = (cmd[0], flags([compose_value(a) for a in cmd]).get("agent_id"))
        compose_tls_env[role] = {k: v for k, v in tls.get(cname, {}).get("environment", {}).items()
                                 if k.startswith("FLAGS_")}
        compose_probe[role] = svc.get("healthcheck", {}).get("test", [])[1:]

mounted = {}  # Deployment -> (certificate name, its Services, its Secret keys, its flags)
for tdir, plain_dir in (("tls/cpu", "cpu"), ("tls/single-node", "single-node")):
    where = f"k8s {tdir}"
    k = load(f"{K8S}/{tdir}/kustomization.yaml")
    check(k.get("resources") == [f"../../{plain_dir}"] and k.get("components") == ["../component"],
          f"{where}: not ../../{plain_dir} with the component ../component")
    tls_objs, plain_objs = kustomize(tdir), kustomize(plain_dir)
    if tls_objs is None or plain_objs is None:
        notes.append(f"{tdir} not built (no node with deploy/k8s/validate/node_modules, no kubectl)")
        continue
    plain = {obj_key(o): o for o in plain_objs}
    check(sorted(plain) == sorted(obj_key(o) for o in tls_objs), f"{where}: other objects than {plain_dir}")
    for o in tls_objs:
        other = plain.get(obj_key(o))
        if o["kind"] != "Deployment":
            check(o == other, f"{where}: {o['kind']} {o['metadata']['name']} differs from {plain_dir}'s")
            continue
        name = o["metadata"]["name"]
        w = f"{where} {name}"
        # Only TLS parts differ: args, ports, prometheus.io annotations (plaintext /metrics),
        # resources and the artifacts volume stay the variant's.
        check(other is not None and without_tls(o) == without_tls(other),
              f"{w}: differs from {plain_dir}'s in more than its TLS parts")
        pod = o["spec"]["template"]["spec"]
        c = pod["containers"][0]
        binary, fl = c["args"][0], flags(c["args"])
        cert = tls_cert_name(binary, fl)
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        tls_env = {k: v for k, v in env.items() if k.startswith(("FLAGS_", "QV2X_"))}
        # The probe presents the pod's own certificate: no pod holds client.key.
        want = tls_env_of(binary, fl, probe_cert=None)
        check(tls_env == want, f"{w}: TLS variables {tls_env} != {want}")
        role = (binary, fl.get("agent_id"))
        check({k: v for k, v in tls_env.items() if k.startswith("FLAGS_")} == compose_tls_env.get(role),
              f"{w}: FLAGS_* differ from docker-compose.tls.yml's")
        check_tls_variables(w, binary, fl, env)
        # The Secret: read-only at TLS_DIR, only this pod's files, 0440 + fsGroup.
        vol = tls_volume(pod)
        mounts = [m for m in c.get("volumeMounts", []) if m["mountPath"] == TLS_DIR]
        check(vol is not None and len(mounts) == 1 and mounts[0]["name"] == vol["name"]
              and mounts[0].get("readOnly") is True, f"{w}: Secret {SECRET} not mounted read-only at {TLS_DIR}")
        items = (vol or {}).get("secret", {}).get("items", [])
        keys = {i["key"] for i in items}
        check(all(i["key"] == i.get("path") and "mode" not in i for i in items),
              f"{w}: Secret items renamed or with their own mode")
        check(keys == {"ca.crt", "token", f"{cert}.crt", f"{cert}.key"},
              f"{w}: mounts {sorted(keys)}, not only ca.crt, token and {cert}.crt/.key")
        files = {f"{TLS_DIR}/{k}" for k in keys}
        check(all(v in files for v in tls_env.values()), f"{w}: a TLS variable names a file not mounted")
        mode = (vol or {}).get("secret", {}).get("defaultMode", 0o644)
        sc = pod.get("securityContext", {})
        check(mode == 0o440, f"{w}: Secret defaultMode {oct(mode)} != 0o440 (no write, no world read)")
        check(sc.get("fsGroup") == sc.get("runAsGroup") == 10001 and sc.get("runAsUser") == 10001,
              f"{w}: the 0440 files (root:fsGroup) are not readable by the pod's uid/gid")
        for p in PROBES:
            if p not in other["spec"]["template"]["spec"]["containers"][0]:
                check(p not in c, f"{w}: {p} added")
                continue
            probe = c.get(p, {})
            cmd = probe.get("exec", {}).get("command")
            check("grpc" not in probe and cmd == ["qv2x", "health", f"127.0.0.1:{port(fl['listen'])}"]
                  and cmd == compose_probe.get(role), f"{w}: {p} {probe} is not compose's `qv2x health`")
            check(probe.get("timeoutSeconds", 1) >= 5, f"{w}: {p} timeout under 5 s for a LibTorch process")
        svcs = sorted(s["metadata"]["name"] for s in k8s_services.values()
                      if selects(s["spec"]["selector"], o["spec"]["template"]["metadata"]["labels"]))
        mounted[name] = (cert, svcs, keys, fl)

# /metrics stays plaintext HTTP: the ServiceMonitors scrape it without TLS.
for _, sm in k8s_docs("monitoring/servicemonitors.yaml"):
    for ep in sm["spec"]["endpoints"]:
        check(ep.get("scheme", "http") == "http" and "tlsConfig" not in ep,
              f"k8s ServiceMonitor {sm['metadata']['name']}: scrapes /metrics with TLS")

# The certificates make-secret.sh makes: the Secret holds exactly the files the pods mount
# (not ca.key, not client.*), each as make-certs.sh wrote it; each pod's certificate
# matches its key, is signed by the CA and names the hosts it is dialled at (its Services,
# 127.0.0.1 for the probe; fusion also the host in the agents' --fusion); an agent's names
# agent-<id> as its Common Name.
openssl = shutil.which("openssl")
if mounted and openssl:
    tmp = tempfile.mkdtemp(prefix="qv2x-k8s-tls-")
    r = subprocess.run([os.path.join(ROOT, K8S, "tls/make-secret.sh"), tmp],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"k8s make-secret.sh: {r.stdout}{r.stderr}")
    secret = load(os.path.join(tmp, "qv2x-tls.yaml")) if r.returncode == 0 else {}
    data = secret.get("data", {})
    check((secret.get("kind"), secret.get("metadata", {}).get("name"),
           secret.get("metadata", {}).get("namespace")) == ("Secret", SECRET, "qv2x"),
          f"k8s make-secret.sh: not Secret qv2x/{SECRET}")
    wanted = set().union(*(keys for _, _, keys, _ in mounted.values()))
    check(set(data) == wanted, f"k8s Secret keys {sorted(data)} != the mounted {sorted(wanted)}")
    for key, b64 in data.items():
        f = os.path.join(tmp, key)
        wrote = None
        if os.path.exists(f):
            with open(f, "rb") as fh:
                wrote = fh.read()
        check(base64.b64decode(b64) == wrote, f"k8s Secret {key}: not the file make-certs.sh wrote")

    def ssl(*a):
        return subprocess.run([openssl, *a], capture_output=True, text=True)

    fusion_hosts = sorted({fl["fusion"].rsplit(":", 1)[0] for _, _, _, fl in mounted.values()
                           if "fusion" in fl})
    for name, (cert, svcs, _, fl) in mounted.items() if r.returncode == 0 else ():
        crt, key = os.path.join(tmp, f"{cert}.crt"), os.path.join(tmp, f"{cert}.key")
        pub = ssl("x509", "-in", crt, "-noout", "-pubkey").stdout
        check(pub and pub == ssl("pkey", "-in", key, "-pubout").stdout, f"k8s {cert}.crt: not {cert}.key's")
        hosts = [h for s in svcs for h in (s, f"{s}.qv2x.svc")]
        hosts += fusion_hosts if cert == "fusion" else []
        for h in hosts:
            v = ssl("verify", "-CAfile", os.path.join(tmp, "ca.crt"), "-verify_hostname", h, crt)
            check(v.returncode == 0, f"k8s {name}: {cert}.crt does not name {h}: {v.stdout}{v.stderr}")
        v = ssl("verify", "-CAfile", os.path.join(tmp, "ca.crt"), "-verify_ip", "127.0.0.1", crt)
        check(v.returncode == 0, f"k8s {name}: {cert}.crt does not name 127.0.0.1 (the probe)")
        cn = ssl("x509", "-in", crt, "-noout", "-subject", "-nameopt", "multiline").stdout
        check(re.search(rf"commonName\s*=\s*{re.escape(cert)}$", cn, re.M) is not None,
              f"k8s {name}: {cert}.crt's Common Name is not {cert}")
    shutil.rmtree(tmp)
elif mounted:
    notes.append("no openssl: make-secret.sh's certificates not checked")
if not ARGS.bin:
    notes.append("no --bin: flag names not checked against the binaries")

for n in notes:
    print("check_deploy: NOT CHECKED: " + n)
if errors:
    print("\n".join("FAIL: " + e for e in errors))
    print(f"check_deploy: {len(errors)} of {checks} checks failed")
    sys.exit(1)
print(f"check_deploy: all {checks} checks ok")
