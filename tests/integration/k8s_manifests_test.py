#!/usr/bin/env python3
"""Every manifest under deploy/kubernetes/ is one the Kubernetes API and
prometheus-operator accept, and says what the README promises.

Schemas: the npm packages kubernetes-models (Kubernetes 1.27 API) and
@kubernetes-models/prometheus-operator (the monitoring.coreos.com CRDs),
installed once into the build tree. Two checks per document:
  * the JSON-schema validation the packages ship (required fields, types,
    enums, formats);
  * TypeScript's excess-property check against the same packages' types:
    a misspelt field anywhere (`honorLabelz`) is an error, as it is for an
    API server with strict field validation. A document with such a typo is
    checked first, so this test cannot pass by checking nothing.
Then what users rely on: the ServiceMonitor's labels, job and honorLabels;
probes on /-/healthy; the hardened securityContext; the ConfigMaps'
configurations pass --check-config, with the StatefulSet's
--replica.index=$(POD_NAME) expanded as Kubernetes does for each pod.

Usage: k8s_manifests_test.py REPO_ROOT DAEMON NPM_DIR    exit 0 pass, 1 fail, 77 skip
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("SKIP: python3-yaml is missing (scripts/packages/test.txt lists it)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from container_common import Checks  # noqa: E402

# Pinned: kubernetes-models 4.x runs on Debian 12's Node.js 18 (5.x needs 22).
NPM_PACKAGES = ["kubernetes-models@4.5.1", "@kubernetes-models/prometheus-operator@4.4.4",
                "typescript@5.9.3"]
JOB = "cerebras-metrics-proxy"   # the job the alerts match (CerebrasProxyTargetDown)
MODULES = {   # apiVersion -> module prefix of its models
    "v1": "kubernetes-models/v1",
    "apps/v1": "kubernetes-models/apps/v1",
    "networking.k8s.io/v1": "kubernetes-models/networking.k8s.io/v1",
    "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
}


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(77)


def install_schemas(npm_dir):
    """The packages in npm_dir (reused while the pinned list is unchanged)."""
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            skip(f"{tool} is not installed (scripts/packages/test.txt lists it)")
    stamp = os.path.join(npm_dir, "installed.txt")
    want = "\n".join(NPM_PACKAGES) + "\n"
    if os.path.exists(stamp) and open(stamp).read() == want:
        return
    os.makedirs(npm_dir, exist_ok=True)
    r = subprocess.run(["npm", "install", "--prefix", npm_dir, "--no-audit", "--no-fund",
                        "--no-save", "--loglevel=error"] + NPM_PACKAGES,
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        skip(f"npm install {' '.join(NPM_PACKAGES)} failed (no registry?):\n{r.stderr[-1500:]}")
    with open(stamp, "w") as f:
        f.write(want)


def load_manifests(repo):
    docs = []
    for path in sorted(glob.glob(os.path.join(repo, "deploy/kubernetes/**/*.yaml"), recursive=True)):
        with open(path) as f:
            for i, doc in enumerate(yaml.safe_load_all(f)):
                if doc is not None:
                    docs.append((f"{os.path.relpath(path, repo)}#{i}", doc))
    return docs


def schema_errors(npm_dir, docs):
    """{name: error} from both checks; docs is [(name, object)]."""
    work = tempfile.mkdtemp(prefix="cmp-k8s-schema-", dir=npm_dir)
    try:
        ts, js = [], ["const out = {};"]
        for i, (name, doc) in enumerate(docs):
            module = f"{MODULES[doc['apiVersion']]}/{doc['kind']}"
            ts.append(f"import {{ I{doc['kind']} as T{i} }} from {json.dumps(module)};\n"
                      f"export const d{i}: T{i} = {json.dumps(doc)};  // {name}")
            js.append(f"try {{ new (require({json.dumps(module)}).{doc['kind']})({json.dumps(doc)}).validate(); }}"
                      f" catch (e) {{ out[{json.dumps(name)}] = String(e.message || e); }}")
        js.append("console.log(JSON.stringify(out));")
        with open(os.path.join(work, "manifests.ts"), "w") as f:
            f.write("\n".join(ts) + "\n")
        with open(os.path.join(work, "validate.js"), "w") as f:
            f.write("\n".join(js) + "\n")
        with open(os.path.join(work, "tsconfig.json"), "w") as f:
            json.dump({"compilerOptions": {"strict": True, "noEmit": True, "skipLibCheck": True,
                                           "module": "commonjs", "moduleResolution": "node",
                                           "target": "es2020", "types": []},
                       "files": ["manifests.ts"]}, f)
        errors = {}
        r = subprocess.run(["node", "validate.js"], cwd=work, capture_output=True, text=True,
                           env=dict(os.environ, NODE_PATH=os.path.join(npm_dir, "node_modules")))
        if r.returncode != 0:
            raise AssertionError(f"node validate.js: {r.stderr[-2000:]}")
        errors.update(json.loads(r.stdout))
        tsc = os.path.join(npm_dir, "node_modules", "typescript", "bin", "tsc")
        r = subprocess.run(["node", tsc, "-p", "."], cwd=work, capture_output=True, text=True)
        lines = {int(m.group(1)): m.group(0) for m in re.finditer(r"manifests\.ts\((\d+),\d+\): error .*", r.stdout)}
        for line, message in lines.items():
            errors[docs[(line - 1) // 2][0]] = message
        if r.returncode != 0 and not lines:
            raise AssertionError(f"tsc failed without naming a manifest:\n{r.stdout[-2000:]}{r.stderr[-500:]}")
        return errors
    finally:
        shutil.rmtree(work, ignore_errors=True)


def with_typo(docs):
    """A copy of the ServiceMonitor with `honorLabels` misspelt."""
    name, sm = next((n, d) for n, d in docs if d["kind"] == "ServiceMonitor")
    bad = json.loads(json.dumps(sm))
    ep = bad["spec"]["endpoints"][0]
    ep["honorLabelz"] = ep.pop("honorLabels")
    return [(name + " (honorLabels misspelt)", bad)]


def pod_specs(docs):
    """(name, workload, pod spec) of every Deployment and StatefulSet."""
    return [(n, d, d["spec"]["template"]["spec"]) for n, d in docs if d["kind"] in ("Deployment", "StatefulSet")]


def check_workloads(c, docs):
    for name, w, spec in pod_specs(docs):
        psc = spec.get("securityContext", {})
        c.check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 10001 and psc.get("fsGroup") == 10001,
                f"{name}: runs as the image's user 10001, volumes writable through fsGroup", psc)
        c.check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name}: seccomp RuntimeDefault")
        c.check(spec.get("automountServiceAccountToken") is False, f"{name}: no service account token")
        for ctr in spec["containers"]:
            sc = ctr.get("securityContext", {})
            c.check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
                    and sc.get("capabilities", {}).get("drop") == ["ALL"],
                    f"{name} {ctr['name']}: read-only root, no privilege escalation, no capabilities", sc)
            c.check("memory" in ctr.get("resources", {}).get("limits", {})
                    and {"cpu", "memory"} <= set(ctr.get("resources", {}).get("requests", {})),
                    f"{name} {ctr['name']}: memory limit, cpu and memory requests")
            if not ctr["image"].startswith("cerebras-metrics-proxy:"):
                continue
            probes = [ctr.get(p) for p in ("livenessProbe", "readinessProbe") if ctr.get(p)]
            text = json.dumps(probes)
            c.check(ctr.get("livenessProbe") and "/-/healthy" in text and "/-/ready" not in text,
                    f"{name}: liveness (and readiness) on /-/healthy, never /-/ready", text)
            mounts = {m["mountPath"]: m for m in ctr.get("volumeMounts", [])}
            state = mounts.get("/var/lib/cerebras-metrics-proxy")
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            claims = {t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates", [])}
            c.check(state is not None and ("persistentVolumeClaim" in volumes.get(state["name"], {})
                                           or state["name"] in claims),
                    f"{name}: state_dir on a persistent volume claim, not an emptyDir")


def check_monitoring(c, docs):
    by_kind = {}
    for n, d in docs:
        by_kind.setdefault(d["kind"], []).append((n, d))
    for name, sm in by_kind.get("ServiceMonitor", []):
        c.check("release" in sm["metadata"].get("labels", {}),
                f"{name}: a `release` label (kube-prometheus-stack's serviceMonitorSelector)")
        eps = sm["spec"]["endpoints"]
        c.check(all(e.get("honorLabels") is True and e.get("honorTimestamps") is True for e in eps),
                f"{name}: honorLabels and honorTimestamps on every endpoint")
        selected = [d for _, d in by_kind.get("Service", [])
                    if all(d["metadata"].get("labels", {}).get(k) == v
                           for k, v in sm["spec"]["selector"]["matchLabels"].items())]
        c.check(len(selected) == 1, f"{name}: selects exactly one Service", len(selected))
        for svc in selected:
            job = svc["metadata"]["labels"].get(sm["spec"].get("jobLabel", ""))
            c.check(job == JOB, f"{name}: job from jobLabel is {JOB!r} whatever the Service is called", job)
            c.check({e["port"] for e in eps} <= {p["name"] for p in svc["spec"]["ports"]},
                    f"{name}: endpoints name ports of the Service")
    for name, rule in by_kind.get("PrometheusRule", []):
        c.check("release" in rule["metadata"].get("labels", {}),
                f"{name}: a `release` label (kube-prometheus-stack's ruleSelector)")


def expand(args, env):
    """Kubernetes' $(VAR) expansion of container args."""
    return [re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), a) for a in args]


