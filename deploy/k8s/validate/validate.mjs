#!/usr/bin/env node
// Validates the Kubernetes manifests of deploy/k8s against the Kubernetes object schemas
// (npm kubernetes-models: the OpenAPI schemas of Kubernetes 1.27) and the Prometheus
// Operator's (npm @kubernetes-models/prometheus-operator, for ServiceMonitor).
//
//   node validate.mjs [DIR]                   ctest deploy_k8s_schema (DIR: deploy/k8s)
//   node validate.mjs --expect-invalid DIR    ctest deploy_k8s_schema_rejects_invalid
//   node validate.mjs --kubectl KUBECTL [DIR] also compare each variant with `kubectl kustomize`
//   node validate.mjs --print DIR             print DIR's build as a JSON list (check_deploy.py)
//
// What it checks in DIR (default: this script's parent directory), skipping validate/:
//  - every YAML document of every file parses (YAML 1.1, as Kubernetes reads it, so an
//    unquoted `true` or `on` is a boolean) without duplicate keys;
//  - every file is either a kustomization.yaml, or listed by one as a resource (each of its
//    documents is then validated) or as a patch, so none is left out of the kustomizations;
//  - each document's apiVersion/kind names a known model class, whose .validate() (JSON
//    schema) must pass; an unknown apiVersion or kind is an error;
//  - each kustomization is built (resources, components, namespace, JSON 6902 patches with
//    a target by kind / name / labelSelector, images: the kustomize features used here; any
//    other field is refused rather than ignored) and its output validated again, so the
//    variants' patches are checked too: a patch must match a resource, and a
//    `remove`/`replace` of a path that does not exist fails. A Component (deploy/k8s/tls)
//    is built only inside the kustomizations that list it, as kustomize does: its
//    resources and patches act on what they have accumulated so far.
// What the schemas cannot check (a Service selecting a Deployment's pods, probe ports,
// claim names, flags) is deploy/check_deploy.py's job. Unknown field names pass the
// schemas (Kubernetes' OpenAPI does not forbid them); check_deploy.py requires the fields
// that matter at their places.
//
// --expect-invalid DIR: every entry of DIR (a YAML file, or a directory holding a
// kustomization.yaml) must be REJECTED, with every `# expect: TEXT` line of the file (or of
// the kustomization.yaml) found in the errors; so the validation cannot pass vacuously.
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import YAML from "yaml";
import jsonpatch from "fast-json-patch";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "../../..");   // paths in messages are relative to the repo
const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
const KUSTOMIZATION_FIELDS = new Set(["apiVersion", "kind", "namespace", "resources",
                                      "components", "patches", "images"]);
const TARGET_FIELDS = new Set(["group", "version", "kind", "name", "namespace", "labelSelector"]);
// Kinds that have no namespace (kustomize's namespace: leaves them alone).
const CLUSTER_SCOPED = new Set(["Namespace", "PersistentVolume", "StorageClass", "ClusterRole",
                                "ClusterRoleBinding", "CustomResourceDefinition",
                                "PriorityClass", "RuntimeClass"]);
// Pod templates whose container images the `images:` entries rewrite.
const POD_SPEC_PATHS = {
  Pod: ["spec"], Deployment: ["spec", "template", "spec"], StatefulSet: ["spec", "template", "spec"],
  DaemonSet: ["spec", "template", "spec"], ReplicaSet: ["spec", "template", "spec"],
  Job: ["spec", "template", "spec"], CronJob: ["spec", "jobTemplate", "spec", "template", "spec"],
};

class Failure extends Error {}

const rel = (p) => path.relative(REPO, p) || ".";

