#!/usr/bin/env python3
"""End-to-end test of issue 23, item 4: proxy credentials, against a real
proxy. Debian's squid with basic authentication (basic_ncsa_auth and an
htpasswd file made here) stands between the daemon and the HTTPS mock.

  * user:password in proxy_url (percent-encoded: the password has '@', ' '
    and ':') reaches squid as Proxy-Authorization: Basic, and polls succeed;
  * the same credentials in HTTPS_PROXY (no proxy_url) work too;
  * a wrong password is a 407 whose message says that proxy authentication
    failed and points at the credentials in proxy_url; no credentials say
    that the proxy wants some; a certificate the daemon does not trust,
    through a proxy, names ca_file (what a TLS-intercepting proxy causes);
  * neither password appears in any log, page or metric.

Exit 77 (skip) with the reason when squid or its basic_ncsa_auth helper is
missing or squid does not start.

Run by CMake as
    proxy_auth_e2e_test.py --daemon ... --mock ... --repo . [unittest args]
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

INTERVAL = 2.0
USER = "cmpuser"
PASSWORD = "p@ss word:1"       # reserved characters: must be percent-decoded
WRONG = "not-the-password-7731"
NCSA = "/usr/lib/squid/basic_ncsa_auth"


def squid_binary():
    return shutil.which("squid") or ("/usr/sbin/squid" if os.access("/usr/sbin/squid", os.X_OK) else None)


def proxy_url(port, user=None, password=None):
    cred = ""
    if user is not None:
        cred = urllib.parse.quote(user, safe="") + ":" + urllib.parse.quote(password, safe="") + "@"
    return "http://%s127.0.0.1:%d" % (cred, port)


class Squid:
    """squid -N on 127.0.0.1 with basic auth; only CONNECT by an authenticated user passes."""

    def __init__(self, ws):
        self.dir = ws.subdir("squid")
        # Started as root, squid runs as its `proxy` user: it must read the
        # password file and write its logs here.
        os.chmod(ws.dir, 0o711)
        os.chmod(self.dir, 0o777)
        hashed = subprocess.run(["openssl", "passwd", "-apr1", PASSWORD], check=True,
                                capture_output=True, text=True).stdout.strip()
        self.htpasswd = os.path.join(self.dir, "htpasswd")
        with open(self.htpasswd, "w") as f:
            f.write("%s:%s\n" % (USER, hashed))
        os.chmod(self.htpasswd, 0o644)
        self.access_log = os.path.join(self.dir, "access.log")
        self.cache_log = os.path.join(self.dir, "cache.log")
        self.port = h.free_port()
        conf = os.path.join(self.dir, "squid.conf")
        with open(conf, "w") as f:
            f.write("\n".join([
                "http_port 127.0.0.1:%d" % self.port,
                "pid_filename %s/squid.pid" % self.dir,
                "cache_log %s" % self.cache_log,
                "access_log stdio:%s" % self.access_log,
                "coredump_dir %s" % self.dir,
                "cache deny all",
                "cache_mem 8 MB",
                "shutdown_lifetime 1 seconds",
                "auth_param basic program %s %s" % (NCSA, self.htpasswd),
                "auth_param basic realm cmp-e2e",
                "acl authenticated proxy_auth REQUIRED",
                "http_access deny !authenticated",
                "http_access allow CONNECT authenticated",
                "http_access deny all",
                ""]))
        self.stderr_path = os.path.join(self.dir, "stderr")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([squid_binary(), "-N", "-f", conf], stdout=self._stderr,
                                     stderr=self._stderr, stdin=subprocess.DEVNULL)
        h._register(self.proc)

    def wait_ready(self, timeout=30):
        """True once the port accepts connections; False if squid exited."""
        deadline = time.monotonic() + timeout * h.SLOW
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.1)
        return False

    def logs(self):
        out = []
        for p in (self.stderr_path, self.cache_log):
            try:
                with open(p, errors="replace") as f:
                    out.append(f.read()[-2000:])
            except OSError:
                pass
        return "\n".join(out)

    def access_lines(self):
        try:
            with open(self.access_log, errors="replace") as f:
                return f.read().splitlines()
        except OSError:
            return []

    def stop(self):
        h.terminate(self.proc)
        self._stderr.close()


class ProxyAuthE2E(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = h.Workspace("cmp-proxy-auth-e2e-")
        cls.squid = Squid(cls.ws)
        if not cls.squid.wait_ready():
            logs = cls.squid.logs()
            cls.squid.stop()
            print("skip: squid did not start:\n" + logs, file=sys.stderr)
            sys.exit(77)
        cls.mock = h.Mock(cls.ws, window="%ds" % INTERVAL, rate_limit=30, rate_window="10s")
        good = proxy_url(cls.squid.port, USER, PASSWORD)

        def up(name, **kw):
            return h.upstream_cfg(cls.mock, name=name, interval="%ds" % INTERVAL, timeout="1500ms", **kw)

        cls.by_url = h.Daemon(cls.ws, {"upstreams": [up("default", proxy_url=good)]}, log_level="info")
        cls.by_env = h.Daemon(cls.ws, {"upstreams": [up("default")]}, env={"HTTPS_PROXY": good},
                              log_level="info")
        cls.failing = h.Daemon(cls.ws, {"upstreams": [
            up("wrongpw", proxy_url=proxy_url(cls.squid.port, USER, WRONG)),
            up("nocreds", proxy_url=proxy_url(cls.squid.port)),
            up("untrusted", proxy_url=good, ca_file=""),  # the test CA unknown: as behind a TLS-intercepting proxy
        ]}, log_level="info")
        cls.by_url.wait_up(timeout=30)
        cls.by_env.wait_up(timeout=30)

        def failed_twice():
            s = cls.failing.metrics()
            return all(h.total(s, "cerebras_proxy_upstream_requests_total", upstream=n) >= 2
                       for n in ("wrongpw", "nocreds", "untrusted"))
        h.wait_until(failed_twice, 15 * INTERVAL, "two failed polls of each failing upstream")

    @classmethod
    def tearDownClass(cls):
        for d in (cls.by_url, cls.by_env, cls.failing):
            d.stop()
        cls.mock.stop()
        cls.squid.stop()

    def test_credentials_in_proxy_url_are_sent_and_polls_succeed(self):
        # squid writes a tunnel's line when it closes, after the daemon has its answer.
        def authenticated_tunnel():
            return any("TCP_TUNNEL/200 " in l and " CONNECT 127.0.0.1:%d %s " % (self.mock.port, USER) in l
                       for l in self.squid.access_lines())
        h.wait_until(authenticated_tunnel, 10, "an authenticated CONNECT in squid's access.log")
        self.assertGreaterEqual(self.by_url.requests_total("default", 200), 1)
        self.assertIn("first snapshot", self.by_url.log_text())

    def test_credentials_in_https_proxy_are_sent_too(self):
        self.assertGreaterEqual(self.by_env.requests_total("default", 200), 1)
        self.assertEqual(self.by_env.self_value("cerebras_proxy_upstream_up", upstream="default"), 1)

    def test_a_wrong_password_is_a_407_that_says_so(self):
        h.wait_until(lambda: any("TCP_DENIED/407" in l for l in self.squid.access_lines()), 10,
                     "a 407 in squid's access.log")
        s = self.failing.metrics()
        self.assertGreaterEqual(h.total(s, "cerebras_proxy_upstream_requests_total", upstream="wrongpw",
                                        code="connect"), 2)
        self.assertEqual(h.value(s, "cerebras_proxy_upstream_up", upstream="wrongpw"), 0)
        lines = [l for l in self.failing.log_text().splitlines() if "upstream=wrongpw" in l]
        self.assertEqual(len(lines), 1, "once, not per poll: %r" % lines)
        self.assertIn("proxy authentication failed", lines[0])
        self.assertIn("check the credentials in proxy_url", lines[0])
        self.assertIn("HTTP 407", lines[0])
        page = self.failing.get("/").text
        self.assertIn("proxy authentication failed", page)

    def test_missing_credentials_say_where_they_go(self):
        lines = [l for l in self.failing.log_text().splitlines() if "upstream=nocreds" in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("requires authentication (HTTP 407)", lines[0])
        self.assertIn("put the credentials into proxy_url", lines[0])

    def test_an_untrusted_certificate_through_a_proxy_names_ca_file(self):
        lines = [l for l in self.failing.log_text().splitlines() if "upstream=untrusted" in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("TLS certificate verification failed", lines[0])
        self.assertIn("through proxy 127.0.0.1:%d" % self.squid.port, lines[0])
        self.assertIn("ca_file", lines[0])

    def test_no_password_anywhere(self):
        for d in (self.by_url, self.by_env, self.failing):
            d.get("/")
            d.metrics_text()
        for secret in (PASSWORD, WRONG, urllib.parse.quote(PASSWORD, safe=""), h.API_KEY):
            self.assertEqual(h.secret_hits(secret), [], secret)


if __name__ == "__main__":
    rest = h.parse_args()
    if squid_binary() is None or not os.access(NCSA, os.X_OK):
        print("skip: squid or %s is missing (apt-get install squid)" % NCSA, file=sys.stderr)
        sys.exit(77)
    unittest.main(argv=[sys.argv[0]] + rest)
