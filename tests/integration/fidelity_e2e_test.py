#!/usr/bin/env python3
"""Ground truth: every upstream window stored exactly once, under its own
timestamp, by a real Prometheus (issue 5, item 3).

    python3 fidelity_e2e_test.py --daemon build/cerebras-metrics-proxy \
        --mock build/cerebras-mock-upstream --repo . [unittest args]

The mock serves 3 s windows whose values are known in advance
(GET /mock/window/<w>); the daemon polls every 3 s with `timestamps: window`;
Debian's Prometheus scrapes it every second with honor_timestamps: true, in a
fresh TSDB. Afterwards the test reads the raw stored samples (a range-vector
selector in an instant query: query_range would resample them) and compares
them, series by series, with what the upstream served:

  * every stored sample sits at a window end (a multiple of 3 s), and its
    value is the value of exactly that window, for every series;
  * a window appears once per series however many times it was scraped;
  * every window the daemon fetched while Prometheus was scraping is there,
    and the daemon fetched every window while the upstream was healthy;
  * with a 429 for a whole window, that window is absent: not stored under
    a neighbour's timestamp, not duplicated, and its neighbours are intact;
    a 500 retried inside its window's poll slot stores that window once;
  * a restart re-serves the snapshot kept in state_dir under the same
    timestamp and does not fetch that window again.

The request log of the mock is the record of which window each answer
carried (`window`, `status`), and Prometheus' own `up` samples are the
record of when it scraped. A short last test shows what `timestamps: none`
does instead: one stored sample per scrape. Both modes end by stopping the
daemon: timestamped series get no staleness markers (they stay visible for
the 5m lookback), untimestamped ones vanish at once.

What Prometheus 2.42 does with explicit timestamps (checked here or by hand
against this server, no out_of_order_time_window configured):
  * the same (timestamp, value) scraped again is dropped silently: no error,
    no counter (assert_no_ingest_errors);
  * the same timestamp with another value is dropped, the first value stays,
    prometheus_target_scrapes_sample_duplicate_timestamp_total counts it;
  * an older timestamp than the series' last is dropped
    (..._out_of_order_total, warn "Error on ingesting out-of-order samples");
  * a sample more than ~1h (half the 2h head chunk range) older than the
    newest sample in the head is dropped even for a new series
    (..._out_of_bounds_total); the target stays "up" in all three cases;
  * no staleness markers for timestamped series (see above).
Exit 77 (skip) when /usr/bin/prometheus is missing.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import e2e_prometheus as ep  # noqa: E402

WINDOW = 3                      # seconds: mock --window and daemon poll_interval
W_MS = WINDOW * 1000
HEALTHY_WINDOWS = 11            # >= 10 windows scraped end to end
SETTLE = 2.5                    # a snapshot this old has surely been scraped (1 s interval)


class _Setup:
    """One mock + daemon + Prometheus; the test methods drive time."""

    def start(self, timestamps="window", fixed_port=False):
        self.ws = harness.Workspace(prefix="cmp-e2e-fidelity-")
        self.mock = harness.Mock(self.ws, window="%ds" % WINDOW, rate_limit=6, rate_window="10s")
        up = harness.upstream_cfg(self.mock, interval="%ds" % WINDOW, offset="300ms",
                                  timeout="1s", requests=6, window="10s",
                                  timestamps=timestamps)
        # A fixed port lets the daemon restart under the same scrape target.
        listen = "127.0.0.1:%d" % harness.free_port() if fixed_port else "127.0.0.1:0"
        self.daemon = harness.Daemon(self.ws, {"upstreams": [up]}, listen=listen)
        self.prom = ep.Prometheus(self.ws, ["127.0.0.1:%d" % self.daemon.port])
        self.addCleanup(self.stop)
        self.prom.wait_target_up()
        self.truth_cache = {}

    def stop(self):
        for p in ("prom", "daemon", "mock"):
            if hasattr(self, p):
                getattr(self, p).stop()

    # -- ground truth
    def truth(self, w):
        """{(name, labels)}: value of window w, from the body the mock serves for it."""
        if w not in self.truth_cache:
            vals = {}
            for s in harness.parse_prom(self.mock.window_body(w)):
                vals[(s.name, frozenset(s.labels.items()))] = s.value
            self.truth_cache[w] = vals
        return self.truth_cache[w]

    def fetched(self):
        """[(t, window)] of the API answers that carried a snapshot (200)."""
        return [(r["t"], r["window"]) for r in self.mock.api_requests()
                if r["status"] == 200 and r.get("fault", "none") == "none"]

    def wait_fetched_windows(self, n, after=0.0, timeout_windows=None):
        """Waits until n distinct windows were fetched after `after` and the
        last of them is SETTLE seconds old (scraped at least twice since)."""
        def ok():
            got = sorted({w for t, w in self.fetched() if t > after and t < time.time() - SETTLE})
            return len(got) >= n and got
        return harness.wait_until(ok, (timeout_windows or n + 6) * WINDOW,
                                  "%d windows fetched and scraped" % n, 0.25)

    def serves_window(self, w):
        """True when the daemon's /metrics carries window w (stamped at its end)."""
        end = (w + 1) * W_MS
        return any(s.timestamp == end for s in self.daemon.metrics()
                   if s.name == "requests_count_total")

    def after_this_windows_poll(self, margin=1.2):
        """Waits until the daemon's poll in the current wall-clock window X
        has fetched window X-1, and the daemon serves it (the mock logs an
        answer before the daemon has read it), with `margin` seconds of X
        left; returns X."""
        def poll_done_this_window():
            now = time.time()
            x = int(now // WINDOW)
            if now > (x + 1) * WINDOW - margin:
                return None
            if not any(w == x - 1 for _, w in self.fetched()):
                return None
            return x if self.serves_window(x - 1) else None
        return harness.wait_until(poll_done_this_window, 10 * WINDOW,
                                  "a successful poll early in a window", 0.05)

    def scrape_times(self, at):
        """Timestamps (ms) of Prometheus' scrapes of the daemon, from its `up` samples."""
        r = self.prom.raw_samples('up{job="%s"}' % ep.JOB, "10m", at)
        self.assertEqual(len(r), 1, r)
        return [t for t, _ in next(iter(r.values()))]

    def stored(self, at):
        """{(name, labels without job/instance)}: [(ts_ms, value)] of every Cerebras series."""
        raw = self.prom.raw_samples('{job="%s", organization_id="%s"}' % (ep.JOB, harness.ORG),
                                    "10m", at)
        out = {}
        for labels, samples in raw.items():
            key = ep.series_key(dict(labels))
            self.assertNotIn(key, out, "two stored series for %r" % (key,))
            out[key] = samples
        return out

    def must_be_stored(self, fetched, scrapes, at):
        """Windows whose snapshot was served while Prometheus scraped: fetched
        (200) at t, replaced by the next fetch at t_next (or still served at
        `at`), with a scrape in [t + 0.5, t_next - 0.1]. The daemon publishes
        milliseconds after the mock's answer, so 0.5 s is ample; a wider
        margin made a window retried late in its slot (served ~2 s) look
        unscrapeable at a 1 s scrape interval, and the test flaky."""
        out = set()
        fetched = sorted(fetched)
        for i, (t, w) in enumerate(fetched):
            t_next = fetched[i + 1][0] if i + 1 < len(fetched) else at
            if any(t + 0.5 <= s <= t_next - 0.1 for s in scrapes):
                out.add(w)
        return out

    def check_against_truth(self, at, absent=()):
        """The core assertions; returns (windows found, windows required)."""
        fetched = self.fetched()
        fetched_windows = {w for _, w in fetched}
        scrapes = [t / 1000 for t in self.scrape_times(at)]
        required = self.must_be_stored(fetched, scrapes, at)
        stored = self.stored(at)
        self.assertTrue(stored, "no Cerebras series stored")

        found = set()
        for key, samples in sorted(stored.items(), key=lambda kv: repr(kv[0])):
            stamps = [t for t, _ in samples]
            self.assertEqual(len(stamps), len(set(stamps)), key)
            for t, v in samples:
                self.assertEqual(t % W_MS, 0, "%r stored at %d ms, not at a window end (%d s)"
                                 % (key, t, WINDOW))
                w = t // W_MS - 1
                self.assertIn(w, fetched_windows,
                              "%r has a sample at the end of window %d, which the upstream "
                              "never served successfully (fetched: %r)"
                              % (key, w, sorted(fetched_windows)))
                self.assertNotIn(w, absent, "%r: window %d must be absent" % (key, w))
                expected = self.truth(w).get(key)
                self.assertIsNotNone(expected, "%r is not a series of window %d" % (key, w))
                self.assertEqual(v, expected, "%r at the end of window %d: %r, the upstream "
                                 "served %r" % (key, w, v, expected))
                found.add(w)
        # Every required window, in every one of its series.
        for w in sorted(required):
            end = (w + 1) * W_MS
            for key in self.truth(w):
                self.assertIn(key, stored, "series %r never stored" % (key,))
                self.assertIn(end, [t for t, _ in stored[key]],
                              "window %d (end %d) missing from %r; stored ends %r"
                              % (w, end, key, [t for t, _ in stored[key]]))
        return found, required

    def series_after_target_down(self):
        """Stops the daemon; once Prometheus has seen the target down, returns
        how many Cerebras series an instant query still finds."""
        self.daemon.stop()
        self.prom.wait_query('up{job="%s"} == 0' % ep.JOB, 30, what="target down")
        # One more scrape interval: a staleness marker, if any, is written by now.
        time.sleep(1.5)
        return len(self.prom.query('{__name__=~"%s", job="%s"}'
                                   % ("|".join(harness.FAMILIES), ep.JOB)))

    def assert_no_ingest_errors(self):
        # Repeated scrapes of one snapshot repeat (timestamp, value) exactly:
        # Prometheus drops those silently. Anything else would be counted here.
        self.assertEqual(self.prom.ingest_errors(),
                         {"out_of_order": 0, "duplicate_timestamp": 0, "out_of_bounds": 0})


class WindowTimestampsTest(_Setup, unittest.TestCase):

    def test_each_window_stored_once_with_its_value(self):
        self.start("window")
        t0 = time.time()
        self.wait_fetched_windows(HEALTHY_WINDOWS, after=t0)
        at = time.time()
        found, required = self.check_against_truth(at)

        # The daemon fetched every window while the upstream was healthy ...
        fetched = sorted({w for _, w in self.fetched()})
        self.assertEqual(fetched, list(range(fetched[0], fetched[-1] + 1)),
                         "the daemon skipped a window")
        # ... one request per window, nothing but 200s ...
        statuses = [r["status"] for r in self.mock.api_requests()]
        self.assertEqual(set(statuses), {200})
        self.assertEqual(len(statuses), len(fetched))
        # ... and Prometheus stored every one it had a chance to scrape: at
        # least HEALTHY_WINDOWS consecutive windows, each exactly once.
        self.assertGreaterEqual(len(required), HEALTHY_WINDOWS)
        self.assertTrue(required <= found)
        w_req = sorted(required)
        self.assertEqual(w_req, list(range(w_req[0], w_req[-1] + 1)))
        self.assert_no_ingest_errors()

        # Samples with explicit timestamps get no staleness markers: when the
        # target goes away, the last window stays visible for the query
        # lookback (5m), unlike with `timestamps: none` (NoTimestampsTest).
        self.assertEqual(self.series_after_target_down(), len(self.truth(fetched[-1])))

    def test_faults_in_the_middle(self):
        """A 429 for a whole window: that window is absent, not duplicated,
        not shifted. A 500 answered once, then retried inside the window:
        that window is stored once, with its own value."""
        self.start("window")
        self.wait_fetched_windows(2, after=time.time())

        # 429 in wall-clock window X, after the daemon's poll there succeeded
        # (it fetched window X-1) and well before X ends: windows=2 covers the
        # rest of X (no more polls) and all of X+1, whose polls would fetch
        # window X. So upstream window X is never served. (Which window the
        # fault hit is read back from the request log, so a slow POST that
        # lands in X+1 still makes a valid test.)
        x = self.after_this_windows_poll()
        self.mock.fault("429", windows=2)
        self.wait_fetched_windows(1, after=(x + 3) * WINDOW)

        # A single 500 for the next poll: retried after a backoff of at most
        # 1 s, still inside the window's poll slot, so the window is fetched.
        y = self.after_this_windows_poll()
        self.mock.fault("500", count=1)
        self.wait_fetched_windows(2, after=(y + 2) * WINDOW)
        at = time.time()

        hit = [r for r in self.mock.api_requests() if r["fault"] == "429"]
        self.assertTrue(hit, "the daemon never met the 429")
        self.assertTrue(all(r["status"] == 429 for r in hit), hit)
        self.assertEqual(len({r["window"] for r in hit}), 1, hit)
        faulty = hit[0]["window"]
        self.assertIn(faulty, (x, x + 1))
        self.assertNotIn(faulty, {w for _, w in self.fetched()})

        e500 = [r for r in self.mock.api_requests() if r["fault"] == "500"]
        self.assertEqual(len(e500), 1, e500)
        retried = e500[0]["window"]
        retry = [t for t, w in self.fetched() if w == retried and t > e500[0]["t"]]
        self.assertEqual(len(retry), 1, "window %d not fetched again after its 500: %r"
                         % (retried, self.mock.api_requests()))
        self.assertEqual(int(retry[0] // WINDOW), int(e500[0]["t"] // WINDOW),
                         "the retry left the window's wall-clock slot")

        found, required = self.check_against_truth(at, absent={faulty})
        self.assertNotIn(faulty, found)
        # Its neighbours are stored, each at its own end with its own value
        # (checked series by series in check_against_truth) ...
        self.assertIn(faulty - 1, required)
        self.assertIn(faulty + 1, required)
        self.assertTrue({faulty - 1, faulty + 1} <= found)
        # ... and nothing at the faulty window's end.
        end = (faulty + 1) * W_MS
        stored = self.stored(at)
        self.assertEqual([k for k, s in stored.items() if end in [t for t, _ in s]], [])
        # The retried window is there, once per series, with its value.
        self.assertIn(retried, required)
        self.assertIn(retried, found)
        # The daemon counted both.
        for code in ("429", "500"):
            r = self.prom.wait_query(
                'cerebras_proxy_upstream_requests_total{upstream="default",code="%s"} >= 1' % code,
                30)
            self.assertEqual(len(r), 1, r)
        self.assert_no_ingest_errors()

    def test_restart_serves_the_restored_window_once(self):
        """A restart re-serves the snapshot from state_dir under the same
        timestamp (Prometheus drops the identical samples) and does not fetch
        that window again."""
        self.start("window", fixed_port=True)
        self.wait_fetched_windows(2, after=time.time())
        # The snapshot of window x-1 is published and so already in state_dir
        # (the poller writes it right after publishing, before any other
        # work). A daemon stopped while a fetch is in flight polls that
        # window again at start, which is allowed: the budget counts it.
        x = self.after_this_windows_poll(margin=1.5)
        self.daemon.restart()
        self.assertEqual(int(time.time() // WINDOW), x, "restart too slow for this test")
        self.prom.wait_target_up()
        self.wait_fetched_windows(2, after=(x + 1) * WINDOW)
        at = time.time()

        fetched = [w for _, w in self.fetched()]
        self.assertEqual(len(fetched), len(set(fetched)), "a window fetched twice: %r" % fetched)
        self.assertEqual(sorted(fetched), list(range(min(fetched), max(fetched) + 1)),
                         "a window lost over the restart")
        found, required = self.check_against_truth(at)
        self.assertTrue(required <= found)
        self.assertIn(x - 1, found)
        self.assertIn(x, found)
        self.assert_no_ingest_errors()


class NoTimestampsTest(_Setup, unittest.TestCase):
    """Why window mode exists: without timestamps every scrape is a sample."""

    def test_one_sample_per_scrape(self):
        self.start("none")
        self.wait_fetched_windows(3, after=time.time())
        at = time.time()
        scrapes = self.scrape_times(at)
        key = ("requests_count_total",
               frozenset({"endpoint": harness.endpoint_name(0),
                          "organization_id": harness.ORG}.items()))
        samples = self.stored(at)[key]
        stamps = [t for t, _ in samples]
        # Stored at the scrape times (those of `up`), not at window ends ...
        self.assertLessEqual(set(stamps), set(scrapes))
        self.assertGreater(len(samples), len({t // W_MS for t in stamps}))
        # ... so one upstream window is stored once per scrape (~3 times at
        # 1 s), and sum_over_time() counts it that many times.
        runs, prev = [], None
        for _, v in samples:
            if runs and v == prev:
                runs[-1] += 1
            else:
                runs.append(1)
            prev = v
        self.assertGreaterEqual(max(runs), 2, samples)
        self.assertGreater(len(samples), len(runs))

        # Without timestamps Prometheus marks the series stale as soon as the
        # target is down: an instant query finds none (window mode: all).
        self.assertEqual(self.series_after_target_down(), 0)


if __name__ == "__main__":
    ep.skip_without_prometheus()
    harness.main()