// ------------------------------------------------------------------------------ models
const modules = new Map();
async function modelModule(apiVersion) {
  if (!modules.has(apiVersion)) {
    const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
    const spec = group === "monitoring.coreos.com"
      ? `@kubernetes-models/prometheus-operator/${apiVersion}`
      : `kubernetes-models/${apiVersion}`;
    let mod = null;
    try {
      mod = await import(spec);
    } catch (e) {
      if (e.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED" && e.code !== "ERR_MODULE_NOT_FOUND") throw e;
    }
    modules.set(apiVersion, mod);
  }
  return modules.get(apiVersion);
}

// Validates one object; returns a list of error strings (empty: valid).
async function validateObject(doc) {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    return ["not a Kubernetes object (a mapping with apiVersion and kind)"];
  }
  const { apiVersion, kind } = doc;
  if (typeof apiVersion !== "string" || typeof kind !== "string") {
    return ["apiVersion and kind must both be strings"];
  }
  const mod = await modelModule(apiVersion);
  if (!mod) return [`unknown apiVersion ${apiVersion}`];
  const Model = mod[kind];
  // Only top-level kinds carry static apiVersion/kind (DeploymentSpec etc. do not).
  if (typeof Model !== "function" || Model.kind !== kind || Model.apiVersion !== apiVersion) {
    return [`unknown kind ${kind} in ${apiVersion}`];
  }
  if (typeof doc.metadata?.name !== "string" || doc.metadata.name === "") {
    return ["metadata.name is missing"];
  }
  try {
    new Model(doc).validate();
  } catch (e) {
    if (e?.name !== "ValidationError" && e?.constructor?.name !== "ValidationError") throw e;
    return e.message.split(", data").map((m, i) => (i ? "data" + m : m));
  }
  return [];
}

const describe = (doc) =>
  `${doc?.apiVersion ?? "?"} ${doc?.kind ?? "?"} ${doc?.metadata?.name ?? "(no name)"}`;

// --------------------------------------------------------------------------------- YAML
function parseDocuments(file) {
  const text = fs.readFileSync(file, "utf8");
  // YAML 1.1 like Kubernetes' decoder (go-yaml): `on`, `yes`, `true` are booleans there.
  const docs = YAML.parseAllDocuments(text, { version: "1.1", uniqueKeys: true, prettyErrors: true });
  const out = [];
  docs.forEach((d, i) => {
    const errs = [...d.errors, ...d.warnings];
    if (errs.length) {
      throw new Failure(`${rel(file)}, document ${i + 1}: YAML: ${errs.map((e) => e.message).join("; ")}`);
    }
    const value = d.toJS({ maxAliasCount: 100 });
    if (value !== null && value !== undefined) out.push({ index: i + 1, value });
  });
  return out;
}

