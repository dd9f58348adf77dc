#!/usr/bin/env python3
"""Builds docker/Dockerfile with podman (the daemon's image, and the simulated
upstream's from its mock-upstream target) and runs them the way the compose
demo does: the mock upstream first, owning the network namespace, the daemon
joining it. Checks what a user of the image relies on: /-/ready and upstream
series, a non-root user whose group exists, a read-only root file system, no
capabilities, the HEALTHCHECK on a port other than 9753, SIGTERM, the
state volume carrying the snapshot across a restart, `--check-config` with
the key from a podman secret printing no warning, the Apache-2.0 license
label, and no simulated upstream in the daemon's image.

Usage: container_image_test.py REPO_ROOT      exit 0 pass, 1 fail, 77 skip
"""
import json
import os
import re
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from container_common import (MOCK_IMAGE, PROXY_IMAGE, Checks, build_proxy_image,  # noqa: E402
                              ensure_base_image, http_get, podman, require_podman, wait_until)

IMAGE = PROXY_IMAGE
PORT = 9811          # not the default 9753: the HEALTHCHECK must follow it
STATE = "/var/lib/cerebras-metrics-proxy"
HEALTHCHECK = "/usr/libexec/cerebras-metrics-proxy/healthcheck"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_container(name, script, check=False):
    return podman("exec", name, "/bin/bash", "-c", script, check=check)


def post(mock, path):
    """The mock's control API, from inside its namespace (the image has no curl)."""
    r = in_container(mock, "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'POST %s HTTP/1.0\\r\\n"
                     "Host: x\\r\\nContent-Length: 0\\r\\n\\r\\n' >&3 && head -n1 <&3" % path, check=True)
    return r.stdout.strip()


