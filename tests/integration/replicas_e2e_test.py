#!/usr/bin/env python3
"""End-to-end test of issue 16, item 2: two daemons (an HA pair) on one
organization whose budget is 6 requests per window. Each replica has half of
it (`rate_limit.requests: 3`) and `replicas: {count: 2, index: 0|1}`:
  - while every request fails and both retry as hard as their budgets allow,
    the mock never answers 429 and never sees more than 6 in any window;
  - the replicas start their polls in different slices of the poll interval;
  - with `timestamps: window` both serve byte-identical upstream samples
    (same values, same timestamps), which is what HA deduplication needs.

Run by CMake as
    replicas_e2e_test.py --daemon ... --mock ... --repo . [unittest args]
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

INTERVAL = 3.0                 # poll_interval == the mock's window
OFFSET, TIMEOUT = 0.2, 0.8     # start span [0.2 s, 2.2 s]: slices [0.2, 1.2) and [1.2, 2.2]
SLICE_SPLIT = 1.2
BUDGET, BUDGET_WINDOW = 6, 6.0  # the organization's: enforced by the mock


def sample_timestamps(part):
    return {line.rsplit(" ", 1)[1] for line in part.split("\n")
            if line and not line.startswith("#")}


def replica_cfg(mock, index, **extra):
    return h.upstream_cfg(mock, interval="%ds" % INTERVAL, offset="%dms" % (OFFSET * 1000),
                          timeout="%dms" % (TIMEOUT * 1000), requests=BUDGET // 2,
                          window="%ds" % BUDGET_WINDOW, timestamps="window",
                          extra_labels={"env": "e2e"},
                          replicas={"count": 2, "index": index}, **extra)


class ReplicasE2E(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = h.Workspace("cmp-replicas-e2e-")
        cls.mock = h.Mock(cls.ws, window="%ds" % INTERVAL, rate_limit=BUDGET,
                          rate_window="%ds" % BUDGET_WINDOW)
        cls.daemons = [h.Daemon(cls.ws, {"log": {"level": "debug", "format": "logfmt"},
                                         "upstreams": [replica_cfg(cls.mock, i)]})
                       for i in (0, 1)]
        for d in cls.daemons:
            d.wait_up(timeout=30)

    @classmethod
    def tearDownClass(cls):
        for d in cls.daemons:
            d.stop()
        cls.mock.stop()

    def assert_no_429_and_budget_kept(self):
        reqs = self.mock.api_requests()
        self.assertEqual([r for r in reqs if r["status"] == 429 or r["over_budget"]], [],
                         "the replicas together drew a 429")
        self.assertLessEqual(h.max_in_window([r["t"] for r in reqs], BUDGET_WINDOW), BUDGET)
        for d in self.daemons:
            self.assertEqual(d.requests_total(code=429), 0)

    def test_1_both_replicas_retrying_stay_inside_the_shared_budget(self):
        # Every request fails for two budget windows: each replica retries
        # until its own half of the budget is spent.
        start = time.time()
        self.mock.fault("500", duration="%ds" % (2 * BUDGET_WINDOW))
        time.sleep(2 * BUDGET_WINDOW)
        failed = [r for r in self.mock.api_requests() if r["t"] >= start and r["status"] == 500]
        # Both replicas spent their shares: more than one replica's budget per window.
        self.assertGreater(h.max_in_window([r["t"] for r in failed], BUDGET_WINDOW), BUDGET // 2)
        for d in self.daemons:
            d.wait_up(timeout=4 * BUDGET_WINDOW)
        self.assert_no_429_and_budget_kept()

    def test_2_replicas_poll_in_different_slices_of_the_interval(self):
        start = time.time()
        h.wait_until(lambda: len([r for r in self.mock.api_requests() if r["t"] > start]) >= 8,
                     8 * INTERVAL, "eight polls")
        by_window = {}
        for r in self.mock.api_requests():
            if r["t"] > start and r["status"] == 200:
                by_window.setdefault(int(r["t"] // INTERVAL), []).append(r["t"] % INTERVAL)
        pairs = [sorted(v) for v in by_window.values() if len(v) == 2]
        split = [p for p in pairs if p[0] < SLICE_SPLIT <= p[1]]
        # A timer running late on a busy machine can blur one window, not most.
        self.assertGreaterEqual(len(pairs), 2, by_window)
        self.assertGreaterEqual(len(split), max(2, (3 * len(pairs) + 3) // 4), by_window)
        self.assert_no_429_and_budget_kept()

    def test_3_window_samples_are_byte_identical_across_replicas(self):
        compared = set()

        def two_identical_windows():
            parts = [h.upstream_part(d.metrics_text()) for d in self.daemons]
            stamps = [sample_timestamps(p) for p in parts]
            for s in stamps:
                self.assertEqual(len(s), 1, "one timestamp per snapshot: %r" % s)
            if stamps[0] == stamps[1]:
                self.assertEqual(parts[0], parts[1], "replicas differ for window %s" % stamps[0])
                self.assertIn("requests_count_total{", parts[0])
                compared.add(next(iter(stamps[0])))
            return len(compared) >= 2

        h.wait_until(two_identical_windows, 6 * INTERVAL, "two windows served by both replicas",
                     interval=0.25)
        self.assert_no_429_and_budget_kept()

    def test_4_check_config_warns_when_replicas_exceed_the_documented_limit(self):
        cfg = {"state_dir": self.ws.subdir("state"),
               "upstreams": [h.upstream_cfg(self.mock, interval="1m", offset="5s", timeout="10s",
                                            requests=6, window="1m", timestamps="window",
                                            replicas={"count": 2, "index": 1})]}
        path = os.path.join(self.ws.subdir("cfg"), "config.yml")
        with open(path, "w") as f:
            f.write(h.to_yaml(cfg))
        os.chmod(path, 0o600)
        r = h.run_daemon_cli(["--config.file=" + path, "--check-config"])
        out = (r.stdout + r.stderr).decode()
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("2 replicas with 6 requests per 1m each may send 12 requests in one minute",
                      out)
        self.assertIn("this is replica 1 of 2", out)


if __name__ == "__main__":
    h.main()
