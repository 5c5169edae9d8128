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

# ------------------------------------------------------------------- compose TLS
TLS_FLAGS = ["tls_cert", "tls_key", "tls_ca", "auth_token_file"]
TLS_DIR = "/etc/qv2x/tls"
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
    cert = f"agent-{fl.get('agent_id')}" if agent else cmd[0][len("qv2x-"):]
    env = over.get("environment", {})
    want_env = {"FLAGS_tls_cert": f"{TLS_DIR}/{cert}.crt", "FLAGS_tls_key": f"{TLS_DIR}/{cert}.key",
                "FLAGS_tls_ca": f"{TLS_DIR}/ca.crt", "FLAGS_auth_token_file": f"{TLS_DIR}/token",
                "QV2X_TLS_CA": f"{TLS_DIR}/ca.crt", "QV2X_TLS_CERT": f"{TLS_DIR}/client.crt",
                "QV2X_TLS_KEY": f"{TLS_DIR}/client.key"}
    if agent:
        want_env["FLAGS_fusion_tls_ca"] = f"{TLS_DIR}/ca.crt"
    check({k: env.get(k) for k in want_env} == want_env, f"{where}: environment {env}")
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

if errors:
    print("\n".join("FAIL: " + e for e in errors))
    print(f"check_deploy: {len(errors)} of {checks} checks failed")
    sys.exit(1)
print(f"check_deploy: all {checks} checks ok")