const expectations = (file) =>
  fs.readFileSync(file, "utf8").split("\n")
    .map((l) => l.match(/^#\s*expect:\s*(.+?)\s*$/)).filter(Boolean).map((m) => m[1]);

// ---------------------------------------------------------------------------- kustomize
function kustomizationFile(dir) {
  for (const f of KUSTOMIZATION_FILES) {
    const p = path.join(dir, f);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

function imageParts(image) {
  // [registry/]name[:tag][@digest]; a ':' before the last '/' belongs to a registry port.
  let rest = image, digest = "";
  const at = rest.indexOf("@");
  if (at >= 0) [rest, digest] = [rest.slice(0, at), rest.slice(at)];
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) return { name: rest.slice(0, colon), tag: rest.slice(colon + 1), digest };
  return { name: rest, tag: "", digest };
}

function applyImages(objects, images, where) {
  for (const entry of images) {
    if (typeof entry?.name !== "string") throw new Failure(`${where}: images: entry without name`);
    for (const [k] of Object.entries(entry)) {
      if (!["name", "newName", "newTag", "digest"].includes(k)) {
        throw new Failure(`${where}: images: field ${k} is not supported by this validator`);
      }
    }
    for (const { value: obj } of objects) {
      let spec = obj;
      for (const k of POD_SPEC_PATHS[obj.kind] ?? [null]) spec = k === null ? null : spec?.[k];
      if (!spec) continue;
      for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
        if (typeof c.image !== "string") continue;
        const p = imageParts(c.image);
        if (p.name !== entry.name) continue;
        const name = entry.newName ?? p.name;
        if (entry.digest) c.image = `${name}@${entry.digest}`;
        else if (entry.newTag !== undefined) c.image = `${name}:${entry.newTag}`;
        else c.image = `${name}${p.tag ? ":" + p.tag : ""}${p.digest}`;
      }
    }
  }
}

// A label selector's equality terms (`k=v`, `k==v`, `k!=v`, `k`, `!k`) as a predicate on
// labels; set-based terms (`k in (a,b)`) are refused rather than misread.
function labelPredicate(selector, where) {
  const terms = selector.split(",").map((t) => t.trim()).map((t) => {
    let m;
    if ((m = t.match(/^([\w./-]+)\s*(==?|!=)\s*([\w.-]*)$/))) {
      const [, k, op, v] = m;
      return op === "!=" ? (l) => l[k] !== v : (l) => l[k] === v;
    }
    if ((m = t.match(/^(!?)([\w./-]+)$/))) return m[1] ? (l) => !(m[2] in l) : (l) => m[2] in l;
    throw new Failure(`${where}: labelSelector term ${JSON.stringify(t)} is not supported by this validator`);
  });
  return (labels) => terms.every((f) => f(labels ?? {}));
}

function targetPredicate(t, where) {
  for (const k of Object.keys(t)) {
    if (!TARGET_FIELDS.has(k)) throw new Failure(`${where}: target field ${k} is not supported by this validator`);
  }
  const labels = t.labelSelector === undefined ? () => true : labelPredicate(t.labelSelector, where);
  return (obj) => {
    const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : ["", obj.apiVersion];
    return (t.kind === undefined || t.kind === obj.kind) &&
           (t.name === undefined || t.name === obj.metadata?.name) &&
           (t.group === undefined || t.group === group) &&
           (t.version === undefined || t.version === version) &&
           (t.namespace === undefined || t.namespace === obj.metadata?.namespace) &&
           labels(obj.metadata?.labels);
  };
}

function readKustomization(dir) {
  const kfile = kustomizationFile(dir);
  if (!kfile) throw new Failure(`${rel(dir)}: no kustomization.yaml`);
  const docs = parseDocuments(kfile);
  if (docs.length !== 1) throw new Failure(`${rel(kfile)}: expected one YAML document`);
  return { kfile, k: docs[0].value };
}

// Builds the kustomization in `dir`: returns [{value, source}], and records the files it
// used in `used` (file -> "resource" | "patch" | "kustomization"). A Component is built
// into `into`, the objects its parent has accumulated, which it extends and patches.
function build(dir, used, stack = [], into = null) {
  const { kfile, k } = readKustomization(dir);
  if (stack.includes(kfile)) throw new Failure(`${rel(kfile)}: kustomization cycle`);
  used.set(kfile, "kustomization");
  const want = into ? ["Component", /^kustomize\.config\.k8s\.io\/v1alpha1$/]
                    : ["Kustomization", /^kustomize\.config\.k8s\.io\/v1(beta1)?$/];
  if (k.kind !== want[0] || !want[1].test(k.apiVersion ?? "")) {
    throw new Failure(`${rel(kfile)}: not a kustomize.config.k8s.io ${want[0]}` +
                      (k.kind === "Component" ? " (a Component goes under components:, not resources:)" : ""));
  }
  for (const key of Object.keys(k)) {
    if (!KUSTOMIZATION_FIELDS.has(key)) {
      throw new Failure(`${rel(kfile)}: field ${key} is not supported by this validator's kustomize ` +
                        `build (it would be ignored); extend validate.mjs`);
    }
  }
  const objects = into ?? [];
  for (const r of k.resources ?? []) {
    const p = path.resolve(dir, r);
    if (!fs.existsSync(p)) throw new Failure(`${rel(kfile)}: resource ${r} does not exist`);
    if (fs.statSync(p).isDirectory()) {
      objects.push(...build(p, used, [...stack, kfile]));
    } else {
      used.set(p, "resource");
      for (const d of parseDocuments(p)) objects.push({ value: d.value, source: `${rel(p)}, document ${d.index}` });
    }
  }
  for (const c of k.components ?? []) {
    const p = path.resolve(dir, c);
    if (!fs.existsSync(p) || !fs.statSync(p).isDirectory()) {
      throw new Failure(`${rel(kfile)}: component ${c} is not a directory`);
    }
    build(p, used, [...stack, kfile], objects);
  }
  if (k.namespace) {
    for (const { value } of objects) {
      if (value && typeof value === "object" && !CLUSTER_SCOPED.has(value.kind)) {
        value.metadata = { ...(value.metadata ?? {}), namespace: k.namespace };
      }
    }
  }
  for (const [i, p] of (k.patches ?? []).entries()) {
    const where = `${rel(kfile)}: patches[${i}]`;
    if (!p.target) throw new Failure(`${where}: only JSON 6902 patches with a target are supported`);
    let ops;
    if (p.path !== undefined) {
      const pf = path.resolve(dir, p.path);
      if (!fs.existsSync(pf)) throw new Failure(`${where}: ${p.path} does not exist`);
      used.set(pf, "patch");
      const d = parseDocuments(pf);
      ops = d.length === 1 ? d[0].value : null;
    } else if (typeof p.patch === "string") {
      ops = YAML.parse(p.patch, { version: "1.1" });
    }
    if (!Array.isArray(ops)) throw new Failure(`${where}: the patch is not a JSON 6902 list of operations`);
    const matches = targetPredicate(p.target, where);
    const targets = objects.filter((o) => matches(o.value));
    if (targets.length === 0) throw new Failure(`${where}: target ${JSON.stringify(p.target)} matches no resource`);
    for (const o of targets) {
      try {
        o.value = jsonpatch.applyPatch(o.value, jsonpatch.deepClone(ops), true, false).newDocument;
      } catch (e) {
        throw new Failure(`${where} on ${describe(o.value)}: ${e.name ?? "error"}: ` +
                          `${String(e.message).split("\n")[0]} (${JSON.stringify(e.operation ?? "")})`);
      }
    }
  }
  applyImages(objects, k.images ?? [], rel(kfile));
  // kustomize refuses two objects with the same kind, namespace and name.
  const ids = new Map();
  for (const o of objects) {
    const id = `${o.value?.kind}/${o.value?.metadata?.namespace ?? ""}/${o.value?.metadata?.name}`;
    if (ids.has(id)) throw new Failure(`${rel(kfile)}: ${id} is defined twice (${ids.get(id)}, ${o.source})`);
    ids.set(id, o.source);
  }
  return objects;
}

// ------------------------------------------------------------------------------ checks
function yamlFiles(dir, skip) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (!skip.includes(p) && e.name !== "node_modules") out.push(...yamlFiles(p, skip));
    } else if (/\.ya?ml$/.test(e.name) || e.name === "Kustomization") {
      out.push(p);
    }
  }
  return out.sort();
}

