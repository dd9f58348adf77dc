#!/usr/bin/env python3
"""The Debian package: `cpack -G DEB` from the build tree, its control data
(Depends from shlibdeps, conffiles), lintian with no error and no warning,
then `apt-get install ./cerebras-metrics-proxy_*.deb` in a fresh container of
the debootstrapped base image: --version, --check-config of the shipped
configuration with the key where the unit's LoadCredential= puts it (no
warning on these defaults), the unit not enabled, and a purge that leaves
nothing.

Usage: container_deb_test.py REPO_ROOT BUILD_DIR     exit 0 pass, 1 fail, 77 skip
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from container_common import Checks, ensure_base_image, podman, require_podman, skip, BASE_IMAGE  # noqa: E402

# Libraries the daemon links; shlibdeps must turn each into a dependency.
WANT_DEPENDS = ["libc6", "libstdc++6", "libssl3", "libboost-url1.81.0", "libboost-program-options1.81.0",
                "libyaml-cpp0.7", "libsystemd0", "zlib1g", "libcrypt1", "ca-certificates",
                # the unit's ExecReload=/bin/kill
                "procps"]
CONFFILES = ["/etc/cerebras-metrics-proxy/cerebras-metrics-proxy.yml", "/etc/default/cerebras-metrics-proxy"]

INSTALL = r"""
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The README's command, from the directory holding the package.
(cd /pkg && apt-get install -y -qq --no-install-recommends "./$DEB") 2>&1 | tail -n 8
echo "--- version"
cerebras-metrics-proxy --version
echo "--- config mode"
stat -c '%a' /etc/cerebras-metrics-proxy/cerebras-metrics-proxy.yml
install -d -m 0700 /run/cred
(umask 077 && printf 'key-from-credential\n' > /run/cred/api-key)
echo "--- check-config shipped"
CREDENTIALS_DIRECTORY=/run/cred cerebras-metrics-proxy \
  --config.file=/etc/cerebras-metrics-proxy/cerebras-metrics-proxy.yml --check-config 2>&1 \
  && echo "exit 0" || echo "exit $?"
echo "--- check-config"
# What a user does after installing: the organization id in a copy of the
# shipped file (the conffile itself stays as shipped for dpkg --verify),
# with the shipped file's mode.
cp -p /etc/cerebras-metrics-proxy/cerebras-metrics-proxy.yml /tmp/edited.yml
sed -i 's/org_REPLACE_ME/org_abc123/' /tmp/edited.yml
CREDENTIALS_DIRECTORY=/run/cred cerebras-metrics-proxy --config.file=/tmp/edited.yml --check-config 2>&1
echo "--- enabled"
ls /etc/systemd/system/multi-user.target.wants/ 2>/dev/null || true
echo "--- verify"
dpkg --verify cerebras-metrics-proxy && echo verified
echo "--- purge"
(umask 077 && printf 'k\n' > /etc/cerebras-metrics-proxy/api-key)
apt-get purge -y -qq cerebras-metrics-proxy >/dev/null 2>&1
ls -d /etc/cerebras-metrics-proxy /etc/default/cerebras-metrics-proxy /usr/bin/cerebras-metrics-proxy \
      /lib/systemd/system/cerebras-metrics-proxy.service 2>/dev/null || echo "nothing left"