def check_config(c, daemon, docs):
    """The ConfigMaps' configurations, with the workloads' arguments, pass
    --check-config once the organization id is filled in, as a user does (the
    key file swapped for a temporary one); as shipped, the placeholder id is
    refused."""
    maps = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "ConfigMap"}
    with tempfile.TemporaryDirectory(prefix="cmp-k8s-config-") as tmp:
        key = os.path.join(tmp, "api-key")
        with open(key, "w") as f:
            f.write("sk-k8s-manifest-test\n")
        os.chmod(key, 0o600)

        def run(config_text, args, org="org_abc123"):
            path = os.path.join(tmp, "config.yml")
            text = re.sub(r"api_key_file: .*", f"api_key_file: {key}", config_text)
            with open(path, "w") as f:
                f.write(text.replace("org_REPLACE_ME", org))
            os.chmod(path, 0o600)
            argv = [a for a in args if not a.startswith("--config.file=")]
            return subprocess.run([daemon, f"--config.file={path}", "--check-config"] + argv,
                                  capture_output=True, text=True, timeout=30)

        for name, w, spec in pod_specs(docs):
            ctr = next(x for x in spec["containers"] if x["image"].startswith("cerebras-metrics-proxy:"))
            cm = maps[next(v["configMap"]["name"] for v in spec["volumes"] if "configMap" in v
                           and any(m["name"] == v["name"] and m["mountPath"] == "/etc/cerebras-metrics-proxy"
                                   for m in ctr["volumeMounts"]))]
            text = cm["data"]["cerebras-metrics-proxy.yml"]
            pods = [f"{w['metadata']['name']}-{i}" for i in range(w["spec"].get("replicas", 1))] \
                if w["kind"] == "StatefulSet" else [w["metadata"]["name"] + "-7c9f6d5b8-x2x9z"]
            r = run(text, expand(ctr.get("args", []), {"POD_NAME": pods[0]}), org="org_REPLACE_ME")
            c.check(r.returncode == 1 and 'organization id "org_REPLACE_ME" is a placeholder' in r.stderr,
                    f"{name}: as shipped, the placeholder organization id is refused", r.stdout + r.stderr)
            for pod in pods:
                r = run(text, expand(ctr.get("args", []), {"POD_NAME": pod}))
                c.check(r.returncode == 0 and "configuration OK" in r.stdout,
                        f"{name}: pod {pod} passes --check-config", r.stdout + r.stderr)
            if w["kind"] == "StatefulSet":
                # The HA pair its comments describe: count 2, 3 requests each.
                ha = text.replace("replicas: {count: 1}", "replicas: {count: 2}").replace(
                    "requests: 6", "requests: 3")
                c.check(ha != text, f"{name}: ConfigMap has the documented replicas/rate_limit lines")
                for i in (0, 1):
                    pod = f"{w['metadata']['name']}-{i}"
                    r = run(ha, expand(ctr["args"], {"POD_NAME": pod}))
                    c.check(r.returncode == 0 and f"this is replica {i} of 2" in r.stdout
                            and "warning" not in r.stdout,
                            f"{name}: as an HA pair, pod {pod} is replica {i} of 2 without warnings",
                            r.stdout + r.stderr)
                r = run(text, expand(ctr["args"], {"POD_NAME": f"{w['metadata']['name']}-1"}))
                c.check(r.returncode == 1 and "replicas.count" in r.stderr,
                        f"{name}: a second pod without replicas.count 2 is refused (exit 1)", r.stderr)


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    repo, daemon, npm_dir = (os.path.abspath(a) for a in sys.argv[1:])
    docs = load_manifests(repo)
    c = Checks()
    c.check(len(docs) >= 10, f"{len(docs)} manifests found under deploy/kubernetes/")
    check_workloads(c, docs)
    check_monitoring(c, docs)
    check_config(c, daemon, docs)

    install_schemas(npm_dir)
    bad = with_typo(docs)
    errors = schema_errors(npm_dir, bad)
    c.check(bad[0][0] in errors and "honorLabelz" in errors[bad[0][0]],
            "the schema check refuses a misspelt field (honorLabelz)", errors)
    errors = schema_errors(npm_dir, docs)
    for name, doc in docs:
        c.check(name not in errors, f"{name}: {doc['kind']} {doc['metadata']['name']} valid", errors.get(name))
    return c.exit()


if __name__ == "__main__":
    sys.exit(main())
