#!/usr/bin/env python3
"""/metrics with ~100 KB per organization, checked on the wire: the
prepared bytes (plain, and gzipped whole) in one scatter write. Stdlib only;
run by CMake as

    large_body_e2e_test.py --daemon build/cerebras-metrics-proxy \
        --mock build/cerebras-mock-upstream --repo . [unittest args]

What a user would notice if it broke: bodies that differ between the plain
and the gzip answers, a truncated body for a slow scraper, a daemon that
hangs on a scraper that stops reading.
"""

import gzip
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

OM_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def raw_get(port, path, rcvbuf=4096, chunk=4096, pause=0.0005, timeout=30):
    """One GET over a socket with a small receive window, read slowly;
    returns (head, body) once Content-Length bytes arrived."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout * h.SLOW)
    s.connect(("127.0.0.1", port))
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = s.recv(chunk)
            if not data:
                raise AssertionError("closed before the head: %r" % buf)
            buf += data
        head, _, body = buf.partition(b"\r\n\r\n")
        length = None
        for line in head.decode().split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        while len(body) < length:
            time.sleep(pause)
            data = s.recv(chunk)
            if not data:
                raise AssertionError("closed after %d of %d bytes" % (len(body), length))
            body += data
        return head.decode(), body
    finally:
        s.close()


class LargeBodyE2E(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = h.Workspace("cmp-large-body-e2e-")
        # 32 endpoints: ~100 KB of text, more than one write's worth of the
        # socket's first buffer. A long window: the snapshot stays the same while the tests compare.
        cls.mock = h.Mock(cls.ws, window="60s", endpoints=32)
        cfg = {"log": {"level": "debug", "format": "logfmt"},
               "upstreams": [h.upstream_cfg(cls.mock, name="org1", interval="60s", offset="0s",
                                            timeout="5s")]}
        cls.daemon = h.Daemon(cls.ws, cfg)
        cls.daemon.wait_up(upstream="org1", timeout=30)
        h.wait_until(lambda: "org1" in h.request(cls.daemon.port, path="/metrics").text
                     and h.request(cls.daemon.port, path="/metrics?upstream=org1").body,
                     timeout=30, what="first snapshot")

    @classmethod
    def tearDownClass(cls):
        rc = cls.daemon.stop()
        cls.mock.stop()
        assert rc == 0, "daemon exit code %r:\n%s" % (rc, cls.daemon.log_text()[-3000:])

    def get(self, path, accept=None, gz=False):
        headers = {}
        if accept:
            headers["Accept"] = accept
        if gz:
            headers["Accept-Encoding"] = "gzip"
        r = h.request(self.daemon.port, path=path, headers=headers)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(int(r.headers["content-length"]), len(r.body))
        if gz:
            self.assertEqual(r.headers.get("content-encoding"), "gzip")
            return gzip.decompress(r.body)
        self.assertNotIn("content-encoding", r.headers)
        return r.body

    def test_plain_bodies_are_the_bytes_the_gzip_path_sends(self):
        for accept in (None, OM_ACCEPT):
            own_plain = self.get("/metrics?upstream=org1", accept)
            own_gz = self.get("/metrics?upstream=org1", accept, gz=True)
            self.assertGreater(len(own_plain), 64 * 1024)
            self.assertEqual(own_plain, own_gz, accept)
            h.parse_prom(own_plain.decode(), openmetrics=accept is not None)
            # The whole view: the same series, then the self-metrics.
            whole = self.get("/metrics", accept)
            self.assertTrue(whole.startswith(own_plain if accept is None
                                             else own_plain[:-len(b"# EOF\n")]), accept)
            self.assertIn(b"cerebras_proxy_build_info", whole[len(own_plain) - 6:])
            whole_gz = self.get("/metrics", accept, gz=True)
            self.assertEqual(h.upstream_part(whole_gz.decode()), h.upstream_part(whole.decode()), accept)

    def test_a_slow_reader_gets_the_whole_body(self):
        want = self.get("/metrics?upstream=org1")
        head, body = raw_get(self.daemon.port, "/metrics?upstream=org1")
        self.assertTrue(head.startswith("HTTP/1.1 200 OK"), head)
        self.assertEqual(body, want)
        head, body = raw_get(self.daemon.port, "/metrics")
        self.assertTrue(body.startswith(want))

    def test_a_scraper_that_stops_reading_does_not_stop_the_others(self):
        stuck = []
        for _ in range(4):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", self.daemon.port))
            # Pipelined requests it never reads: more than the buffers hold.
            s.sendall(b"GET /metrics?upstream=org1 HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
            stuck.append(s)
        try:
            want = self.get("/metrics?upstream=org1", gz=True)
            for _ in range(5):
                self.assertEqual(self.get("/metrics?upstream=org1"), want)
            self.assertEqual(h.request(self.daemon.port, path="/-/healthy").status, 200)
        finally:
            for s in stuck:
                s.close()


if __name__ == "__main__":
    h.main()
