"""Shared by the container suites (label `container`): podman as root, the
base image made by docker/base-image.sh, and the two limits of the CI
machines: crun fails on their hybrid cgroup layout (runc works), and an
RLIMIT above the host's hard limit cannot be set inside a container."""
import os
import resource
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

SKIP = 77
BASE_IMAGE = "debian:bookworm-slim"
PROXY_IMAGE = "localhost/cerebras-metrics-proxy:ctest"
# The simulated upstream has an image of its own (the Dockerfile's
# mock-upstream target): the daemon's image does not carry it.
MOCK_IMAGE = "localhost/cerebras-mock-upstream:ctest"


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def require_podman():
    """Exit 77 with the reason when this machine cannot run the suite."""
    if os.geteuid() != 0:
        skip("needs root (rootful podman, debootstrap)")
    for tool in ("podman", "runc", "debootstrap"):
        if not shutil.which(tool):
            skip(f"{tool} not installed (scripts/packages/test.txt lists it)")
    r = subprocess.run(["podman", "info"], capture_output=True, text=True)
    if r.returncode != 0:
        skip(f"`podman info` failed: {r.stderr.strip()[:400]}")


def limits():
    """--ulimit values podman may set: the host's hard limits, capped.
    podman's default nproc is above what these kernels let runc set."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nofile = 65536 if nofile == resource.RLIM_INFINITY else min(nofile, 65536)
    nproc = 4096 if nproc == resource.RLIM_INFINITY else min(nproc, 4096)
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]


def podman_args(sub):
    """`podman run`/`create`/`build` need the runtime and limits; others not."""
    if sub in ("run", "create", "build"):
        return ["--runtime", "runc"] + limits()
    return []


def podman(*args, check=True, capture=True, timeout=600, input=None, env=None):
    argv = ["podman", args[0]] + podman_args(args[0]) + list(args[1:])
    r = subprocess.run(argv, capture_output=capture, text=True, timeout=timeout, input=input, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {r.returncode}:\n{r.stdout or ''}{r.stderr or ''}")
    return r


def build_proxy_image(repo, target=None, image=PROXY_IMAGE):
    """docker/Dockerfile built as PROXY_IMAGE (or TARGET as IMAGE; --format
    docker: the OCI format has no HEALTHCHECK). Layers are cached, so the
    suites after the first one on a machine rebuild in seconds."""
    t0 = time.monotonic()
    podman("build", "--format", "docker", "-f", os.path.join(repo, "docker/Dockerfile"),
           "--ignorefile", os.path.join(repo, "docker/Dockerfile.dockerignore"),
           *(["--target", target] if target else []), "-t", image, repo, timeout=3000, capture=False)
    print(f"image build ({target or 'default'}): {time.monotonic() - t0:.1f} s")


def ensure_base_image(repo):
    """debian:bookworm-slim from Debian's own packages, built once per machine."""
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(repo, "docker/base-image.sh"), BASE_IMAGE],
                       capture_output=True, text=True, timeout=1200)
    if r.returncode != 0:
        raise AssertionError(f"docker/base-image.sh failed:\n{r.stdout}{r.stderr}")
    print(f"base image {BASE_IMAGE}: {time.monotonic() - t0:.1f} s")


def http_get(url, timeout=5, headers=None):
    """(status, headers, body text); status 0 when nothing answered."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0, {}, ""


def wait_until(fn, timeout, what, interval=0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


class Checks:
    """Collects failures so that one run reports every broken property."""

    def __init__(self):
        self.failed = []

    def check(self, ok, what, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} {what}" + (f": {detail}" if detail and not ok else ""))
        if not ok:
            self.failed.append(what)
        return ok

    def exit(self):
        if self.failed:
            print(f"FAIL: {len(self.failed)} check(s): {', '.join(self.failed)}")
            return 1
        print("PASS")
        return 0
