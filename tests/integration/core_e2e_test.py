#!/usr/bin/env python3
"""End-to-end test of issue 2 ("Done means"): the daemon polls the mock
upstream over HTTPS under its budget and re-serves the snapshot to many
scrapers. Stdlib only; run by CMake as

    core_e2e_test.py --daemon build/cerebras-metrics-proxy \
        --mock build/cerebras-mock-upstream --repo . [unittest args]
"""

import email.utils
import gzip
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

INTERVAL = 2.0          # poll_interval == the mock's window
BUDGET, BUDGET_WINDOW = 6, 10.0   # 5 polls per window + the first: at the limit with the margin
EXTRA = {"env": "e2e", "team": "core"}
OM_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TOTAL_LINT = 'non-counter metrics should not have "_total" suffix'


def strip_extra(samples, extra=EXTRA):
    """{(name, frozenset(labels without the extra labels)): value} of upstream samples."""
    out = {}
    for s in samples:
        if s.name.startswith("cerebras_proxy_") or s.name.startswith("process_"):
            continue
        labels = dict(s.labels)
        for k, v in extra.items():
            if labels.get(k) != v:
                raise AssertionError("extra label %s=%s missing on %r" % (k, v, s))
            del labels[k]
        key = (s.name, frozenset(labels.items()))
        if key in out:
            raise AssertionError("duplicate series %r" % (key,))
        out[key] = s.value
    return out


def matching_window(values, windows, endpoints=2):
    for w in sorted(windows, reverse=True):
        if h.expected_values(w, endpoints) == values:
            return w
    return None