// `seen`: "source: message" already reported for the files themselves, not repeated.
async function validateBuilt(objects, label, seen = new Set()) {
  const errors = [];
  for (const o of objects) {
    for (const m of await validateObject(o.value)) {
      if (!seen.has(`${o.source}: ${m}`)) errors.push(`${label}: ${describe(o.value)} (${o.source}): ${m}`);
    }
  }
  return errors;
}

// Validates the tree; returns {errors, summary}.
async function checkTree(root, kubectl) {
  const errors = [];
  const files = yamlFiles(root, [HERE]);
  const kdirs = files.filter((f) => KUSTOMIZATION_FILES.includes(path.basename(f))).map(path.dirname);
  // Components are built by the kustomizations that list them (a file of one that none
  // lists is reported below as not listed).
  const isComponent = (d) => {
    try {
      return readKustomization(d).k?.kind === "Component";
    } catch {
      return false;   // built below, which reports the error
    }
  };
  const used = new Map();
  const built = new Map();
  for (const d of kdirs.filter((x) => !isComponent(x))) {
    try {
      built.set(d, build(d, used));
    } catch (e) {
      if (!(e instanceof Failure)) throw e;
      errors.push(e.message);
    }
  }
  let documents = 0;
  const seen = new Set();
  for (const f of files) {
    const role = used.get(f);
    if (!role) {
      errors.push(`${rel(f)}: not listed by any kustomization (as a resource or a patch)`);
      continue;
    }
    if (role !== "resource") continue;
    try {
      const docs = parseDocuments(f);
      if (docs.length === 0) errors.push(`${rel(f)}: no documents`);
      for (const d of docs) {
        documents++;
        for (const m of await validateObject(d.value)) {
          errors.push(`${rel(f)}, document ${d.index} (${describe(d.value)}): ${m}`);
          seen.add(`${rel(f)}, document ${d.index}: ${m}`);
        }
      }
    } catch (e) {
      if (!(e instanceof Failure)) throw e;
      errors.push(e.message);
    }
  }
  let rendered = 0;
  for (const [d, objects] of built) {
    rendered += objects.length;
    errors.push(...await validateBuilt(objects, `kustomize build ${rel(d)}`, seen));
    if (kubectl) {
      const out = execFileSync(kubectl, ["kustomize", d], { encoding: "utf8" });
      const theirs = YAML.parseAllDocuments(out).map((x) => x.toJS()).filter(Boolean);
      const key = (o) => `${o.kind}/${o.metadata?.namespace}/${o.metadata?.name}`;
      const ours = new Map(objects.map((o) => [key(o.value), o.value]));
      if (theirs.length !== ours.size) {
        errors.push(`${rel(d)}: kubectl kustomize gives ${theirs.length} objects, this build ${ours.size}`);
      }
      for (const t of theirs) {
        if (!isDeepStrictEqual(JSON.parse(JSON.stringify(ours.get(key(t)) ?? null)), t)) {
          errors.push(`${rel(d)}: ${key(t)} differs from kubectl kustomize's`);
        }
      }
      console.log(`  ${rel(d)}: same ${theirs.length} objects as kubectl kustomize`);
    }
  }
  const summary = `${documents} documents in ${[...used.values()].filter((r) => r === "resource").length} ` +
                  `files and ${built.size} kustomize builds (${rendered} objects) checked`;
  return { errors: [...new Set(errors)], summary };
}

