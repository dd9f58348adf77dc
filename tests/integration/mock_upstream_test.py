#!/usr/bin/env python3
"""Integration test of cerebras-mock-upstream (stdlib only).

    python3 mock_upstream_test.py --mock build/cerebras-mock-upstream [unittest args]

Starts the mock over TLS (a CA made by make_test_ca.sh) on port 0 with
--port-file, and checks what the daemon's tests rely on: auth, the body shape
and values (recomputed here from the documented formula), /mock/window, gzip,
the budget, faults set through the control endpoint, the request log and
clean exit codes.
"""

import argparse
import atexit
import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
MOCK = None
CA_DIR = None
KEY = "test-key-0123"
ORG = "org_abc123"
API = "/api/v1/metrics/organizations/" + ORG

# The value formula (tools/mock_upstream/README.md) is the one the daemon
# suites check against; one copy of it lives in harness.py.
sys.path.insert(0, HERE)
from harness import FAMILIES, LATENCY, STATS, endpoint_name, u  # noqa: E402


def fmt(v):
    s = repr(float(v))
    assert "e" not in s and "." in s, s
    return s


def expected_samples(w, endpoints, down=0, label="statistic"):
    """The sample lines of window w, in order."""
    rows = {f: [] for f in FAMILIES}
    for e in range(endpoints):
        ep = 'endpoint="%s",organization_id="%s"' % (endpoint_name(e), ORG)
        s, f429, f500 = 100 + u(w, e, 0), u(w, e, 1) % 5, u(w, e, 2) % 3
        c = s + f429 + f500
        rows["inference_endpoint_status"].append((ep, -1 if e >= endpoints - down else 1))
        rows["requests_count_total"].append((ep, c))
        rows["requests_success_total"].append((ep, s))
        rows["requests_failure_total"].append((ep + ',http_code="429"', f429))
        rows["requests_failure_total"].append((ep + ',http_code="500"', f500))
        rows["input_tokens_total"].append((ep, c * (200 + u(w, e, 3))))
        rows["output_tokens_total"].append((ep, c * (50 + u(w, e, 4) % 200)))
        rows["cache_rate"].append((ep, u(w, e, 5) / 1000))
        for f, (name, lo, span) in enumerate(LATENCY):
            p50 = lo + u(w, e, 10 + f) % span
            for stat, ms in zip(STATS, [p50 * 3 // 2, p50, 2 * p50, 3 * p50, 5 * p50]):
                rows[name].append((ep + ',%s="%s"' % (label, stat), ms / 1000))
    return ["%s{%s} %s" % (fam, labels, fmt(v)) for fam in FAMILIES for labels, v in rows[fam]]


# ---- process and HTTP helpers ----
class Mock:
    def __init__(self, *extra, tls=True):
        self.dir = tempfile.mkdtemp(prefix="mock-upstream-test-")
        self.port_file = os.path.join(self.dir, "port")
        self.log = os.path.join(self.dir, "requests.jsonl")
        self.stderr_path = os.path.join(self.dir, "stderr")
        args = [MOCK, "--api-key", KEY, "--listen", "127.0.0.1:0", "--port-file", self.port_file,
                "--request-log", self.log] + list(extra)
        if tls:
            args += ["--tls-cert", os.path.join(CA_DIR, "server.pem"),
                     "--tls-key", os.path.join(CA_DIR, "server.key")]
        self.tls = tls
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mock did not start: " + self.stderr_text())
            time.sleep(0.02)
        with open(self.port_file) as f:
            self.port = int(f.read())
        self.ctx = ssl.create_default_context(cafile=os.path.join(CA_DIR, "ca.pem"))

    def stderr_text(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=5)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if not self.stderr.closed:
                self.stderr.close()
                shutil.rmtree(self.dir, ignore_errors=True)
        return rc

    def request(self, path, method="GET", headers=None, timeout=5, key=KEY):
        """One request on a fresh connection, as the daemon makes them."""
        if self.tls:
            conn = http.client.HTTPSConnection("localhost", self.port, timeout=timeout,
                                               context=self.ctx)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        hdrs = dict(headers or {})
        if key is not None and path.startswith("/api/"):
            hdrs["Authorization"] = "Bearer " + key
        try:
            conn.request(method, path, headers=hdrs)
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, resp.headers, body
        finally:
            conn.close()

    def control(self, path, method="POST"):
        status, _, body = self.request(path, method=method)
        if status != 200:
            raise AssertionError("%s %s -> %d %s" % (method, path, status, body))
        return json.loads(body)

    def log_lines(self):
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]


def sample_lines(body):
    return [line for line in body.split("\n") if line and not line.startswith("#")]


class ApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock("--rate-limit", "0", "--endpoints", "3")

    @classmethod
    def tearDownClass(cls):
        rc = cls.mock.stop()
        if rc != 0:
            raise AssertionError("mock exited %d after SIGTERM" % rc)

    def test_auth(self):
        for key in (None, "wrong-key"):
            status, headers, body = self.mock.request(API, key=key)
            self.assertEqual(status, 401)
            self.assertEqual(json.loads(body)["code"], "wrong_api_key")
        status, _, body = self.mock.request("/api/v1/metrics/organizations/org_other")
        self.assertEqual(status, 404)
        self.assertEqual(json.loads(body)["code"], "organization_not_found")
        status, _, _ = self.mock.request(API)
        self.assertEqual(status, 200)
        self.assertNotIn(KEY, self.mock.stderr_text())

    def test_body_shape(self):
        status, headers, raw = self.mock.request(API)
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        body = raw.decode()
        self.assertTrue(body.endswith("\n") and not body.endswith("\n\n"))
        blocks = body.rstrip("\n").split("\n\n")
        self.assertEqual([b.split("\n")[1] for b in blocks],
                         ["# TYPE %s gauge" % f for f in FAMILIES])
        for fam, block in zip(FAMILIES, blocks):
            lines = block.split("\n")
            self.assertTrue(lines[0].startswith("# HELP %s " % fam))
            for line in lines[2:]:
                self.assertRegex(line, r'^%s\{endpoint="[^"]+",organization_id="%s"'
                                 r'(,(http_code|statistic)="[^"]+")?\} -?\d+\.\d+$' % (fam, ORG))
        self.assertEqual(body.count('statistic="p99"'), 4 * 3)
        self.assertNotIn("percentile=", body)

    def test_window_matches_api_and_formula(self):
        status, _, raw = self.mock.request(API)
        self.assertEqual(status, 200)
        w = self.mock.log_lines()[-1]["window"]
        expected = self.mock.control("/mock/expected", method="GET")
        self.assertIn(expected["window"], (w, w + 1))
        self.assertEqual(expected["window_seconds"], 60)
        status, _, window_body = self.mock.request("/mock/window/%d" % w)
        self.assertEqual(status, 200)
        self.assertEqual(window_body, raw)
        self.assertEqual(sample_lines(raw.decode()), expected_samples(w, 3))
        # Another window differs, and is what the formula says.
        _, _, other = self.mock.request("/mock/window/%d" % (w + 1))
        self.assertNotEqual(other, raw)
        self.assertEqual(sample_lines(other.decode()), expected_samples(w + 1, 3))

    def test_gzip(self):
        status, headers, raw = self.mock.request(API, headers={"Accept-Encoding": "gzip"})
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Encoding"], "gzip")
        w = self.mock.log_lines()[-1]["window"]
        self.assertEqual(self.mock.log_lines()[-1]["accept_encoding"], "gzip")
        _, _, plain = self.mock.request("/mock/window/%d" % w)
        self.assertEqual(gzip.decompress(raw), plain)

    def test_faults_via_control_endpoint(self):
        self.mock.control("/mock/fault/clear")
        self.mock.control("/mock/fault?kind=503&count=2")
        self.mock.control("/mock/fault?kind=429&retry_after=7&should_retry=false")
        self.mock.control("/mock/fault?kind=429&retry_after_format=http-date")
        self.mock.control("/mock/fault?kind=redirect")
        self.mock.control("/mock/fault?kind=malformed")
        self.mock.control("/mock/fault?kind=latency&delay=300ms")
        self.assertEqual(len(self.mock.control("/mock/faults", method="GET")["faults"]), 6)
        self.assertEqual([self.mock.request(API)[0] for _ in range(2)], [503, 503])
        status, headers, _ = self.mock.request(API)
        self.assertEqual((status, headers["Retry-After"], headers["x-should-retry"]),
                         (429, "7", "false"))
        status, headers, _ = self.mock.request(API)
        self.assertEqual(status, 429)
        self.assertRegex(headers["Retry-After"], r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$")
        status, headers, _ = self.mock.request(API)
        self.assertEqual((status, headers["Location"]), (302, "/moved"))
        status, _, body = self.mock.request(API)
        self.assertEqual(status, 200)
        self.assertIn(b"not Prometheus", body)
        start = time.monotonic()
        status, _, _ = self.mock.request(API)
        self.assertEqual(status, 200)
        self.assertGreaterEqual(time.monotonic() - start, 0.29)
        self.assertEqual(self.mock.request(API)[0], 200)  # queue drained

        self.mock.control("/mock/fault?kind=truncated")
        with self.assertRaises(http.client.IncompleteRead):
            self.mock.request(API)
        self.mock.control("/mock/fault?kind=reset")
        with self.assertRaises((ConnectionResetError, http.client.RemoteDisconnected,
                                ssl.SSLError)):
            self.mock.request(API)
        self.mock.control("/mock/fault?kind=stall")
        with self.assertRaises((TimeoutError, socket.timeout)):
            self.mock.request(API, timeout=0.5)
        self.mock.control("/mock/fault?kind=500&windows=1")
        self.assertEqual([self.mock.request(API)[0] for _ in range(3)], [500, 500, 500])
        self.mock.control("/mock/fault/clear")
        self.assertEqual(self.mock.request(API)[0], 200)
        status, _, body = self.mock.request("/mock/fault?kind=bogus", method="POST")
        self.assertEqual(status, 400)

        labels = [line["fault"] for line in self.mock.log_lines()]
        for kind in ("503", "429", "redirect", "malformed", "latency", "truncated", "reset",
                     "stall", "500"):
            self.assertIn(kind, labels)
        stall = [line for line in self.mock.log_lines() if line["fault"] == "stall"]
        self.assertEqual(stall[-1]["status"], 0)

    def test_request_log(self):
        self.mock.request(API, key="nope")
        self.mock.request(API)
        lines = self.mock.log_lines()
        for line in lines:
            self.assertEqual(set(line), {"t", "method", "path", "status", "window", "fault",
                                         "over_budget", "auth", "accept_encoding"})
            self.assertTrue(line["path"].startswith("/api/"))  # control requests not logged
            self.assertLess(abs(line["t"] - time.time()), 60)
        self.assertEqual((lines[-2]["status"], lines[-2]["auth"]), (401, False))
        self.assertEqual((lines[-1]["status"], lines[-1]["auth"], lines[-1]["fault"],
                          lines[-1]["over_budget"]), (200, True, "none", False))


class BudgetTest(unittest.TestCase):
    def test_sliding_budget(self):
        mock = Mock("--rate-limit", "3", "--rate-window", "2s", "--window", "10s",
                    "--latency-label", "percentile", "--fault", "500:1")
        try:
            self.assertEqual(mock.request(API, key="bad")[0], 401)  # does not count
            self.assertEqual([mock.request(API)[0] for _ in range(3)], [500, 200, 200])
            start = time.monotonic()
            status, headers, body = mock.request(API)
            self.assertEqual(status, 429)
            self.assertEqual(json.loads(body)["code"], "request_quota_exceeded")
            retry_after = int(headers["Retry-After"])
            self.assertIn(retry_after, (1, 2))
            self.assertEqual(headers["x-ratelimit-remaining-requests"], "0")
            self.assertEqual(mock.request(API)[0], 429)
            time.sleep(max(0.0, retry_after + 0.2 - (time.monotonic() - start)))
            status, _, body = mock.request(API)
            self.assertEqual(status, 200)
            self.assertIn(b'percentile="p95"', body)
            self.assertNotIn(b"statistic=", body)
            w = mock.log_lines()[-1]["window"]
            self.assertEqual(sample_lines(body.decode()),
                             expected_samples(w, 2, label="percentile"))
            lines = mock.log_lines()
            self.assertEqual([(l["status"], l["over_budget"]) for l in lines],
                             [(401, False), (500, False), (200, False), (200, False),
                              (429, True), (429, True), (200, False)])
            self.assertEqual(mock.control("/mock/expected", method="GET")["window_seconds"], 10)
        finally:
            self.assertEqual(mock.stop(), 0)


class ProcessTest(unittest.TestCase):
    def test_bad_flags_exit_1(self):
        for args in (["--bogus"], ["--api-key", "k", "--window", "soon"],
                     ["--api-key", "k", "--tls-cert", "/nonexistent.pem"],
                     ["--api-key", "k", "--fault", "explode:1"]):
            r = subprocess.run([MOCK] + args, capture_output=True, timeout=10)
            self.assertEqual(r.returncode, 1, args)
            self.assertTrue(r.stderr)

    def test_bind_failure_exit_2(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            r = subprocess.run([MOCK, "--api-key", "k", "--listen",
                                "127.0.0.1:%d" % s.getsockname()[1]],
                               capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 2)

    def test_plain_http_and_many_endpoints(self):
        mock = Mock("--endpoints", "20", "--down-endpoints", "2", "--rate-limit", "0", tls=False)
        try:
            status, _, body = mock.request(API)
            self.assertEqual(status, 200)
            w = mock.log_lines()[-1]["window"]
            self.assertEqual(sample_lines(body.decode()), expected_samples(w, 20, down=2))
            self.assertTrue(b'endpoint="model-19-gpt-oss-120b"' in body)
        finally:
            self.assertEqual(mock.stop(), 0)

    def test_sigterm_with_stalled_client_exits_0(self):
        mock = Mock("--fault", "stall:1")
        try:
            with self.assertRaises((TimeoutError, socket.timeout)):
                mock.request(API, timeout=0.3)
            with socket.create_connection(("127.0.0.1", mock.port)):  # idle connection
                start = time.monotonic()
                self.assertEqual(mock.stop(), 0)
                self.assertLess(time.monotonic() - start, 5)
        finally:
            mock.stop()


def main():
    global MOCK, CA_DIR
    parser = argparse.ArgumentParser()
    parser.add_argument("--mock", required=True, help="path to cerebras-mock-upstream")
    args, rest = parser.parse_known_args()
    MOCK = os.path.abspath(args.mock)
    CA_DIR = tempfile.mkdtemp(prefix="mock-upstream-ca-")
    atexit.register(shutil.rmtree, CA_DIR, True)
    subprocess.run([os.path.join(HERE, "make_test_ca.sh"), CA_DIR], check=True)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
