#!/usr/bin/env python3
"""End-to-end test of issue 23, items 3 and 5: what a new user sees in the
journal (at the default info level) and the API's clock checked.

One daemon, three upstreams:
  * `exact`   - a mock with a correct clock: the first snapshot is told once,
                at info, with its families, series and endpoints; the clock
                skew reads 0 and nothing warns.
  * `skewed`  - a mock whose Date header is 10 s ahead (--date-skew=10s): the
                skew gauge reads about +10 and one warning says so.
  * `wrongorg` - the right mock with a wrong organization id: every poll is a
                404, logged once (not per poll) with the API's own error text,
                which the status page shows too.

Run by CMake as
    logs_and_clock_e2e_test.py --daemon ... --mock ... --repo . [unittest args]
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

INTERVAL = 2.0
SKEW = "cerebras_proxy_upstream_clock_skew_seconds"


class LogsAndClockE2E(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = h.Workspace("cmp-logs-clock-e2e-")
        cls.exact = h.Mock(cls.ws, window="%ds" % INTERVAL, rate_limit=20, rate_window="10s")
        cls.skewed = h.Mock(cls.ws, window="%ds" % INTERVAL, rate_limit=20, rate_window="10s",
                            extra=["--date-skew=10s"])
        ups = [h.upstream_cfg(cls.exact, name="exact", interval="%ds" % INTERVAL),
               h.upstream_cfg(cls.skewed, name="skewed", interval="%ds" % INTERVAL),
               h.upstream_cfg(cls.exact, name="wrongorg", url=cls.exact.url(org="org_wrong"),
                              interval="%ds" % INTERVAL)]
        cls.daemon = h.Daemon(cls.ws, {"upstreams": ups}, log_level="info")
        cls.daemon.wait_up("exact", timeout=30)
        cls.daemon.wait_up("skewed", timeout=30)
        # Three 404s counted by the daemon at least: "once" must mean something.
        h.wait_until(lambda: cls.daemon.requests_total("wrongorg", 404) >= 3,
                     10 * INTERVAL, "three polls of the wrong organization")
        # And a few more polls of the others, whose repeats must stay quiet.
        h.wait_until(lambda: len(cls.skewed.api_requests()) >= 3, 10 * INTERVAL,
                     "three polls of the skewed mock")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        cls.exact.stop()
        cls.skewed.stop()

    def lines(self, *needles):
        return [l for l in self.daemon.log_text().splitlines() if all(n in l for n in needles)]

    def test_first_snapshot_is_told_once_at_info_with_what_it_holds(self):
        for name in ("exact", "skewed"):
            got = self.lines("upstream=" + name, "first snapshot")
            self.assertEqual(len(got), 1, self.daemon.log_text())
            self.assertIn("level=info", got[0])
            # The mock's 11 families, 2 endpoints (harness.FAMILIES, default --endpoints).
            self.assertIn("first snapshot: %d families," % len(h.FAMILIES), got[0])
            self.assertIn(", 2 endpoints", got[0])
        self.assertEqual(self.lines("upstream=exact", "level=warn"), [])
        self.assertEqual(len(self.lines("upstream=skewed", "level=warn")), 1)  # the skew

    def test_an_outage_is_told_once_with_the_apis_own_words(self):
        got = self.lines("upstream=wrongorg")
        self.assertEqual(len(got), 1, "a line per failed poll: %r" % got)
        self.assertIn("level=warn", got[0])
        self.assertIn("HTTP 404", got[0])
        self.assertIn("check the organization id", got[0])
        # The mock's JSON error, as the real API words it.
        self.assertIn("Organization 'org_wrong' not found", got[0])
        page = self.daemon.get("/")
        self.assertEqual(page.status, 200)
        self.assertIn("Organization &#39;org_wrong&#39; not found", page.text)

    def test_clock_skew_is_measured_and_warned_once(self):
        s = self.daemon.metrics()
        self.assertEqual(h.value(s, SKEW, upstream="exact"), 0.0,
                         "a correct clock must read 0 (Date has 1 s resolution)")
        skew = h.value(s, SKEW, upstream="skewed")
        # At least 10 s - (a second's fraction + the request's latency), never more.
        self.assertTrue(8.5 <= skew <= 10.0, skew)
        warned = self.lines("upstream=skewed", "clock skew")
        self.assertEqual(len(warned), 1, self.daemon.log_text())
        self.assertIn("level=warn", warned[0])
        self.assertIn("ahead of ours", warned[0])
        self.assertEqual(self.lines("upstream=exact", "clock skew"), [])

    def test_no_key_anywhere(self):
        self.daemon.get("/")
        self.daemon.metrics_text()
        self.assertEqual(h.secret_hits(), [])


if __name__ == "__main__":
    h.main()
