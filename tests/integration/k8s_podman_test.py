#!/usr/bin/env python3
"""`podman kube play` runs deploy/kubernetes/standalone/ (ConfigMap, PVC,
Deployment) with the image of docker/Dockerfile against the simulated API,
which runs on the host (not in the image): the pod becomes ready, serves the
upstream's series, runs as the manifest says, and its request ledger and
snapshot on the claimed volume survive `podman kube down` and a new `play`.

Debian 12's podman 4.3 plays a subset of Kubernetes. What runs here differs
from what a cluster runs in exactly these transformations (printed by the
test as it applies them):
  1. hostNetwork: true, and no `ports:` (podman refuses containerPort with
     host networking). The daemon is `http://` to the simulated API, which
     only a loopback upstream may be, so the pod shares the host's loopback;
  2. the probes name the port by number (the named port went with `ports:`);
  3. the ConfigMap's `listen:` is a free loopback port and its `url:` the
     simulated API's (the organization id is the one it serves);
  4. the Secret volume becomes a hostPath directory holding the same file
     (a secret volume crashes podman 4.3);
  5. image: the one built here; names get a per-run prefix (parallel runs);
  6. the second `play` leaves out the PersistentVolumeClaim: podman 4.3
     refuses to create its volume again, where a cluster keeps the claim.
Everything else (securityContext, the claim, mounts, args) is played as written.

Usage: k8s_podman_test.py --daemon D --mock M --repo R    exit 0 pass, 1 fail, 77 skip
"""
import copy
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from container_common import (PROXY_IMAGE, Checks, build_proxy_image, ensure_base_image,  # noqa: E402
                              http_get, limits, podman, require_podman, skip, wait_until)

try:
    import yaml
except ImportError:
    skip("python3-yaml is missing (scripts/packages/test.txt lists it)")

STANDALONE = "deploy/kubernetes/standalone"
STATE = "/var/lib/cerebras-metrics-proxy"


def require_catatonit():
    if not any(os.access(p, os.X_OK) for p in ("/usr/libexec/podman/catatonit", "/usr/bin/catatonit")):
        skip("catatonit is missing: podman kube play starts every pod with it (apt-get install catatonit)")


def load(repo, name):
    with open(os.path.join(repo, STANDALONE, name)) as f:
        return yaml.safe_load(f)


def transform(repo, tag, mock_url, port, key_dir, say):
    """The standalone manifests as podman 4.3 can play them (module docstring)."""
    cm, pvc, dep = load(repo, "configmap.yaml"), load(repo, "pvc.yaml"), load(repo, "deployment.yaml")
    pod = dep["spec"]["template"]["spec"]
    ctr = pod["containers"][0]
    cfg = yaml.safe_load(cm["data"]["cerebras-metrics-proxy.yml"])
    port_number = ctr["ports"][0]["containerPort"]

    say("1. hostNetwork: true, ports removed")
    pod["hostNetwork"] = True
    ctr.pop("ports")
    say(f"2. probes: port {ctr['livenessProbe']['httpGet']['port']!r} -> {port}")
    for probe in ("livenessProbe", "readinessProbe"):
        if probe in ctr:
            ctr[probe]["httpGet"]["port"] = port
    say(f"3. listen {cfg['listen']!r} (port {port_number}) -> 127.0.0.1:{port}; url -> {mock_url}")
    cfg["listen"] = f"127.0.0.1:{port}"
    cfg["upstreams"][0]["url"] = mock_url
    cm = copy.deepcopy(cm)
    cm["data"]["cerebras-metrics-proxy.yml"] = yaml.safe_dump(cfg, sort_keys=False)
    for v in pod["volumes"]:
        if "secret" in v:
            say(f"4. volume {v['name']}: secret {v['secret']['secretName']} -> hostPath {key_dir}")
            v.pop("secret")
            v["hostPath"] = {"path": key_dir, "type": "Directory"}
    say(f"5. image {ctr['image']} -> {PROXY_IMAGE}; names prefixed {tag}-")
    ctr["image"] = PROXY_IMAGE
    cm["metadata"]["name"] = f"{tag}-{cm['metadata']['name']}"
    pvc["metadata"]["name"] = f"{tag}-{pvc['metadata']['name']}"
    dep["metadata"]["name"] = f"{tag}-{dep['metadata']['name']}"
    for v in pod["volumes"]:
        if "configMap" in v:
            v["configMap"]["name"] = cm["metadata"]["name"]
        if "persistentVolumeClaim" in v:
            v["persistentVolumeClaim"]["claimName"] = pvc["metadata"]["name"]
    return [cm, pvc, dep], pvc["metadata"]["name"], dep["metadata"]["name"], cfg