def check_config_with_secret(repo, image, tag, work, secret_mode):
    """`--check-config` of the image's shipped configuration as a user
    adapts it (an organization id, the key from a podman secret), mounted
    0644 like any `-v my-config.yml`; the secret is mounted for the image's
    group with `secret_mode` (0440: a Kubernetes Secret with fsGroup).
    Returns (exit code, stdout: the summary and its warnings, stderr)."""
    shipped = open(os.path.join(repo, "docker/cerebras-metrics-proxy.yml")).read()
    cfg = shipped.replace("org_REPLACE_ME", "org_abc123").replace(
        "api_key_env: CEREBRAS_API_KEY", "api_key_file: /run/secrets/cerebras_api_key")
    path = os.path.join(work, "config.yml")
    with open(path, "w") as f:
        f.write(cfg)
    os.chmod(path, 0o644)
    r = podman("run", "--rm", "--secret",
               f"{tag}-key,type=mount,target=cerebras_api_key,uid=0,gid=10001,mode={secret_mode}",
               "-v", f"{path}:/etc/cerebras-metrics-proxy/mine.yml:ro", image,
               "--config.file=/etc/cerebras-metrics-proxy/mine.yml", "--check-config", check=False)
    return r.returncode, r.stdout, r.stderr


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    repo = os.path.abspath(sys.argv[1])
    require_podman()
    ensure_base_image(repo)
    c = Checks()
    tag = f"cmp-ctest-{os.getpid()}"
    mock, daemon, volume = f"{tag}-mock", f"{tag}-daemon", f"{tag}-state"
    try:
        build_proxy_image(repo)
        # The same build stage: only the last layers are new.
        build_proxy_image(repo, target="mock-upstream", image=MOCK_IMAGE)

        info = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
        cfg = info["Config"]
        c.check(cfg.get("User") == "10001:10001", "image runs as 10001:10001", cfg.get("User"))
        # podman shows a docker-format health check beside Config, docker inside it.
        hc = (info.get("Healthcheck") or cfg.get("Healthcheck") or {}).get("Test") or []
        c.check(HEALTHCHECK in " ".join(hc), "HEALTHCHECK kept in the image (--format docker)", hc)
        licenses = (info.get("Labels") or cfg.get("Labels") or {}).get("org.opencontainers.image.licenses")
        c.check(licenses == "Apache-2.0", "label org.opencontainers.image.licenses=Apache-2.0", licenses)
        r = podman("run", "--rm", "--entrypoint", "ls", IMAGE, "/usr/bin/cerebras-mock-upstream", check=False)
        c.check(r.returncode != 0, "no simulated upstream in the daemon's image", r.stdout)
        r = podman("run", "--rm", "--entrypoint", "id", IMAGE)
        c.check(r.stdout.strip() == "uid=10001(cerebras-proxy) gid=10001(cerebras-proxy) groups=10001(cerebras-proxy)",
                "user and group 10001 both have entries", r.stdout.strip())
        r = podman("run", "--rm", "--entrypoint", "stat", "-v", f"{volume}:{STATE}", IMAGE,
                   "-c", "%u:%g %a", STATE)
        c.check(r.stdout.strip() == "10001:10001 700", "fresh state volume owned 10001:10001 mode 0700",
                r.stdout.strip())

        # No warning on the shipped defaults: a key readable by its group
        # (0440, fsGroup) is fine; podman's default secret mode (0444, world-
        # readable) still warns.
        with tempfile.TemporaryDirectory(prefix="cmp-secret-") as work:
            key = os.path.join(work, "key")
            with open(key, "w") as f:
                f.write("demo-key\n")
            podman("secret", "create", f"{tag}-key", key)
            # stdout only: podman itself may say things on stderr.
            code, out, err = check_config_with_secret(repo, IMAGE, tag, work, "0440")
            c.check(code == 0 and "configuration OK" in out and not re.search(r"^warning", out, re.M),
                    "--check-config with a podman secret (0440, group 10001): OK, no warning", out + err)
            code, out, err = check_config_with_secret(repo, IMAGE, tag, work, "0444")
            c.check(code == 0 and re.search(r"^warning: .*/run/secrets/cerebras_api_key is world-readable", out, re.M),
                    "a world-readable secret (0444) still warns", out + err)

        host_port = free_port()
        hardening = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        # The compose demo's order: the mock owns the namespace and starts first.
        podman("run", "-d", "--name", mock, "-p", f"127.0.0.1:{host_port}:{PORT}", *hardening,
               "-e", "CEREBRAS_API_KEY=demo-key", MOCK_IMAGE, "--listen", "127.0.0.1:8080",
               "--org", "org_abc123", "--endpoints", "3", "--down-endpoints", "1", "--latency-label", "percentile")
        wait_until(lambda: in_container(mock, "exec 3<>/dev/tcp/127.0.0.1/8080").returncode == 0,
                   20, "the mock to listen")

        def start_daemon(name):
            podman("run", "-d", "--name", name, "--network", f"container:{mock}", *hardening,
                   "--tmpfs", "/tmp", "-e", "CEREBRAS_API_KEY=demo-key", "-v", f"{volume}:{STATE}",
                   "-v", f"{repo}/docker/demo.yml:/etc/cerebras-metrics-proxy/demo.yml:ro", IMAGE,
                   "--config.file=/etc/cerebras-metrics-proxy/demo.yml", f"--web.listen-address=0.0.0.0:{PORT}")
            return time.monotonic()

        base = f"http://127.0.0.1:{host_port}"
        started = start_daemon(daemon)
        ready = wait_until(lambda: http_get(base + "/-/ready")[0] == 200 or None, 30, "/-/ready 200")
        c.check(bool(ready), f"/-/ready 200 after {time.monotonic() - started:.1f} s (first poll succeeded)")
        status, _, body = http_get(base + "/metrics")
        c.check(status == 200 and re.search(r'^inference_endpoint_status\{[^}]*env="demo"', body, re.M),
                "/metrics carries the upstream's series with extra_labels", body[:300])
        c.check(re.search(r'^cerebras_proxy_upstream_up\{upstream="demo"\} 1$', body, re.M),
                "cerebras_proxy_upstream_up 1")

        st = in_container(daemon, "cat /proc/1/status", check=True).stdout
        fields = dict(line.split(":", 1) for line in st.splitlines() if ":" in line)
        c.check(fields["Uid"].split() == ["10001"] * 4, "daemon uid 10001", fields["Uid"])
        c.check(fields["Gid"].split() == ["10001"] * 4, "daemon gid 10001", fields["Gid"])
        for cap in ("CapPrm", "CapEff", "CapBnd", "CapAmb"):
            c.check(int(fields[cap], 16) == 0, f"{cap} empty", fields[cap])
        c.check(fields["NoNewPrivs"].strip() == "1", "no_new_privs set")
        r = in_container(daemon, "getent group 10001")
        c.check(r.stdout.startswith("cerebras-proxy:x:10001:"), "getent group 10001", r.stdout)
        r = in_container(daemon, "touch /usr/bin/x")
        c.check(r.returncode != 0 and "Read-only file system" in r.stderr, "root file system read-only",
                r.stderr)
        r = in_container(daemon, f"ls -A {STATE}")
        c.check(r.returncode == 0 and r.stdout.strip() != "", "state written to the volume", r.stdout)

        r = podman("healthcheck", "run", daemon, check=False)
        c.check(r.returncode == 0, f"`podman healthcheck run` passes with listen port {PORT}",
                r.stdout + r.stderr)
        r = in_container(daemon, f"{HEALTHCHECK} /no-such-path")
        c.check(r.returncode == 1 and "404" in r.stdout, "the health check fails on a non-200 (404)", r.stdout)
        # A hung daemon still has its socket, and the kernel still accepts
        # connections: only the missing answer tells.
        podman("kill", "--signal", "STOP", daemon)
        r = podman("healthcheck", "run", daemon, check=False)
        podman("kill", "--signal", "CONT", daemon)
        c.check(r.returncode == 1 and "unhealthy" in r.stdout, "a stopped daemon is reported unhealthy",
                r.stdout + r.stderr)

        # Every poll fails from now on: a restarted daemon that serves series
        # and is ready must have restored them from the volume.
        c.check(post(mock, "/mock/fault?kind=500&count=50").split()[1:2] == ["200"], "mock fault queued")
        t = time.monotonic()
        r = podman("stop", "-t", "10", daemon, check=False)
        took = time.monotonic() - t
        code = podman("inspect", "--format", "{{.State.ExitCode}}", daemon).stdout.strip()
        c.check(took < 5 and code == "0", f"SIGTERM: exit {code} after {took:.1f} s (< 5 s, exit 0)")
        podman("rm", daemon, check=False)
        start_daemon(daemon)
        try:
            ok = wait_until(lambda: http_get(base + "/-/ready")[0] == 200 or None, 10, "/-/ready after restart")
        except AssertionError:
            ok = False
        status, _, body = http_get(base + "/metrics")
        c.check(bool(ok) and "inference_endpoint_status{" in body,
                "after a restart the snapshot from the volume is served while polls fail", body[:300])
    except AssertionError as e:
        c.check(False, "suite ran to the end", str(e))
    finally:
        for name in (daemon, mock):
            r = podman("logs", "--tail", "20", name, check=False)
            if c.failed and r.returncode == 0:
                print(f"--- logs {name}\n{r.stdout}{r.stderr}")
            podman("rm", "-f", "-t", "0", name, check=False)
        podman("volume", "rm", "-f", volume, check=False)
        podman("secret", "rm", f"{tag}-key", check=False)
    return c.exit()


if __name__ == "__main__":
    sys.exit(main())
