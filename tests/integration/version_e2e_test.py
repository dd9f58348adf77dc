#!/usr/bin/env python3
"""One version, read from CMakeLists.txt's project(VERSION), is the one a user
sees everywhere: `--version`, cerebras_proxy_build_info on /metrics, the
Debian package (CPack's configuration and packaging/debian/changelog's latest
entry), the image tag of the Kubernetes manifests in deploy/, and the release
images' version label (docker/Dockerfile takes it
from scripts/release.sh, which refuses any other VERSION). The release build
itself checks the built artifacts (tests/release/release_artifacts_test.py).

Run by CMake as
    version_e2e_test.py --daemon ... --mock ... --repo . [unittest args]
"""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def read(*path):
    with open(os.path.join(*path)) as f:
        return f.read()


class VersionE2E(unittest.TestCase):

    def setUp(self):
        self.version = h.project_version()

    def test_packaging_says_the_project_version(self):
        top = read(h.REPO, "packaging/debian/changelog").split("\n", 1)[0]
        self.assertRegex(top, r"^cerebras-metrics-proxy \(%s\) " % re.escape(self.version),
                         "packaging/debian/changelog's latest entry")
        cpack = read(os.path.dirname(h.DAEMON), "CPackConfig.cmake")
        self.assertIn('set(CPACK_PACKAGE_VERSION "%s")' % self.version, cpack)

    def test_binary_and_metric_say_the_project_version(self):
        r = subprocess.run([h.DAEMON, "--version"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^cerebras-metrics-proxy, version %s \(revision: \S+\)" % re.escape(self.version))

        ws = h.Workspace("cmp-version-e2e-")
        mock = h.Mock(ws)
        d = h.Daemon(ws, {"upstreams": [h.upstream_cfg(mock)]})
        d.wait_up(timeout=30)
        body = h.request(d.port).text
        m = re.search(r'^cerebras_proxy_build_info\{version="([^"]*)",revision="([^"]*)"\} 1$', body, re.M)
        self.assertIsNotNone(m, "cerebras_proxy_build_info on /metrics")
        self.assertEqual(m.group(1), self.version)
        self.assertIn("(revision: %s)" % m.group(2), r.stdout, "--version and build_info name one revision")
        d.stop()
        mock.stop()

    def test_release_sh_refuses_another_version(self):
        dist = os.path.join(h.REPO, "dist")
        before = os.path.exists(dist) and os.stat(dist).st_mtime_ns
        for other in ("9.9.9", "v" + self.version, self.version + "-rc1"):
            r = subprocess.run([os.path.join(h.REPO, "scripts/release.sh"), other],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 2, "release.sh %s: %s" % (other, r.stderr))
            self.assertIn("VERSION %s differs from project(VERSION %s)" % (other, self.version), r.stderr)
        self.assertEqual(os.path.exists(dist) and os.stat(dist).st_mtime_ns, before, "dist/ untouched")

    def test_kubernetes_manifests_run_this_version(self):
        for path in ("deploy/kubernetes/standalone/deployment.yaml", "deploy/kubernetes/sidecar/statefulset.yaml"):
            tags = re.findall(r"^\s*image: \S*cerebras-metrics-proxy:(\S+)$", read(h.REPO, path), re.M)
            self.assertEqual(tags, [self.version], path)

    def test_release_images_label_the_version_release_sh_passes(self):
        dockerfile = read(h.REPO, "docker/Dockerfile")
        release = dockerfile.split("AS release", 1)[1].split("\nFROM ", 1)[0]
        self.assertIn('org.opencontainers.image.version="${VERSION}"', release)
        script = read(h.REPO, "scripts/release.sh")
        self.assertIn('--build-arg VERSION="$version"', script)


if __name__ == "__main__":
    h.main()
