#!/usr/bin/env python3
"""One daemon, 100 organizations (issue 14, item 5; issue 16, item 3).

    python3 scale_e2e_test.py --daemon build/cerebras-metrics-proxy \
        --mock build/cerebras-mock-upstream --repo . [unittest args]

One mock upstream (TLS, 10 endpoints, ~30 KB a body) stands for 100
organizations: each upstream polls its own URL (a query string the mock
ignores, so each has its own budget ledger) and adds its own `org` label.
All of them poll at the same offset every 10 s, so each cycle starts with a
burst of 100 fetches and a re-render of the view. Functional bounds only
(the speed targets live in bench/run_org_bench.py, with ~100 KB bodies and
state_dir on disk, where a scrape during a burst still waits behind the
pollers' own per-poll work on the I/O thread: see bench/HISTORY.md):

  * every organization is polled exactly once per cycle, over 2 cycles
    (the daemon's request counters and the mock's request log agree);
  * /metrics, scraped back to back through the bursts, always answers, in
    less than 1 s, with every organization's series and each family once;
  * /metrics?upstream=NAME serves that organization alone, without the
    daemon's own metrics, and 404 for an unknown name.
"""

import http.client
import os
import re
import shutil
import tempfile
import threading
import time
import unittest

import harness as h

N = 100
INTERVAL = 10
OFFSET = 1


class HundredOrganizations(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ws = h.Workspace("cmp-scale-e2e-")
        cls.mock = h.Mock(cls.ws, window="%ds" % INTERVAL, rate_limit=0, endpoints=10)
        ups = []
        for i in range(N):
            ups.append(h.upstream_cfg(cls.mock, name="o%d" % i, url=cls.mock.url() + "?o=%d" % i,
                                      interval="%ds" % INTERVAL, offset="%dms" % (OFFSET * 1000),
                                      timeout="5s", requests=12, window="60s",
                                      max_staleness="60s", extra_labels={"org": "o%d" % i}))
        # state_dir on tmpfs: every poll writes and fsyncs its snapshot and
        # ledger on the I/O thread (upstream/state_store), and 100 of those
        # per burst on a busy disk stall the loop for over a second. That is
        # the poller's to fix (it is in bench/HISTORY.md); this test bounds
        # what the render path leaves of a burst.
        cls.shm = tempfile.mkdtemp(prefix="cmp-scale-state-", dir="/dev/shm") if os.path.isdir("/dev/shm") else None
        cls.daemon = h.Daemon(cls.ws, {"upstreams": ups}, log_level="info", state_dir=cls.shm)

        def all_up():
            up = [s for s in cls.daemon.metrics() if s.name == "cerebras_proxy_upstream_up"]
            return len(up) == N and all(s.value == 1 for s in up)
        h.wait_until(all_up, 60 * h.SLOW, "all %d upstreams up" % N, interval=0.5)

    @classmethod
    def tearDownClass(cls):
        try:
            assert cls.daemon.stop() == 0
        finally:
            cls.mock.stop()
            if cls.shm:
                shutil.rmtree(cls.shm, ignore_errors=True)

    def scrape(self, path="/metrics", headers=None):
        # Not harness.request(): it keeps every body for the secret grep, and
        # this test fetches hundreds of 10 MB bodies.
        c = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=10 * h.SLOW)
        try:
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def polls(self):
        # A regex over the raw text: parsing 10 MB in Python takes seconds,
        # and these counters must be read between two bursts.
        status, body = self.scrape(headers={"Accept": "text/plain"})
        self.assertEqual(status, 200)
        out = {}
        for m in re.finditer(rb'^cerebras_proxy_upstream_requests_total\{([^}]*)\} (\S+)$', body, re.M):
            u = re.search(rb'upstream="([^"]*)"', m.group(1)).group(1).decode()
            out[u] = out.get(u, 0) + float(m.group(2))  # summed over codes
        return out

    def test_1_every_organization_polled_once_per_cycle_and_scrapes_answered(self):
        cycles = 2
        # Start and end between bursts: late in a cycle, after every fetch
        # of its burst has finished (offset + timeout < phase).
        phase = INTERVAL - 1.5
        time.sleep((phase - time.time() % INTERVAL) % INTERVAL)
        t0 = time.time()
        before = self.polls()
        latencies, failures = [], []
        stop = threading.Event()

        def scraper():
            hdr = {"Accept": "application/openmetrics-text;version=1.0.0", "Accept-Encoding": "gzip"}
            while not stop.is_set():
                start = time.time()
                try:
                    status, _ = self.scrape(headers=hdr)
                    if status != 200:
                        failures.append(status)
                except Exception as e:  # a timeout is a failure, not a hang
                    failures.append(repr(e))
                latencies.append(time.time() - start)

        th = threading.Thread(target=scraper)
        th.start()
        time.sleep(t0 + cycles * INTERVAL - time.time())
        t1 = time.time()
        after = self.polls()
        stop.set()
        th.join()

        counts = {u: after.get(u, 0) - before.get(u, 0) for u in ["o%d" % i for i in range(N)]}
        wrong = {u: c for u, c in counts.items() if c != cycles}
        self.assertEqual(wrong, {}, "organizations not polled exactly once per cycle; daemon log:\n"
                         + self.daemon.log_text()[-3000:])
        logged = [r for r in self.mock.api_requests() if t0 <= r["t"] <= t1]
        self.assertEqual(len(logged), N * cycles, sorted({int(r["t"] - t0) for r in logged}))
        self.assertTrue(all(r["status"] == 200 for r in logged))

        self.assertEqual(failures, [])
        self.assertGreater(len(latencies), cycles)
        self.assertLess(max(latencies), 1.0 * h.SLOW, "a scrape during the bursts took %.3f s"
                        % max(latencies))

    def test_2_every_organization_served_with_families_once(self):
        status, body = self.scrape(headers={"Accept": "text/plain"})
        self.assertEqual(status, 200)
        text = body.decode()
        orgs = set(re.findall(r'^requests_count_total\{[^}]*org="(o\d+)"', text, re.M))
        self.assertEqual(len(orgs), N, sorted(set("o%d" % i for i in range(N)) - orgs))
        types = [ln.split(" ")[2] for ln in text.splitlines() if ln.startswith("# TYPE ")]
        self.assertEqual(len(types), len(set(types)), "a family appears twice")

    def test_3_one_organization_alone(self):
        status, body = self.scrape("/metrics?upstream=o42", {"Accept": "text/plain"})
        self.assertEqual(status, 200)
        text = body.decode()
        self.assertEqual(set(re.findall(r'org="(o\d+)"', text)), {"o42"})
        self.assertIn("requests_count_total{", text)
        self.assertNotIn("cerebras_proxy_", text)
        self.assertNotIn("process_", text)
        # OpenMetrics with gzip, like Prometheus asks.
        r = h.request(self.daemon.port, path="/metrics?upstream=o42",
                      headers={"Accept": "application/openmetrics-text;version=1.0.0",
                               "Accept-Encoding": "gzip"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers.get("content-encoding"), "gzip")
        self.assertTrue(r.text.endswith("# EOF\n"))
        self.assertIn("last-modified", r.headers)
        self.assertEqual(set(re.findall(r'org="(o\d+)"', r.text)), {"o42"})
        self.assertEqual(self.scrape("/metrics?upstream=o100")[0], 404)
        self.assertEqual(self.scrape("/metrics?upstream=")[0], 404)


if __name__ == "__main__":
    h.main()
