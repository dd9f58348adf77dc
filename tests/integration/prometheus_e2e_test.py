#!/usr/bin/env python3
"""A real Prometheus scrapes the daemon fed by the mock over HTTPS (issue 4, item 5).

    python3 prometheus_e2e_test.py --daemon build/cerebras-metrics-proxy \
        --mock build/cerebras-mock-upstream --repo . [unittest args]

Debian's prometheus (own TSDB in a temp dir, loopback only) scrapes the
daemon every second as job cerebras-metrics-proxy with honor_labels: true and
evaluates the repository's config/prometheus/rules/cerebras.rules.yml every
second. The test asks Prometheus' HTTP API, as a user's dashboard would:
the target is up, the Cerebras series are stored with their own labels, the
daemon's self-metrics are there, and the recording rules produce the values
the upstream's numbers imply. Once with the latency label the API guide
writes (`statistic`), once with the one its reference writes (`percentile`).
Exit 77 (skip) when /usr/bin/prometheus is missing.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import e2e_prometheus as ep  # noqa: E402

WINDOW = 3            # seconds: the mock's window and the daemon's poll_interval
ENDPOINTS = 2
LATENCY_FAMILIES = [name for name, _, _ in harness.LATENCY]
RECORDING_RULES = [
    "endpoint:cerebras_requests:per_second",
    "endpoint:cerebras_requests_success:ratio",
    "endpoint_http_code:cerebras_requests_failure:ratio",
    "endpoint:cerebras_requests_failure:ratio",
    "endpoint:cerebras_requests_failure:ratio_5m",
    "endpoint:cerebras_requests:avg_per_minute_5m",
    "endpoint:cerebras_input_tokens:per_second",
    "endpoint:cerebras_output_tokens:per_second",
] + ["endpoint_statistic:cerebras_%s:normalized" % f for f in LATENCY_FAMILIES] + [
    "endpoint:cerebras_ttft_seconds:p95",
    "endpoint:cerebras_ttft_seconds:p99",
    "endpoint:cerebras_e2e_latency_seconds:p95",
    "endpoint:cerebras_e2e_latency_seconds:p99",
    "endpoint:cerebras_queue_time_seconds:p95",
]


class _PrometheusScrape:
    """Mixin: one mock + daemon + Prometheus per class; LABEL is the mock's latency label."""

    LABEL = "statistic"

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace(prefix="cmp-e2e-prom-")
        cls.mock = harness.Mock(cls.ws, window="%ds" % WINDOW, rate_limit=6, rate_window="10s",
                                extra=["--latency-label", cls.LABEL])
        up = harness.upstream_cfg(cls.mock, interval="%ds" % WINDOW, offset="300ms", timeout="1s",
                                  requests=6, window="10s")
        cls.daemon = harness.Daemon(cls.ws, {"upstreams": [up]})
        cls.target = "127.0.0.1:%d" % cls.daemon.port
        cls.prom = ep.Prometheus(cls.ws, [cls.target], rule_files=[ep.rules_file()])
        cls.prom.wait_target_up()
        # Every recording rule has produced a value at least once.
        for rule in RECORDING_RULES:
            cls.prom.wait_query(rule, 90, what="recording rule %s has a value" % rule)

    @classmethod
    def tearDownClass(cls):
        for p in ("prom", "daemon", "mock"):
            if hasattr(cls, p):
                getattr(cls, p).stop()

    # -- helpers
    def recent_truth(self, windows=30):
        """{(name, labels): set of values} over the last `windows` windows of
        the mock, by the documented formula (the value a series may show now)."""
        w_now = int(time.time() // WINDOW) - 1
        out = {}
        for w in range(w_now - windows, w_now + 1):
            for k, v in harness.expected_values(w, ENDPOINTS, label=self.LABEL).items():
                out.setdefault(k, set()).add(v)
        return out

    def assert_plausible(self, rule, results, derive):
        """Each result of `rule` equals derive(window values) for one of the
        recent windows of its endpoint."""
        self.assertTrue(results, rule)
        w_now = int(time.time() // WINDOW) - 1
        for labels, v in results:
            candidates = []
            for w in range(w_now - 30, w_now + 1):
                d = derive(harness.expected_values(w, ENDPOINTS, label=self.LABEL), labels)
                if d is not None:
                    candidates.append(d)
            self.assertTrue(any(abs(c - v) <= 1e-9 * max(1.0, abs(c)) for c in candidates),
                            "%s%r = %r is not what any recent window gives (%r...)"
                            % (rule, labels, v, candidates[-3:]))

    # -- tests
    def test_target_up(self):
        ts = self.prom.wait_target_up()
        self.assertEqual(len(ts), 1, ts)
        t = ts[0]
        self.assertEqual(t["labels"]["instance"], self.target)
        self.assertEqual(t["scrapeUrl"], "http://%s/metrics" % self.target)
        self.assertEqual(t["lastError"], "")
        up = self.prom.query('up{job="%s"}' % ep.JOB)
        self.assertEqual([v for _, v in up], [1.0])

    def test_cerebras_series_stored_with_their_labels(self):
        # Every family of the upstream, each with ENDPOINTS endpoints.
        # (Recording rule results carry job and organization_id too: select by name.)
        selector = '{__name__=~"%s", job="%s"}' % ("|".join(harness.FAMILIES), ep.JOB)
        counts = dict((l["__name__"], v) for l, v in self.prom.query(
            "count by (__name__) (%s)" % selector))
        per_endpoint = {"requests_failure_total": 2}
        per_endpoint.update((f, len(harness.STATS)) for f in LATENCY_FAMILIES)
        self.assertEqual(counts, {f: float(ENDPOINTS * per_endpoint.get(f, 1))
                                  for f in harness.FAMILIES})

        truth = self.recent_truth()
        stored = self.prom.query(selector)
        names = set()
        for labels, v in stored:
            # honor_labels: the upstream's labels kept their names, no exported_*.
            self.assertFalse([k for k in labels if k.startswith("exported_")], labels)
            self.assertEqual(labels["instance"], self.target)
            self.assertEqual(labels["organization_id"], harness.ORG)
            self.assertIn(labels["endpoint"],
                          [harness.endpoint_name(e) for e in range(ENDPOINTS)])
            key = ep.series_key(labels)
            names.add(key[0])
            self.assertIn(key, truth, "unexpected series %r" % labels)
            self.assertIn(v, truth[key], "%r = %r is no recent window's value" % (labels, v))
        self.assertEqual(names, set(harness.FAMILIES))

        codes = sorted(l["http_code"] for l, _ in self.prom.query(
            'requests_failure_total{endpoint="%s"}' % harness.endpoint_name(0)))
        self.assertEqual(codes, ["429", "500"])
        stats = sorted(l[self.LABEL] for l, _ in self.prom.query(
            'ttft_seconds{endpoint="%s"}' % harness.endpoint_name(0)))
        self.assertEqual(stats, sorted(harness.STATS))

    def test_self_metrics_stored(self):
        q = self.prom.query
        self.assertEqual([v for _, v in q('cerebras_proxy_upstream_up{upstream="default"}')], [1.0])
        self.assertEqual(len(q("cerebras_proxy_build_info == 1")), 1)
        self.prom.wait_query('cerebras_proxy_upstream_requests_total{upstream="default",code="200"} > 0')
        self.prom.wait_query('cerebras_proxy_scrapes_total > 0')
        for name in ("cerebras_proxy_upstream_last_success_timestamp_seconds",
                     "cerebras_proxy_snapshot_age_seconds",
                     "cerebras_proxy_rate_limit_remaining",
                     "cerebras_proxy_upstream_request_duration_seconds_count",
                     "cerebras_proxy_upstream_parse_errors_total"):
            r = q('%s{upstream="default"}' % name)
            self.assertEqual(len(r), 1, "%s: %r" % (name, r))
        last = q('cerebras_proxy_upstream_last_success_timestamp_seconds{upstream="default"}')[0][1]
        self.assertLess(abs(time.time() - last), 120)
        for name in ("process_resident_memory_bytes", "process_cpu_seconds_total",
                     "process_open_fds", "process_start_time_seconds"):
            self.assertEqual(len(q('%s{job="%s"}' % (name, ep.JOB))), 1, name)

    def test_recording_rules_produce_values(self):
        q = self.prom.query
        for rule in RECORDING_RULES:
            r = q(rule)
            self.assertTrue(r, "%s has no value" % rule)
            for labels, _ in r:
                self.assertEqual(labels.get("job"), ep.JOB, (rule, labels))
                self.assertEqual(labels.get("organization_id"), harness.ORG, (rule, labels))
                self.assertIn(labels.get("endpoint"),
                              [harness.endpoint_name(e) for e in range(ENDPOINTS)], (rule, labels))

        def get(vals, name, labels, **extra):
            base = {"endpoint": labels["endpoint"], "organization_id": labels["organization_id"]}
            base.update(extra)
            return vals.get((name, frozenset(base.items())))

        self.assert_plausible("endpoint:cerebras_requests:per_second",
                              q("endpoint:cerebras_requests:per_second"),
                              lambda vals, l: get(vals, "requests_count_total", l) / 60)
        self.assert_plausible("endpoint:cerebras_requests_success:ratio",
                              q("endpoint:cerebras_requests_success:ratio"),
                              lambda vals, l: get(vals, "requests_success_total", l)
                              / get(vals, "requests_count_total", l))
        self.assert_plausible("endpoint:cerebras_output_tokens:per_second",
                              q("endpoint:cerebras_output_tokens:per_second"),
                              lambda vals, l: get(vals, "output_tokens_total", l) / 60)
        codes = q("endpoint_http_code:cerebras_requests_failure:ratio")
        self.assertEqual(sorted({l["http_code"] for l, _ in codes}), ["429", "500"])
        self.assert_plausible("endpoint_http_code:cerebras_requests_failure:ratio", codes,
                              lambda vals, l: get(vals, "requests_failure_total", l,
                                                  http_code=l["http_code"])
                              / get(vals, "requests_count_total", l))
        self.assert_latency_rules()

        # The rules evaluate without errors, and nothing fires on a healthy setup.
        groups = self.prom.api("rules")["groups"]
        self.assertEqual(sorted(g["name"] for g in groups), ["cerebras-alerts", "cerebras-recording"])
        for g in groups:
            for r in g["rules"]:
                self.assertEqual(r["health"], "ok", r)
        firing = [a for a in self.prom.api("alerts")["alerts"] if a["state"] == "firing"]
        self.assertEqual(firing, [])

    def assert_latency_rules(self):
        q = self.prom.query
        for fam in LATENCY_FAMILIES:
            rule = "endpoint_statistic:cerebras_%s:normalized" % fam
            r = q(rule)
            self.assertEqual(len(r), ENDPOINTS * len(harness.STATS), (rule, r))
            for labels, _ in r:
                self.assertIn(labels.get("statistic"), harness.STATS, (rule, labels))
                self.assertNotIn("percentile", labels, (rule, labels))

        def stat(fam, s):
            def derive(vals, l):
                return vals.get((fam, frozenset({"endpoint": l["endpoint"],
                                                 "organization_id": l["organization_id"],
                                                 self.LABEL: s}.items())))
            return derive

        for fam, s in (("ttft_seconds", "p95"), ("ttft_seconds", "p99"),
                       ("e2e_latency_seconds", "p95"), ("e2e_latency_seconds", "p99"),
                       ("queue_time_seconds", "p95")):
            rule = "endpoint:cerebras_%s:%s" % (fam, s)
            r = q(rule)
            self.assertEqual(len(r), ENDPOINTS, (rule, r))
            for labels, _ in r:
                self.assertNotIn("statistic", labels)
                self.assertNotIn("percentile", labels)
            self.assert_plausible(rule, r, stat(fam, s))


class PrometheusScrapesDaemonStatisticTest(_PrometheusScrape, unittest.TestCase):
    LABEL = "statistic"


class PrometheusScrapesDaemonPercentileTest(_PrometheusScrape, unittest.TestCase):
    """The API reference's label name: the normalized rules still give `statistic`."""

    LABEL = "percentile"

    def test_raw_series_keep_percentile(self):
        r = self.prom.query('ttft_seconds{endpoint="%s"}' % harness.endpoint_name(0))
        self.assertEqual(sorted(l.get("percentile") for l, _ in r), sorted(harness.STATS))
        self.assertTrue(all("statistic" not in l for l, _ in r), r)


if __name__ == "__main__":
    ep.skip_without_prometheus()
    harness.main()
