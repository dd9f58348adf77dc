#!/usr/bin/env python3
"""Tests what scripts/release.sh put into dist/ and into local container
storage, the way a user meets each artifact:

  * sha256sums.txt: `sha256sum -c` passes and covers every other file;
  * per architecture (amd64, arm64):
      - the .deb: Version and Architecture fields, Depends on the :ARCH
        library packages (not on the cross toolchain's), the binary's ELF machine;
      - the archive: exactly the documented files under one directory, the
        binary's ELF machine, and its --version (arm64 under qemu-aarch64);
      - the image archive: a `docker load` archive tagged NAME:VERSION-ARCH;
      - the image: its architecture, the OCI labels (licenses Apache-2.0,
        version, revision, created, source), no simulated upstream inside, and,
        started against the simulated API on the host, /-/ready, the upstream's
        series and cerebras_proxy_build_info with the release's version;
  * the manifest list NAME:VERSION: linux/amd64 and linux/arm64.
The version the user reads is the same everywhere: --version, the package,
the image label and cerebras_proxy_build_info.

Running arm64 programs needs qemu-user-static: the archive's --version runs
through qemu-aarch64 directly, the image needs qemu registered with
binfmt_misc. Where that is missing the arm64 runs are skipped with the reason.

Usage: release_artifacts_test.py --dist DIR --version V --mock MOCK --image NAME
                                 --revision REV --source URL
exit 0 pass (skips printed), 1 fail
"""
import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness as h  # noqa: E402
from container_common import Checks, podman  # noqa: E402

NAME = "cerebras-metrics-proxy"
ELF_MACHINE = {"amd64": 62, "arm64": 183}           # EM_X86_64, EM_AARCH64
UNAME = {"amd64": "x86_64", "arm64": "aarch64"}
ARCHIVE_FILES = [NAME, f"{NAME}.1", f"{NAME}.service", f"{NAME}.yml", "LICENSE", "README.md",
                 "rules/cerebras.rules.yml", "dashboards/cerebras-dashboard.json"]
# Libraries the daemon links: dpkg-shlibdeps must name Debian's packages of them.
WANT_DEPENDS = ["libc6", "libstdc++6", "libssl3", "libboost-url1.81.0", "libboost-program-options1.81.0",
                "libyaml-cpp0.7", "libsystemd0", "zlib1g", "libcrypt1", "ca-certificates", "procps"]