def podman_env(tmp):
    """kube play takes no --runtime/--ulimit: a containers.conf gives them
    (runc, not crun: crun fails on these machines' hybrid cgroups)."""
    conf = os.path.join(tmp, "containers.conf")
    ulimits = ", ".join('"%s"' % limits()[i + 1] for i in range(0, len(limits()), 2))
    with open(conf, "w") as f:
        f.write(f'[containers]\ndefault_ulimits = [{ulimits}]\n[engine]\nruntime = "runc"\n')
    return dict(os.environ, CONTAINERS_CONF=conf)


def status_fields(container):
    st = podman("exec", container, "cat", "/proc/1/status").stdout
    return dict(line.split(":", 1) for line in st.splitlines() if ":" in line)


class Play:
    """The transformed manifests, played and checked; every check goes to c."""

    def __init__(self, repo, tag, tmp, mock, c):
        self.mock, self.c, self.tmp = mock, c, tmp
        self.env = podman_env(tmp)
        key_dir = os.path.join(tmp, "api-key")
        os.mkdir(key_dir, 0o700)
        key = os.path.join(key_dir, "api-key")
        with open(key, "w") as f:
            f.write(harness.API_KEY + "\n")
        os.chmod(key, 0o400)
        for p in (key_dir, key):
            os.chown(p, 10001, 10001)   # the pod's user; a Secret volume gets this through fsGroup
        port = harness.free_port()
        docs, self.volume, deployment, self.cfg = transform(repo, tag, mock.url(), port, key_dir, print)
        self.kube = self.write("standalone.yaml", docs)
        self.replay = self.write("standalone-without-claim.yaml",
                                 [d for d in docs if d["kind"] != "PersistentVolumeClaim"])
        self.container_name = docs[2]["spec"]["template"]["spec"]["containers"][0]["name"]
        self.base = f"http://127.0.0.1:{port}"
        self.pod = f"{deployment}-pod-0"   # what podman 4.3 calls a Deployment's (first) pod

    def write(self, name, docs):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            yaml.safe_dump_all(docs, f, sort_keys=False)
        return path

    def play(self, path, what):
        started = time.monotonic()
        podman("kube", "play", path, env=self.env)
        wait_until(lambda: http_get(self.base + "/-/ready")[0] == 200 or None, 60, "/-/ready 200 " + what)
        self.c.check(True, f"{what}: /-/ready 200 after {time.monotonic() - started:.1f} s")

    def container(self):
        """The daemon's container (podman names it after the pod it made)."""
        names = podman("ps", "--filter", f"pod={self.pod}", "--format", "{{.Names}}").stdout.split()
        mine = [n for n in names if n.endswith("-" + self.container_name)]
        assert len(mine) == 1, (names, podman("pod", "ps", "--format", "{{.Name}}").stdout)
        return mine[0]

    def first(self):
        c = self.c
        self.play(self.kube, "played")
        status, _, body = http_get(self.base + "/metrics")
        c.check(status == 200 and 'inference_endpoint_status{endpoint="' in body,
                "/metrics serves the upstream's series", body[:300])
        first = self.mock.api_requests()
        c.check(len(first) >= 1 and all(r["status"] == 200 for r in first),
                f"the simulated API was asked {len(first)} time(s), answered 200")
        fields = status_fields(self.container())
        c.check(fields["Uid"].split() == ["10001"] * 4 and fields["Gid"].split() == ["10001"] * 4,
                "runs as 10001:10001 (runAsUser, runAsGroup)", fields["Uid"] + fields["Gid"])
        c.check(all(int(fields[k], 16) == 0 for k in ("CapPrm", "CapEff", "CapBnd")),
                "no capabilities (drop: [ALL])")
        c.check(fields["NoNewPrivs"].strip() == "1", "no_new_privs (allowPrivilegeEscalation: false)")
        c.check(fields["Seccomp"].strip() == "2", "seccomp filter (RuntimeDefault)", fields["Seccomp"])
        r = podman("exec", self.container(), "touch", "/usr/bin/x", check=False)
        c.check(r.returncode != 0 and "Read-only file system" in r.stderr, "read-only root file system", r.stderr)
        mountpoint = podman("volume", "inspect", "--format", "{{.Mountpoint}}", self.volume).stdout.strip()
        ledgers = [n for n in os.listdir(mountpoint) if n.endswith(".ledger")]
        c.check(len(ledgers) == 1, f"the ledger is on the claimed volume {self.volume}", os.listdir(mountpoint))

    def down_and_again(self):
        c = self.c
        podman("kube", "down", self.kube, env=self.env)
        c.check(podman("pod", "exists", self.pod, check=False).returncode == 1, "podman kube down removed the pod")
        c.check(podman("volume", "exists", self.volume, check=False).returncode == 0,
                "the claimed volume outlives the pod")
        before = len(self.mock.api_requests())
        print("6. played again without the PersistentVolumeClaim document")
        self.play(self.replay, "played again")
        status, _, body = http_get(self.base + "/metrics")
        samples = harness.parse_prom(body)
        c.check(harness.find(samples, "inference_endpoint_status"),
                "the snapshot from the volume is served", body[:300])
        sent = [r["t"] for r in self.mock.api_requests()]
        # A scheduled poll may fall between the two plays; then it is counted
        # too. Either way the new pod knows every request of the last minute.
        now = time.time()
        recent = [t for t in sent if now - t < 55]
        remaining = harness.value(samples, "cerebras_proxy_rate_limit_remaining", upstream="default")
        if len(recent) == len([t for t in sent if now - t < 62]):
            budget = self.cfg["upstreams"][0].get("rate_limit", {}).get("requests", 6)
            c.check(remaining == budget - len(recent),
                    f"the ledger came back: {len(recent)} request(s) of the last minute counted, "
                    f"{remaining:.0f} left", remaining)
        else:
            print(f"note: a request is at the edge of the window; budget {remaining} not compared")
        c.check(len(sent) - before in (0, 1),
                f"no extra poll at start ({len(sent) - before} new request(s): at most the scheduled one)")

    def clean(self):
        if self.c.failed:
            r = podman("pod", "logs", "--tail", "30", self.pod, check=False)
            print(f"--- logs {self.pod}\n{r.stdout}{r.stderr}")
        podman("kube", "down", self.kube, env=self.env, check=False)
        podman("volume", "rm", "-f", self.volume, check=False)


def main():
    rest = harness.parse_args()
    if rest:
        print(__doc__)
        return 2
    require_podman()
    require_catatonit()
    repo = harness.REPO
    ensure_base_image(repo)
    build_proxy_image(repo)
    c = Checks()
    tag = f"cmp-k8s-{os.getpid()}"
    tmp = tempfile.mkdtemp(prefix=tag + "-")
    mock = harness.Mock(harness.Workspace(), cert=None, window="60s")
    t_start = time.monotonic()
    played = None
    try:
        played = Play(repo, tag, tmp, mock, c)
        played.first()
        played.down_and_again()
    except AssertionError as e:
        c.check(False, "suite ran to the end", str(e))
    finally:
        if played is not None:
            played.clean()
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"suite time (without the image build): {time.monotonic() - t_start:.1f} s")
    return c.exit()


if __name__ == "__main__":
    sys.exit(main())