"""


def section(out, name):
    m = re.search(rf"^--- {name}\n(.*?)(?=^--- |\Z)", out, re.S | re.M)
    return m.group(1).strip() if m else ""


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    repo, build = map(os.path.abspath, sys.argv[1:])
    for tool in ("cpack", "dpkg-deb", "lintian"):
        if not shutil.which(tool):
            skip(f"{tool} not installed (scripts/packages/test.txt lists it)")
    c = Checks()
    with tempfile.TemporaryDirectory(prefix="cmp-deb-") as out:
        r = subprocess.run(["cpack", "-G", "DEB", "--config", os.path.join(build, "CPackConfig.cmake"), "-B", out],
                           capture_output=True, text=True, timeout=600)
        debs = glob.glob(os.path.join(out, "*.deb"))
        if not c.check(r.returncode == 0 and len(debs) == 1, "cpack -G DEB makes one package", r.stdout + r.stderr):
            return c.exit()
        deb = debs[0]
        version = re.search(r"^project\(cerebras-metrics-proxy VERSION (\S+)",
                            open(os.path.join(repo, "CMakeLists.txt")).read(), re.M).group(1)
        c.check(os.path.basename(deb) == f"cerebras-metrics-proxy_{version}_amd64.deb",
                f"file name cerebras-metrics-proxy_{version}_amd64.deb", os.path.basename(deb))

        def field(name):
            return subprocess.run(["dpkg-deb", "-f", deb, name], capture_output=True, text=True).stdout.strip()
        depends = {d.strip().split()[0] for d in field("Depends").split(",") if d.strip()}
        missing = [d for d in WANT_DEPENDS if d not in depends]
        c.check(not missing, "Depends computed from the shared libraries", f"missing {missing} in {sorted(depends)}")
        c.check(any(d.startswith("libspdlog") for d in depends), "Depends has the spdlog library package")
        with tempfile.TemporaryDirectory() as ctl:
            subprocess.run(["dpkg-deb", "-e", deb, ctl], check=True)
            conffiles = open(os.path.join(ctl, "conffiles")).read().split() if os.path.exists(
                os.path.join(ctl, "conffiles")) else []
            c.check(sorted(conffiles) == sorted(CONFFILES), "conffiles", conffiles)
            for s in ("postinst", "prerm", "postrm"):
                p = os.path.join(ctl, s)
                c.check(os.path.exists(p) and os.access(p, os.X_OK), f"maintainer script {s}")
            postinst = open(os.path.join(ctl, "postinst")).read()
            c.check("daemon-reload" in postinst and not re.search(r"\b(enable|start)\b[^\n]*\.service", postinst),
                    "postinst reloads systemd and neither enables nor starts the service")
        listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True).stdout
        for path in ("./usr/bin/cerebras-metrics-proxy", "./lib/systemd/system/cerebras-metrics-proxy.service",
                     "./usr/share/doc/cerebras-metrics-proxy/copyright",
                     # made from --help at build time (help2man)
                     "./usr/share/man/man1/cerebras-metrics-proxy.1.gz"):
            c.check(re.search(rf" {re.escape(path)}$", listing, re.M), f"ships {path[1:]}")
        c.check(not re.search(r" \./usr/etc/", listing), "nothing under /usr/etc")

        r = subprocess.run(["lintian", "--pedantic", deb], capture_output=True, text=True, timeout=600)
        tags = [line for line in r.stdout.splitlines() if re.match(r"^[EWIP]: ", line)]
        print("lintian --pedantic:", "clean" if not tags else "\n  " + "\n  ".join(tags))
        c.check(not [t for t in tags if t[0] in "EW"], "lintian: no error, no warning", "\n".join(tags))

        if os.geteuid() != 0 or not shutil.which("podman"):
            print("SKIP (install part): needs root and podman")
            return c.exit() if c.failed else 77
        require_podman()
        ensure_base_image(repo)
        r = podman("run", "--rm", "-v", f"{out}:/pkg:ro", "-e", f"DEB={os.path.basename(deb)}", BASE_IMAGE,
                   "/bin/bash", "-c", INSTALL, check=False, timeout=900)
        text = r.stdout + r.stderr
        print(text)
        c.check(r.returncode == 0, "apt-get install ./….deb in a fresh container")
        c.check(section(text, "version").startswith("cerebras-metrics-proxy"), "--version runs")
        shipped = section(text, "check-config shipped")
        c.check(shipped.endswith("exit 1") and
                "cerebras-metrics-proxy.yml: upstreams[0].url: organization id \"org_REPLACE_ME\" is a placeholder"
                in shipped, "the shipped placeholder organization id is refused, naming file and key", shipped)
        checked = section(text, "check-config")
        c.check("configuration OK" in checked,
                "--check-config accepts the shipped configuration with an organization id", checked)
        # Warnings that are always there teach people to ignore warnings.
        c.check(section(text, "config mode") == "644" and "warning" not in checked.lower(),
                "no warning on the shipped defaults (config 0644, key from the credential)",
                section(text, "config mode") + "\n" + checked)
        c.check("cerebras-metrics-proxy" not in section(text, "enabled"), "the unit is not enabled on install")
        c.check("verified" in section(text, "verify"), "dpkg --verify")
        c.check(section(text, "purge") == "nothing left", "purge removes every file", section(text, "purge"))
    return c.exit()


if __name__ == "__main__":
    sys.exit(main())