def elf_machine(data):
    """e_machine of a little-endian 64-bit ELF file, or None."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    return int.from_bytes(data[18:20], "little")


def binfmt_reason(arch):
    """None when ARCH programs run on this kernel, else why not."""
    if arch == "amd64":
        return None
    entry = "/proc/sys/fs/binfmt_misc/qemu-aarch64"
    if not os.path.exists(entry):
        return f"{entry} missing: qemu-user-static is not registered with binfmt_misc " \
               "(scripts/cross-deps.sh registers it; a container needs --privileged)"
    if not open(entry).read().startswith("enabled"):
        return f"{entry} is disabled"
    return None


def check_sums(c, dist):
    r = subprocess.run(["sha256sum", "-c", "--strict", "sha256sums.txt"], cwd=dist,
                       capture_output=True, text=True)
    c.check(r.returncode == 0, "sha256sum -c sha256sums.txt", r.stdout + r.stderr)
    with open(os.path.join(dist, "sha256sums.txt")) as f:
        listed = {line.split(None, 1)[1].strip().lstrip("*") for line in f if line.strip()}
    present = set(os.listdir(dist)) - {"sha256sums.txt"}
    c.check(listed == present, "sha256sums.txt lists every artifact", sorted(listed ^ present))


def check_deb(c, dist, version, arch):
    deb = os.path.join(dist, f"{NAME}_{version}_{arch}.deb")
    if not c.check(os.path.isfile(deb), f"{arch}: {os.path.basename(deb)} exists"):
        return

    def field(name):
        return subprocess.run(["dpkg-deb", "-f", deb, name], capture_output=True, text=True).stdout.strip()
    c.check(field("Version") == version, f"{arch}: package Version {version}", field("Version"))
    c.check(field("Architecture") == arch, f"{arch}: package Architecture {arch}", field("Architecture"))
    depends = {d.strip().split()[0] for d in field("Depends").split(",") if d.strip()}
    missing = [d for d in WANT_DEPENDS if d not in depends]
    c.check(not missing, f"{arch}: Depends from the {arch} libraries", f"missing {missing} in {sorted(depends)}")
    c.check(not [d for d in depends if d.endswith("-cross")], f"{arch}: no cross-toolchain package in Depends",
            sorted(depends))
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["dpkg-deb", "-x", deb, d], check=True)
        data = open(os.path.join(d, "usr/bin", NAME), "rb").read(64)
        c.check(elf_machine(data) == ELF_MACHINE[arch], f"{arch}: the package's binary is {arch}")


def check_archive(c, dist, version, arch, revision):
    base = f"{NAME}-{version}.linux-{arch}"
    path = os.path.join(dist, base + ".tar.gz")
    if not c.check(os.path.isfile(path), f"{arch}: {base}.tar.gz exists"):
        return
    with tarfile.open(path) as t:
        members = {m.name: m for m in t.getmembers() if m.isfile()}
        want = {f"{base}/{f}" for f in ARCHIVE_FILES}
        c.check(set(members) == want, f"{arch}: archive holds exactly {', '.join(ARCHIVE_FILES)}",
                sorted(set(members) ^ want))
        binary = members.get(f"{base}/{NAME}")
        if not binary:
            return
        c.check(binary.mode & 0o111, f"{arch}: archive's binary is executable")
        with tempfile.TemporaryDirectory() as d:
            t.extract(binary, d)
            exe = os.path.join(d, binary.name)
            c.check(elf_machine(open(exe, "rb").read(64)) == ELF_MACHINE[arch], f"{arch}: archive's binary is {arch}")
            readme = t.extractfile(members[f"{base}/README.md"]).read().decode()
            c.check("Debian 12" in readme and "@VERSION@" not in readme and "@ARCH@" not in readme
                    and f"{version}_{arch}.deb" in readme,
                    f"{arch}: archive README names the distribution and this release")
            argv = [exe, "--version"]
            if arch == "arm64":
                qemu = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
                if not qemu:
                    print(f"SKIP: {arch} --version: no qemu-aarch64 (qemu-user-static)")
                    return
                argv = [qemu] + argv
            r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            want_line = f"{NAME}, version {version} (revision: {revision})"
            c.check(r.stdout.strip().startswith(want_line), f"{arch}: --version says {want_line!r}",
                    r.stdout + r.stderr)


def check_image_archive(c, dist, version, arch, image):
    path = os.path.join(dist, f"{NAME}-{version}.linux-{arch}.image.tar.gz")
    if not c.check(os.path.isfile(path), f"{arch}: {os.path.basename(path)} exists"):
        return
    with gzip.open(path) as z, tarfile.open(fileobj=z) as t:
        manifest = json.load(t.extractfile("manifest.json"))
    tags = [tag for m in manifest for tag in m.get("RepoTags") or []]
    c.check(f"{image}:{version}-{arch}" in tags, f"{arch}: image archive is a `docker load` archive of "
            f"{image}:{version}-{arch}", tags)


def wait_ready(name, port, timeout):
    """True once /-/ready answers 200; False when the container exits or time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = podman("inspect", "--format", "{{.State.Running}}", name, check=False).stdout.strip()
        if running != "true":
            return False
        try:
            if h.request(port, "GET", "/-/ready", timeout=5).status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def run_image(c, ref, arch, version, revision, mock_path):
    """Starts the image on the host network against the simulated API on the host."""
    h.MOCK = mock_path
    ws = h.Workspace("cmp-release-")
    mock = h.Mock(ws, cert=None)
    port = h.free_port()
    cfg = {"listen": f"127.0.0.1:{port}", "state_dir": "/var/lib/cerebras-metrics-proxy",
           "log": {"level": "info", "format": "logfmt"},
           # A fetch under emulation is slower: a generous timeout, and so interval.
           "upstreams": [h.upstream_cfg(mock, name="release", ca_file="", interval="10s", timeout="5s",
                                        extra_labels={"env": "release"})]}
    conf = os.path.join(ws.subdir("conf"), "config.yml")
    with open(conf, "w") as f:
        f.write(h.to_yaml(cfg))
    os.chmod(conf, 0o644)
    os.chmod(os.path.dirname(conf), 0o755)
    os.chmod(ws.dir, 0o755)
    name = f"cmp-release-{arch}-{os.getpid()}"
    try:
        podman("run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
               "-e", f"CMP_E2E_API_KEY={h.API_KEY}",
               "-v", f"{conf}:/etc/{NAME}/{NAME}.yml:ro", ref)
        t0 = time.monotonic()
        ready = wait_ready(name, port, timeout=180)
        c.check(ready, f"{arch}: the image is ready after {time.monotonic() - t0:.1f} s (first poll succeeded)")
        body = h.request(port, "GET", "/metrics", timeout=10).text if ready else ""
        c.check(re.search(r'^inference_endpoint_status\{[^}]*env="release"', body, re.M),
                f"{arch}: /metrics serves the simulated API's series", body[:300])
        want = f'cerebras_proxy_build_info{{version="{version}",revision="{revision}"}} 1'
        c.check(re.search(rf"^{re.escape(want)}$", body, re.M), f"{arch}: {want}",
                [line for line in body.splitlines() if "build_info" in line])
        r = podman("exec", name, "/bin/sh", "-c", "uname -m; ls /usr/bin/cerebras-mock-upstream 2>&1", check=False)
        lines = r.stdout.split("\n")
        c.check(lines[0] == UNAME[arch], f"{arch}: the container runs {UNAME[arch]}", r.stdout)
        c.check("No such file" in r.stdout, f"{arch}: no simulated upstream in the image", r.stdout)
    except (AssertionError, RuntimeError) as e:
        c.check(False, f"{arch}: image ran to the end", str(e))
    finally:
        if c.failed:
            r = podman("logs", "--tail", "20", name, check=False)
            print(f"--- logs {name}\n{r.stdout}{r.stderr}")
        podman("rm", "-f", "-t", "0", name, check=False)
        mock.stop()