class CoreE2E(unittest.TestCase):
    """One mock + one daemon shared by the tests of this class."""

    @classmethod
    def setUpClass(cls):
        cls.ws = h.Workspace("cmp-core-e2e-")
        cls.mock = h.Mock(cls.ws, window="%ds" % INTERVAL, rate_limit=BUDGET,
                          rate_window="%ds" % BUDGET_WINDOW)
        cfg = {"log": {"level": "debug", "format": "logfmt"},
               "upstreams": [h.upstream_cfg(cls.mock, interval="%ds" % INTERVAL, offset="300ms",
                                            timeout="1s", requests=BUDGET,
                                            window="%ds" % BUDGET_WINDOW, extra_labels=EXTRA)]}
        cls.daemon = h.Daemon(cls.ws, cfg)
        cls.daemon.wait_up(timeout=30)

    @classmethod
    def tearDownClass(cls):
        rc = cls.daemon.stop()
        cls.mock.stop()
        assert rc == 0, "daemon exit code %r:\n%s" % (rc, cls.daemon.log_text()[-3000:])

    # -- the load test: 200 keep-alive scrapers for 10 s while the daemon polls
    def test_01_concurrent_scrapers_and_budget(self):
        n_threads, duration = 200, 10.0
        stop_at = time.monotonic() + duration * h.SLOW
        lock = threading.Lock()
        bodies = {}            # sha256 of the upstream part -> (first body, last-modified)
        counts = {"ok": 0, "bad": 0, "errors": []}
        start_barrier = threading.Barrier(n_threads + 1, timeout=60 * h.SLOW)

        def scraper(i):
            conn = None
            ok = bad = 0
            errors = []
            try:
                start_barrier.wait()
            except threading.BrokenBarrierError:
                pass
            while time.monotonic() < stop_at:
                try:
                    if conn is None:
                        conn = h.httpclient.HTTPConnection("127.0.0.1", self.daemon.port,
                                                           timeout=30 * h.SLOW)
                    conn.request("GET", "/metrics",
                                 headers={"Accept-Encoding": "gzip"} if i % 4 == 0 else {})
                    r = conn.getresponse()
                    body = r.read()
                    if r.status != 200:
                        bad += 1
                        errors.append("status %d" % r.status)
                        continue
                    if r.getheader("Content-Encoding") == "gzip":
                        body = gzip.decompress(body)
                    text = body.decode("utf-8")
                    h.parse_prom(text)          # every scrape parses (raises otherwise)
                    key = hashlib.sha256(h.upstream_part(text).encode()).digest()
                    if key not in bodies:
                        with lock:
                            bodies.setdefault(key, (text, r.getheader("Last-Modified")))
                    ok += 1
                    if r.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                except Exception as e:  # noqa: BLE001 - every failure counts
                    bad += 1
                    errors.append(repr(e))
                    if conn is not None:
                        conn.close()
                    conn = None
                    time.sleep(0.05)
            if conn is not None:
                conn.close()
            with lock:
                counts["ok"] += ok
                counts["bad"] += bad
                counts["errors"].extend(errors[:3])

        threads = [threading.Thread(target=scraper, args=(i,), daemon=True) for i in range(n_threads)]
        for t in threads:
            t.start()
        start_barrier.wait()
        for t in threads:
            t.join(timeout=duration * h.SLOW + 120)
        self.assertFalse(any(t.is_alive() for t in threads), "scrapers hung")
        self.assertEqual(counts["bad"], 0, "failed scrapes: %r" % counts["errors"][:10])
        self.assertGreater(counts["ok"], n_threads, "too few scrapes")

        reqs = self.mock.api_requests()
        ok_windows = {r["window"] for r in reqs if r["status"] == 200}
        # Every distinct body is parseable; the upstream samples of each
        # distinct snapshot equal the mock's values for a window it served.
        for text, lm in bodies.values():
            h.remember("load body", text)
            vals = strip_extra(h.parse_prom(text))
            self.assertTrue(vals, "no upstream samples in a scrape")
            self.assertIsNotNone(matching_window(vals, ok_windows),
                                 "scrape values match no window the mock served (%s)" % lm)
        self.assertGreaterEqual(len(bodies), 3, "the snapshot never changed during the load")
        if os.environ.get("E2E_VERBOSE"):
            print("\n%d scrapes, %d distinct snapshots" % (counts["ok"], len(bodies)),
                  file=sys.stderr)

        # Scrapes never reach the upstream: about one request per poll window.
        self.assert_budget_and_one_per_window()
        # The self-metrics may be up to 1 s old (INTERFACE.md): the count
        # catches up with the scrapes within that.
        h.wait_until(lambda: h.value(self.daemon.metrics(), "cerebras_proxy_scrapes_total", code="200")
                     >= counts["ok"], timeout=10, what="every scrape counted")

    def assert_budget_and_one_per_window(self):
        reqs = self.mock.api_requests()
        self.assertGreaterEqual(len(reqs), 5, reqs)
        self.assertLessEqual(h.max_in_window([r["t"] for r in reqs], BUDGET_WINDOW), BUDGET)
        self.assertEqual([r for r in reqs if r["status"] != 200], [], "non-200 answers")
        self.assertFalse(any(r["over_budget"] for r in reqs))
        windows = [r["window"] for r in reqs]
        # After the first request (at start, outside the schedule): exactly one
        # request per poll window, none skipped, none repeated.
        later = windows[1:]
        self.assertEqual(later, list(range(later[0], later[0] + len(later))),
                         "not exactly one request per window: %r" % windows)
        for r in reqs[1:]:
            self.assertEqual(r["accept_encoding"], "gzip", r)

    def test_02_values_equal_mock_window(self):
        def matches():
            r = self.daemon.get("/metrics")
            self.assertEqual(r.status, 200)
            vals = strip_extra(h.parse_prom(r.text))
            reqs = [q for q in self.mock.api_requests() if q["status"] == 200]
            last_two = [q["window"] for q in reqs[-2:]]
            for w in last_two:
                body = h.parse_prom(self.mock.window_body(w))
                mock_vals = {(s.name, frozenset(s.labels.items())): s.value for s in body}
                if vals == mock_vals:
                    # ...and the documented formula agrees with the mock.
                    self.assertEqual(vals, h.expected_values(w))
                    return (r, w, reqs)
            return None
        r, w, reqs = h.wait_until(matches, 20, "/metrics equal to the last window the mock served")
        # Last-Modified is the fetch time of that window's request.
        lm = email.utils.parsedate_to_datetime(r.headers["last-modified"]).timestamp()
        t = max(q["t"] for q in reqs if q["window"] == w)
        self.assertLessEqual(abs(lm - t), 3.0, (lm, t))
        age = int(r.headers["age"])
        self.assertGreaterEqual(age, 0)
        self.assertLessEqual(age, 60)
        self.assertEqual(r.headers["content-type"], TEXT_TYPE)

        # last_success is the fetch time of the snapshot served. Views are
        # rendered off the I/O thread, so for one render (~100 ms) after a
        # poll the self-metrics already show the new fetch while the body is
        # still the previous one: the two must agree once that render is in.
        def agree():
            r2 = self.daemon.get("/metrics")
            lm2 = email.utils.parsedate_to_datetime(r2.headers["last-modified"]).timestamp()
            ls2 = h.value(h.parse_prom(r2.text), "cerebras_proxy_upstream_last_success_timestamp_seconds",
                          upstream="default")
            return (ls2, lm2) if abs(ls2 - lm2) <= 2.0 else None
        h.wait_until(agree, 5, "last_success equal to the served snapshot's Last-Modified")

    def test_03_openmetrics(self):
        r = self.daemon.get("/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], OM_TYPE)
        self.assertTrue(r.text.endswith("# EOF\n"), r.text[-200:])
        samples = h.parse_prom(r.text, openmetrics=True)
        vals = strip_extra(samples)
        reqs = self.mock.api_requests()
        self.assertIsNotNone(matching_window(vals, {q["window"] for q in reqs}))
        # Prometheus's own Accept header also selects OpenMetrics.
        prom_accept = ("application/openmetrics-text;version=1.0.0;q=0.5,"
                       "application/openmetrics-text;version=0.0.1;q=0.4,"
                       "text/plain;version=0.0.4;q=0.3,*/*;q=0.2")
        r2 = self.daemon.get("/metrics", {"Accept": prom_accept})
        self.assertEqual(r2.headers["content-type"], OM_TYPE)
        # Plain text without the header.
        r3 = self.daemon.get("/metrics", {"Accept": "text/plain"})
        self.assertEqual(r3.headers["content-type"], TEXT_TYPE)
        self.assertNotIn("# EOF", r3.text)

    def test_04_gzip(self):
        def same():
            plain1 = self.daemon.get("/metrics")
            gz = self.daemon.get("/metrics", {"Accept-Encoding": "gzip"})
            plain2 = self.daemon.get("/metrics")
            self.assertEqual(gz.status, 200)
            self.assertEqual(gz.headers.get("content-encoding"), "gzip")
            self.assertNotIn("content-encoding", plain1.headers)
            decoded = gzip.decompress(gz.body).decode()
            h.parse_prom(decoded)
            up = h.upstream_part(decoded)
            return up in (h.upstream_part(plain1.text), h.upstream_part(plain2.text)) and up
        self.assertTrue(h.wait_until(same, 20, "gzip body equal to the plain one"))
        # OpenMetrics + gzip
        r = self.daemon.get("/metrics", {"Accept-Encoding": "gzip, deflate",
                                         "Accept": "application/openmetrics-text"})
        self.assertEqual(r.headers.get("content-encoding"), "gzip")
        self.assertTrue(gzip.decompress(r.body).decode().endswith("# EOF\n"))
        self.assertIn("Accept-Encoding", r.headers.get("vary", ""))

    def test_05_head(self):
        g = self.daemon.get("/metrics")
        r = self.daemon.get("/metrics", method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.headers["content-type"], TEXT_TYPE)
        self.assertIn("last-modified", r.headers)
        self.assertIn("age", r.headers)
        if "content-length" in r.headers:
            # Self-metrics change between the two requests; the size is close.
            self.assertLess(abs(int(r.headers["content-length"]) - len(g.body)), 2000)
        for path in ("/-/healthy", "/-/ready", "/"):
            self.assertEqual(self.daemon.get(path, method="HEAD").status, 200, path)

    def test_06_promtool(self):
        tool = h.promtool()
        if tool is None:
            self.skipTest("promtool not installed")
        # promtool reads the text format only (OpenMetrics HELP lines name the
        # family without `_total`, which it would report as missing help).
        for accept in ({}, {"Accept": "text/plain; version=0.0.4"}):
            text = self.daemon.metrics_text(accept)
            p = subprocess.run([tool, "check", "metrics"], input=text.encode(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            out = (p.stdout + p.stderr).decode()
            problems = [line for line in out.splitlines()
                        if line.strip() and TOTAL_LINT not in line]
            self.assertEqual(problems, [], "promtool (%s): %s" % (accept, out))
            if p.returncode != 0:
                # Only the _total lint on the upstream's own gauges is tolerated.
                for line in out.splitlines():
                    if TOTAL_LINT in line:
                        name = line.split()[0]
                        self.assertFalse(name.startswith("cerebras_proxy_"), line)

    def test_07_endpoints(self):
        d = self.daemon
        for path in ("/-/healthy", "/healthz"):
            r = d.get(path)
            self.assertEqual((r.status, r.body), (200, b"ok\n"), path)
        for path in ("/-/ready", "/readyz"):
            r = d.get(path)
            self.assertEqual(r.status, 200, (path, r))
        r = d.get("/")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/html"))
        for needle in ("default", "/metrics", "/-/ready"):
            self.assertIn(needle, r.text)
        self.assertEqual(d.get("/nope").status, 404)
        self.assertEqual(d.get("/metrics/extra").status, 404)
        for method in ("POST", "PUT", "DELETE"):
            r = d.get("/metrics", method=method)
            self.assertEqual(r.status, 405, method)
            allow = {a.strip() for a in r.headers.get("allow", "").split(",")}
            self.assertIn("GET", allow)
            self.assertIn("HEAD", allow)
        r = d.get("/-/healthy", method="POST")
        self.assertEqual(r.status, 405)
        self.assertIn("allow", r.headers)
        # Without --web.enable-lifecycle the reload endpoint is forbidden.
        self.assertEqual(d.get("/-/reload", method="POST").status, 403)
        r = d.get("/-/reload")
        self.assertEqual(r.status, 405)
        self.assertIn("POST", r.headers.get("allow", ""))

    def test_08_self_metrics(self):
        s = self.daemon.metrics()
        fams = h.families(self.daemon.metrics_text())
        for name, typ in [("cerebras_proxy_upstream_requests_total", "counter"),
                          ("cerebras_proxy_upstream_up", "gauge"),
                          ("cerebras_proxy_upstream_last_success_timestamp_seconds", "gauge"),
                          ("cerebras_proxy_snapshot_age_seconds", "gauge"),
                          ("cerebras_proxy_upstream_request_duration_seconds", "histogram"),
                          ("cerebras_proxy_upstream_parse_errors_total", "counter"),
                          ("cerebras_proxy_rate_limit_remaining", "gauge"),
                          ("cerebras_proxy_scrapes_total", "counter"),
                          ("cerebras_proxy_build_info", "gauge")]:
            self.assertEqual(fams.get(name), typ, name)
        self.assertEqual(h.value(s, "cerebras_proxy_upstream_up", upstream="default"), 1)
        self.assertGreaterEqual(h.value(s, "cerebras_proxy_upstream_requests_total",
                                        upstream="default", code="200"), 1)
        self.assertEqual(h.value(s, "cerebras_proxy_upstream_parse_errors_total",
                                 upstream="default"), 0)
        rem = h.value(s, "cerebras_proxy_rate_limit_remaining", upstream="default")
        self.assertTrue(0 <= rem <= BUDGET, rem)
        age = h.value(s, "cerebras_proxy_snapshot_age_seconds", upstream="default")
        self.assertTrue(0 <= age < 30, age)
        bi = h.find(s, "cerebras_proxy_build_info")
        self.assertEqual(len(bi), 1)
        self.assertEqual(bi[0].value, 1)
        self.assertIn("version", bi[0].labels)
        self.assertIn("revision", bi[0].labels)
        self.assertGreaterEqual(h.value(s, "cerebras_proxy_upstream_request_duration_seconds_count",
                                        upstream="default"), 1)
        for name in ("process_resident_memory_bytes", "process_cpu_seconds_total",
                     "process_open_fds", "process_start_time_seconds"):
            self.assertTrue(h.find(s, name), name)
        # extra_labels are on upstream samples only, never on self-metrics.
        for smp in s:
            if smp.name.startswith("cerebras_proxy_") or smp.name.startswith("process_"):
                self.assertNotIn("team", smp.labels, smp)
            else:
                self.assertEqual(smp.labels.get("env"), "e2e", smp)
                self.assertEqual(smp.labels.get("team"), "core", smp)

    def test_09_one_type_line_per_family(self):
        text = self.daemon.metrics_text()
        names = [line.split(" ")[2] for line in text.splitlines() if line.startswith("# TYPE ")]
        self.assertEqual(len(names), len(set(names)), names)
        for fam in h.FAMILIES:
            self.assertIn(fam, names)


    def test_10_slowloris_does_not_stop_a_scrape(self):
        # 500 connections that never finish their headers (half send a partial
        # request, half nothing): a normal scrape is still answered within 1 s.
        idle = []
        try:
            for i in range(500):
                s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10)
                if i % 2 == 0:
                    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                idle.append(s)
            t0 = time.monotonic()
            r = h.request(self.daemon.port, "GET", "/metrics", timeout=5)
            elapsed = time.monotonic() - t0
            self.assertEqual(r.status, 200)
            self.assertIn(b"requests_count_total{", r.body)
            self.assertLess(elapsed, 1.0, "scrape took %.3f s behind 500 idle connections" % elapsed)
            # and the idle ones are still open, neither refused nor dropped early.
            idle[1].setblocking(False)
            with self.assertRaises(BlockingIOError):
                idle[1].recv(1)
        finally:
            for s in idle:
                s.close()
    def test_99_budget_after_all(self):
        # Runs last (alphabetical): the whole run's log is within budget.
        self.assert_budget_and_one_per_window()


class Standalone(unittest.TestCase):
    """Daemons of their own: CLI, readiness, merge of two upstreams, bind."""

    @classmethod
    def setUpClass(cls):
        cls.ws = h.Workspace("cmp-core-e2e-")

    def valid_config(self, path, url="https://127.0.0.1:1/api/v1/metrics/organizations/org_x"):
        cfg = {"state_dir": os.path.join(os.path.dirname(path), "state"),
               "upstreams": [h.upstream_cfg(url=url, ca_file=self.ws.ca)]}
        with open(path, "w") as f:
            f.write(h.to_yaml(cfg))
        return cfg

    def test_cli_version_help(self):
        r = h.run_daemon_cli(["--version"])
        self.assertEqual(r.returncode, 0, r)
        self.assertIn(h.project_version().encode(), r.stdout + r.stderr)
        r = h.run_daemon_cli(["--help"])
        self.assertEqual(r.returncode, 0, r)
        self.assertIn(b"--config.file", r.stdout + r.stderr)

    def test_cli_check_config(self):
        d = self.ws.subdir("check")
        good = os.path.join(d, "good.yml")
        self.valid_config(good)
        r = h.run_daemon_cli(["--config.file=" + good, "--check-config"])
        self.assertEqual(r.returncode, 0, r)
        # The other spelling of the flag.
        r = h.run_daemon_cli(["--config", good, "--check-config"])
        self.assertEqual(r.returncode, 0, r)

        bad = os.path.join(d, "bad.yml")
        cfg = {"upstreams": [h.upstream_cfg(url="https://127.0.0.1:1/x", ca_file=self.ws.ca,
                                            bogus_key="1")]}
        with open(bad, "w") as f:
            f.write(h.to_yaml(cfg))
        r = h.run_daemon_cli(["--config.file=" + bad, "--check-config"])
        self.assertEqual(r.returncode, 1, r)
        err = r.stderr.decode()
        self.assertIn("bad.yml", err)
        self.assertIn("bogus_key", err)

        bad2 = os.path.join(d, "bad2.yml")
        cfg = {"upstreams": [h.upstream_cfg(url="https://127.0.0.1:1/x", ca_file=self.ws.ca,
                                            interval="2s", offset="3s")]}
        with open(bad2, "w") as f:
            f.write(h.to_yaml(cfg))
        r = h.run_daemon_cli(["--config.file=" + bad2, "--check-config"])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("bad2.yml", r.stderr.decode())
        self.assertIn("poll_offset", r.stderr.decode())

        r = h.run_daemon_cli(["--config.file=" + os.path.join(d, "missing.yml"), "--check-config"])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("missing.yml", r.stderr.decode())
        # Starting (not just checking) with a bad file also exits 1.
        r = h.run_daemon_cli(["--config.file=" + bad, "--web.listen-address=127.0.0.1:0"])
        self.assertEqual(r.returncode, 1, r)

    def test_cli_unknown_flag(self):
        d = self.ws.subdir("flag")
        good = os.path.join(d, "good.yml")
        self.valid_config(good)
        r = h.run_daemon_cli(["--config.file=" + good, "--no-such-flag"])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(b"no-such-flag", r.stderr)
        r = h.run_daemon_cli(["--log.level=loud", "--config.file=" + good])
        self.assertEqual(r.returncode, 1, r)

    def test_listen_address_in_use(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        try:
            port = s.getsockname()[1]
            d = self.ws.subdir("bind")
            good = os.path.join(d, "good.yml")
            self.valid_config(good)
            r = h.run_daemon_cli(["--config.file=" + good,
                                  "--web.listen-address=127.0.0.1:%d" % port], timeout=30)
            self.assertEqual(r.returncode, 2, r)
        finally:
            s.close()

    def test_ready_503_with_unreachable_upstream(self):
        port = h.free_port()   # nothing listens there
        cfg = {"upstreams": [h.upstream_cfg(
            name="lonely", url="https://127.0.0.1:%d/api/v1/metrics/organizations/org_x" % port,
            ca_file=self.ws.ca)]}
        d = h.Daemon(self.ws, cfg)
        try:
            r = d.get("/-/ready")
            self.assertEqual(r.status, 503, r)
            self.assertIn("lonely", r.text)
            self.assertEqual(d.get("/readyz").status, 503)
            self.assertEqual(d.get("/-/healthy").status, 200)
            # A scrape that announces its timeout waits (up to timeout - 0.5 s)
            # for a first snapshot, then serves what there is.
            r = d.get("/metrics", {"X-Prometheus-Scrape-Timeout-Seconds": "1.5"})
            self.assertEqual(r.status, 200)
            self.assertTrue(h.find(h.parse_prom(r.text), "cerebras_proxy_upstream_up"))
            # /metrics serves the self-metrics without waiting.
            r = d.get("/metrics")
            self.assertEqual(r.status, 200)
            s = h.parse_prom(r.text)
            self.assertEqual(h.value(s, "cerebras_proxy_upstream_up", upstream="lonely"), 0)
            d.wait_metric("cerebras_proxy_upstream_requests_total", lambda v: v and v >= 1,
                          upstream="lonely", code="connect")
            self.assertEqual(d.get("/-/ready").status, 503)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_two_upstreams_merge_families(self):
        m1 = h.Mock(self.ws, window="2s", rate_limit=0)
        m2 = h.Mock(self.ws, window="2s", rate_limit=0, org="org_second", endpoints=3)
        try:
            cfg = {"upstreams": [
                h.upstream_cfg(m1, name="first", extra_labels={"region": "eu"}),
                h.upstream_cfg(m2, name="second", extra_labels={"region": "us"}),
            ]}
            d = h.Daemon(self.ws, cfg)
            try:
                d.wait_up("first")
                d.wait_up("second")
                text = d.metrics_text()
                samples = h.parse_prom(text)
                types = [ln.split(" ")[2] for ln in text.splitlines() if ln.startswith("# TYPE ")]
                self.assertEqual(len(types), len(set(types)), "a family appears twice")
                helps = [ln.split(" ")[2] for ln in text.splitlines() if ln.startswith("# HELP ")]
                self.assertEqual(len(helps), len(set(helps)), "a HELP appears twice")
                # A family's samples are contiguous (one block per name).
                seen, last = set(), None
                for ln in text.splitlines():
                    if ln.startswith("#") or not ln:
                        continue
                    name = ln.split("{")[0].split(" ")[0]
                    for suffix in ("_bucket", "_sum", "_count"):
                        if name.startswith("cerebras_proxy_") and name.endswith(suffix):
                            name = name[: -len(suffix)]
                    if name != last:
                        self.assertNotIn(name, seen, "family %s split in two blocks" % name)
                        seen.add(name)
                        last = name
                st = h.find(samples, "inference_endpoint_status")
                self.assertEqual(len(h.find(st, "inference_endpoint_status", region="eu")), 2)
                self.assertEqual(len(h.find(st, "inference_endpoint_status", region="us",
                                            organization_id="org_second")), 3)
                self.assertEqual(len(st), 5)
            finally:
                self.assertEqual(d.stop(), 0)
        finally:
            m1.stop()
            m2.stop()

    def test_timestamps_window(self):
        m = h.Mock(self.ws, window="2s", rate_limit=0)
        try:
            d = h.Daemon(self.ws, {"upstreams": [h.upstream_cfg(m, timestamps="window")]})
            try:
                d.wait_up()
                s = d.metrics()
                up = [x for x in s if not x.name.startswith(("cerebras_proxy_", "process_"))]
                self.assertTrue(up)
                stamps = {x.timestamp for x in up}
                self.assertEqual(len(stamps), 1, stamps)
                ts = stamps.pop()
                self.assertIsNotNone(ts, "timestamps: window serves no timestamps")
                # The end of the window the values describe.
                vals = {(x.name, frozenset(x.labels.items())): x.value for x in up}
                w = matching_window(vals, {q["window"] for q in m.api_requests()})
                self.assertIsNotNone(w)
                self.assertEqual(ts, (w + 1) * 2000)
                # Self-metrics carry no timestamps.
                self.assertTrue(all(x.timestamp is None for x in s if x.name.startswith("cerebras_proxy_")))
            finally:
                self.assertEqual(d.stop(), 0)
        finally:
            m.stop()

    def test_api_key_file(self):
        m = h.Mock(self.ws, window="2s", rate_limit=0)
        try:
            kdir = self.ws.subdir("key")
            kfile = os.path.join(kdir, "api-key")
            with open(kfile, "w") as f:
                f.write(h.API_KEY + "\n")
            os.chmod(kfile, 0o600)
            up = h.upstream_cfg(m, api_key_env=None, api_key_file=kfile)
            d = h.Daemon(self.ws, {"upstreams": [up]}, env={"CMP_E2E_API_KEY": "wrong"})
            try:
                d.wait_up()
            finally:
                self.assertEqual(d.stop(), 0)
        finally:
            m.stop()


class ZzSecrets(unittest.TestCase):
    def test_zz_key_never_appears(self):
        texts, logs = h.secret_coverage()
        self.assertEqual(h.secret_hits(), [], "the API key leaked")
        self.assertGreater(texts + logs, 0)


if __name__ == "__main__":
    h.main()
