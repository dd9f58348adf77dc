#!/usr/bin/env python3
"""The unit under a real systemd: PID 1 of a podman container
(`--systemd=always`) with the .deb installed, checking what
`systemd-analyze verify` cannot: Type=notify readiness, the watchdog
restarting a hung event loop, DynamicUser + StateDirectory + LoadCredential
(the key readable by the service and nobody else), `systemctl reload` as
SIGHUP, TLS to the upstream and the state directory under the sandbox, and
the `systemd-analyze security` exposure the README states.

Two things the container needs, both from how systemd behaves in one: PID 1
does not make `/` a shared mount inside a container (it leaves that to the
container manager), and LoadCredential= moves its ramfs into
/run/credentials through mount propagation: without `mount --make-rshared /`
before systemd starts, the credential directory stays empty. Mount
namespaces (ProtectSystem= and friends) need CAP_SYS_ADMIN.

Usage: container_systemd_test.py REPO_ROOT BUILD_DIR     exit 0 pass, 1 fail, 77 skip
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from container_common import (BASE_IMAGE, Checks, ensure_base_image, podman,  # noqa: E402
                              require_podman, skip, wait_until)

IMAGE = "localhost/cmp-systemd:ctest"
UNIT = "cerebras-metrics-proxy.service"
KEY = "ctest-key-6f1d"
ETC = "/etc/cerebras-metrics-proxy"
# The shipped WatchdogSec=30s would make the hung-loop check wait half a
# minute; everything else is the unit as packaged.
DROPIN = "[Service]\nWatchdogSec=3s\nRestartSec=1s\nTimeoutAbortSec=3s\n"

CONTAINERFILE = """FROM {base}
COPY runtime.txt /tmp/runtime.txt
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
      systemd systemd-sysv dbus curl $(grep -v '^#' /tmp/runtime.txt | cut -d' ' -f1) >/dev/null
STOPSIGNAL SIGRTMIN+3
"""


def sh(ctr, script, check=False, timeout=120):
    return podman("exec", ctr, "/bin/bash", "-c", script, check=check, timeout=timeout)


def show(ctr, *props):
    out = sh(ctr, f"systemctl show {UNIT} " + " ".join(f"-p {p}" for p in props), check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    repo, build = map(os.path.abspath, sys.argv[1:])
    require_podman()
    for tool in ("cpack", "openssl"):
        if not shutil.which(tool):
            skip(f"{tool} not installed")
    mock_bin = os.path.join(build, "cerebras-mock-upstream")
    if not os.access(mock_bin, os.X_OK):
        print(f"FAIL: {mock_bin} missing")
        return 1
    ensure_base_image(repo)
    c = Checks()
    ctr = f"cmp-ctest-systemd-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="cmp-systemd-") as tmp:
        r = subprocess.run(["cpack", "-G", "DEB", "--config", os.path.join(build, "CPackConfig.cmake"),
                            "-B", os.path.join(tmp, "pkg")], capture_output=True, text=True, timeout=600)
        debs = glob.glob(os.path.join(tmp, "pkg", "*.deb"))
        if r.returncode != 0 or len(debs) != 1:
            print(f"FAIL: cpack -G DEB:\n{r.stdout}{r.stderr}")
            return 1
        subprocess.run([os.path.join(repo, "tests/integration/make_test_ca.sh"), os.path.join(tmp, "tls")],
                       check=True, capture_output=True)
        ctx = os.path.join(tmp, "ctx")
        os.makedirs(ctx)
        shutil.copy(os.path.join(repo, "scripts/packages/runtime.txt"), ctx)
        open(os.path.join(ctx, "Containerfile"), "w").write(CONTAINERFILE.format(base=BASE_IMAGE))
        t0 = time.monotonic()
        podman("build", "-t", IMAGE, "-f", os.path.join(ctx, "Containerfile"), ctx, timeout=900)
        print(f"systemd image: {time.monotonic() - t0:.1f} s")

        argv = ["run", "-d", "--name", ctr, "--systemd=always", "--cap-add", "SYS_ADMIN", IMAGE,
                "/bin/sh", "-c", "mount --make-rshared / && exec /sbin/init"]
        r = podman(*argv, check=False)
        if r.returncode != 0:
            skip(f"systemd cannot run in a container here: `podman {' '.join(argv)}`: {r.stderr.strip()}")
        try:
            try:
                wait_until(lambda: sh(ctr, "systemctl is-system-running").stdout.strip() in ("running", "degraded"),
                           60, "systemd to boot")
            except AssertionError as e:
                logs = podman("logs", ctr, check=False)
                skip(f"systemd did not boot in `podman {' '.join(argv)}`: {e}\n{logs.stdout[-2000:]}{logs.stderr[-2000:]}")
            print(sh(ctr, "systemctl --failed --no-legend").stdout)

            deb = os.path.basename(debs[0])
            podman("cp", debs[0], f"{ctr}:/tmp/{deb}")
            podman("cp", mock_bin, f"{ctr}:/usr/local/bin/cerebras-mock-upstream")
            for f in ("ca.pem", "server.pem", "server.key"):
                podman("cp", os.path.join(tmp, "tls", f), f"{ctr}:/tmp/{f}")
            r = sh(ctr, f"cd /tmp && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ./{deb} 2>&1 | tail -n 3",
                   timeout=600)
            c.check(r.returncode == 0 and sh(ctr, f"test -x /usr/bin/cerebras-metrics-proxy").returncode == 0,
                    "apt-get install ./….deb under systemd", r.stdout + r.stderr)
            c.check(sh(ctr, f"systemctl is-active {UNIT}").stdout.strip() == "inactive",
                    "installing does not start the unconfigured service")

            # The shipped configuration, pointed at a TLS mock with a test CA.
            cfg = sh(ctr, f"cat {ETC}/cerebras-metrics-proxy.yml", check=True).stdout
            cfg, n = re.subn(r'^(\s*)url: .*$',
                             r'\1url: "https://localhost:8443/api/v1/metrics/organizations/org_abc123"\n'
                             rf'\1ca_file: {ETC}/test-ca.pem', cfg, count=1, flags=re.M)
            assert n == 1, "no url: in the shipped configuration"
            podman("exec", "-i", ctr, "/bin/bash", "-c", f"cat > {ETC}/cerebras-metrics-proxy.yml", input=cfg)
            sh(ctr, f"""set -e