def check_image(c, image, version, arch, revision, source, mock_path):
    ref = f"{image}:{version}-{arch}"
    r = podman("image", "inspect", ref, check=False)
    if not c.check(r.returncode == 0, f"{arch}: image {ref} exists", r.stderr):
        return
    info = json.loads(r.stdout)[0]
    c.check(info.get("Architecture") == arch, f"{arch}: image architecture", info.get("Architecture"))
    labels = info.get("Labels") or info.get("Config", {}).get("Labels") or {}
    want = {"org.opencontainers.image.licenses": "Apache-2.0", "org.opencontainers.image.version": version,
            "org.opencontainers.image.revision": revision, "org.opencontainers.image.source": source}
    for k, v in want.items():
        c.check(labels.get(k) == v, f"{arch}: label {k}={v}", labels.get(k))
    c.check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels.get("org.opencontainers.image.created", "")),
            f"{arch}: label org.opencontainers.image.created is an RFC 3339 time",
            labels.get("org.opencontainers.image.created"))
    print(f"{arch}: image size {info.get('Size', 0) / 1e6:.1f} MB (uncompressed)")
    reason = binfmt_reason(arch)
    if reason:
        print(f"SKIP: {arch} image run: {reason}")
        return
    run_image(c, ref, arch, version, revision, mock_path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for a in ("dist", "version", "mock", "image", "revision", "source"):
        p.add_argument("--" + a, required=True)
    args = p.parse_args()
    c = Checks()
    check_sums(c, args.dist)
    for arch in ("amd64", "arm64"):
        t0 = time.monotonic()
        check_deb(c, args.dist, args.version, arch)
        check_archive(c, args.dist, args.version, arch, args.revision)
        check_image_archive(c, args.dist, args.version, arch, args.image)
        check_image(c, args.image, args.version, arch, args.revision, args.source, args.mock)
        print(f"{arch}: checked in {time.monotonic() - t0:.1f} s")
    r = podman("manifest", "inspect", f"{args.image}:{args.version}", check=False)
    platforms = sorted(f"{m['platform']['os']}/{m['platform']['architecture']}"
                       for m in json.loads(r.stdout or "{}").get("manifests", []))
    c.check(platforms == ["linux/amd64", "linux/arm64"], "manifest list has linux/amd64 and linux/arm64", platforms)
    return c.exit()


if __name__ == "__main__":
    sys.exit(main())