// Each entry of `dir` must be rejected with its `# expect:` texts in the errors.
async function checkRejected(dir) {
  const problems = [];
  const entries = fs.readdirSync(dir).filter((n) => /\.ya?ml$/.test(n) ||
    fs.statSync(path.join(dir, n)).isDirectory()).sort();
  if (entries.length === 0) problems.push(`${rel(dir)}: no fixtures`);
  for (const name of entries) {
    const p = path.join(dir, name);
    let errors = [], expectFile = p;
    try {
      if (fs.statSync(p).isDirectory()) {
        expectFile = kustomizationFile(p) ?? p;
        errors = await validateBuilt(build(p, new Map()), `kustomize build ${rel(p)}`);
      } else {
        const docs = parseDocuments(p);
        if (docs.length === 0) errors.push("no documents");
        for (const d of docs) errors.push(...(await validateObject(d.value)).map((m) => `document ${d.index}: ${m}`));
      }
    } catch (e) {
      if (!(e instanceof Failure)) throw e;
      errors.push(e.message);
    }
    const want = fs.statSync(expectFile).isFile() ? expectations(expectFile) : [];
    if (want.length === 0) {
      problems.push(`${rel(p)}: has no '# expect: TEXT' line`);
    } else if (errors.length === 0) {
      problems.push(`${rel(p)}: ACCEPTED, but it is invalid (expected: ${want.join(" | ")})`);
    } else {
      const text = errors.join("\n");
      const missing = want.filter((w) => !text.includes(w));
      if (missing.length) {
        problems.push(`${rel(p)}: rejected, but not for the expected reason (missing: ` +
                      `${missing.join(" | ")}); errors:\n    ${errors.join("\n    ")}`);
      } else {
        console.log(`rejected as expected: ${rel(p)}\n    ${errors.join("\n    ")}`);
      }
    }
  }
  return { problems, count: entries.length };
}

// -------------------------------------------------------------------------------- main
const args = process.argv.slice(2);
let expectInvalid = false, print = false, kubectl = null;
const positional = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--expect-invalid") expectInvalid = true;
  else if (args[i] === "--print") print = true;
  else if (args[i] === "--kubectl") kubectl = args[++i];
  else if (args[i].startsWith("-")) { console.error(`unknown option ${args[i]}`); process.exit(2); }
  else positional.push(args[i]);
}
if (positional.length > 1 || (print && positional.length !== 1)) {
  console.error("usage: validate.mjs [--expect-invalid | --print] [--kubectl K] [DIR]");
  process.exit(2);
}

if (print) {
  try {
    console.log(JSON.stringify(build(path.resolve(positional[0]), new Map()).map((o) => o.value), null, 1));
  } catch (e) {
    if (!(e instanceof Failure)) throw e;
    console.error(`validate: ${e.message}`);
    process.exit(1);
  }
} else if (expectInvalid) {
  const dir = path.resolve(positional[0] ?? path.join(HERE, "fixtures", "invalid"));
  const { problems, count } = await checkRejected(dir);
  if (problems.length) {
    console.error(problems.map((p) => "FAIL: " + p).join("\n"));
    console.error(`validate: ${problems.length} of ${count} invalid fixtures not rejected as expected`);
    process.exit(1);
  }
  console.log(`validate: all ${count} invalid fixtures rejected`);
} else {
  const root = path.resolve(positional[0] ?? path.join(HERE, ".."));
  const { errors, summary } = await checkTree(root, kubectl);
  if (errors.length) {
    console.error(errors.map((e) => "FAIL: " + e).join("\n"));
    console.error(`validate: ${errors.length} errors; ${summary}`);
    process.exit(1);
  }
  console.log(`validate: ok, ${summary}`);
}