install -m 0644 /tmp/ca.pem {ETC}/test-ca.pem
install -d -m 0700 /etc/mock && install -m 0600 /tmp/server.pem /tmp/server.key /etc/mock/
(umask 077 && printf '%s\\n' {KEY} > {ETC}/api-key)
mkdir -p /etc/systemd/system/{UNIT}.d
printf '{DROPIN}' > /etc/systemd/system/{UNIT}.d/ctest.conf
systemctl daemon-reload
systemd-run -u mock-upstream /usr/local/bin/cerebras-mock-upstream --listen 127.0.0.1:8443 \\
  --tls-cert /etc/mock/server.pem --tls-key /etc/mock/server.key --org org_abc123 --api-key {KEY} --quiet
""", check=True)
            wait_until(lambda: sh(ctr, "curl -sf --cacert /tmp/ca.pem -o /dev/null https://localhost:8443/mock/expected"
                                  ).returncode == 0, 20, "the mock")

            # Type=notify: `systemctl start` returns once READY=1 came, which
            # the daemon sends after binding: the port answers at once.
            r = sh(ctr, f"systemctl start {UNIT} && curl -s -o /dev/null -w '%{{http_code}}' "
                        "http://127.0.0.1:9753/-/healthy", timeout=120)
            c.check(r.returncode == 0 and r.stdout.strip() == "200",
                    "Type=notify: start returns when the listener answers", r.stdout + r.stderr)
            p = show(ctr, "Type", "ActiveState", "SubState", "MainPID")
            c.check((p["Type"], p["ActiveState"], p["SubState"]) == ("notify", "active", "running"),
                    "active (running), Type=notify", p)
            pid = p["MainPID"]
            ok = True
            try:
                wait_until(lambda: sh(ctr, "curl -sf -o /dev/null http://127.0.0.1:9753/-/ready").returncode == 0,
                           30, "/-/ready")
            except AssertionError:
                ok = False
            metrics = sh(ctr, "curl -s http://127.0.0.1:9753/metrics").stdout
            c.check(ok and re.search(r'^cerebras_proxy_upstream_up\{upstream="default"\} 1$', metrics, re.M)
                    and "inference_endpoint_status{" in metrics,
                    "TLS poll with the key from LoadCredential= under the sandbox: ready, upstream series",
                    sh(ctr, f"journalctl -u {UNIT} -n 20 --no-pager -o cat").stdout)

            uid = sh(ctr, f"stat -c %u /proc/{pid}", check=True).stdout.strip()
            c.check(uid.isdigit() and 61184 <= int(uid) <= 65519, f"DynamicUser: runs as dynamic uid {uid}")
            cred = f"/run/credentials/{UNIT}/api-key"
            r = sh(ctr, f"stat -c '%u %a' {cred}")
            c.check(r.stdout.strip() == f"{uid} 400", "credential owned by the service's uid, mode 0400",
                    r.stdout + r.stderr)
            r = sh(ctr, f"setpriv --reuid 65534 --regid 65534 --clear-groups cat {cred}")
            c.check(r.returncode != 0 and KEY not in r.stdout, "another user cannot read the credential",
                    r.stdout + r.stderr)
            r = sh(ctr, f"tr '\\0' '\\n' < /proc/{pid}/environ")
            c.check(KEY not in r.stdout and "CREDENTIALS_DIRECTORY=" in r.stdout,
                    "the key is not in the service's environment")
            r = sh(ctr, "readlink /var/lib/cerebras-metrics-proxy; stat -c '%u %a' /var/lib/private/cerebras-metrics-proxy;"
                        " ls -A /var/lib/private/cerebras-metrics-proxy")
            lines = r.stdout.split("\n")
            c.check(len(lines) >= 3 and lines[0] == "private/cerebras-metrics-proxy"
                    and lines[1] == f"{uid} 700" and lines[2].strip() != "",
                    "StateDirectory: /var/lib/private/cerebras-metrics-proxy, owned 0700, state written", r.stdout)

            # reload = SIGHUP: the daemon reloads in place; a broken file is refused.
            r = sh(ctr, f"systemctl reload {UNIT} && sleep 1 && journalctl -u {UNIT} --no-pager -o cat")
            p = show(ctr, "MainPID", "ActiveState")
            c.check(r.returncode == 0 and "configuration reloaded" in r.stdout and p["MainPID"] == pid,
                    "systemctl reload: reloaded in place (same PID)", r.stdout[-800:])
            sh(ctr, f"cp {ETC}/cerebras-metrics-proxy.yml /tmp/good.yml && echo 'no_such_key: 1' >> {ETC}/cerebras-metrics-proxy.yml")
            r = sh(ctr, f"systemctl reload {UNIT} && sleep 1 && journalctl -u {UNIT} --no-pager -o cat | tail -n 5;"
                        "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9753/-/ready")
            p = show(ctr, "MainPID", "ActiveState")
            c.check("reload failed" in r.stdout and p["MainPID"] == pid and r.stdout.endswith("200"),
                    "an invalid file on reload is refused, the service keeps serving", r.stdout)
            sh(ctr, f"cp /tmp/good.yml {ETC}/cerebras-metrics-proxy.yml")

            # The watchdog: a stopped (hung) event loop sends no WATCHDOG=1.
            sh(ctr, f"kill -STOP {pid}", check=True)
            try:
                wait_until(lambda: (lambda q: q["NRestarts"] == "1" and q["ActiveState"] == "active"
                                    and q["MainPID"] not in ("0", pid))(show(ctr, "NRestarts", "ActiveState", "MainPID")),
                           40, "a watchdog restart")
                restarted = True
            except AssertionError:
                restarted = False
            log = sh(ctr, f"journalctl -u {UNIT} --no-pager -o cat").stdout
            c.check(restarted and "Watchdog timeout" in log, "watchdog: a hung loop is killed and restarted",
                    log[-1500:])
            try:
                wait_until(lambda: sh(ctr, "curl -sf -o /dev/null http://127.0.0.1:9753/-/ready").returncode == 0,
                           20, "/-/ready after the restart")
                ready = True
            except AssertionError:
                ready = False
            c.check(ready, "ready again after the restart (state directory survived)")

            r = sh(ctr, f"systemd-analyze security --no-pager {UNIT}")
            m = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\S+)", r.stdout)
            score = m.group(1) if m else None
            print(f"systemd-analyze security: {m.group(0) if m else r.stdout[-500:]}")
            readme = " ".join(open(os.path.join(repo, "README.md"), encoding="utf-8").read().split())
            c.check(score is not None and re.search(rf"exposure[^.]{{0,30}}\b{re.escape(score)}\b", readme),
                    f"README states the exposure level {score}")

            t = time.monotonic()
            sh(ctr, f"systemctl stop {UNIT}", check=True)
            took = time.monotonic() - t
            p = show(ctr, "Result", "ExecMainStatus")
            c.check(took < 5 and p["Result"] == "success" and p["ExecMainStatus"] == "0",
                    f"systemctl stop: exit 0 after {took:.1f} s", p)
        except AssertionError as e:
            c.check(False, "suite ran to the end", str(e))
        finally:
            if c.failed:
                print(sh(ctr, f"journalctl -u {UNIT} -n 40 --no-pager").stdout)
            podman("rm", "-f", "-t", "0", ctr, check=False)
    return c.exit()


if __name__ == "__main__":
    sys.exit(main())
