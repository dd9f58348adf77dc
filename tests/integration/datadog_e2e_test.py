#!/usr/bin/env python3
"""deploy/datadog/: what the Datadog Agent's OpenMetrics check would read.

The check parses /metrics with prometheus_client's text parser (Debian's
python3-prometheus-client). The daemon runs with `derived_counters: true`,
as the README tells Datadog users, against the simulated API; one scrape is
parsed and compared with conf.yaml and with the API:
  * every family of the scrape parses, and none falls apart into untyped
    singletons (what this parser does to samples that do not fit their TYPE);
  * every metric conf.yaml names exists with the type conf.yaml gives it
    (counter families under the parser's names, without `_total`);
  * the Cerebras gauges hold the simulated API's values of the window served
    (the samples' `timestamps: window` stamps name it; Datadog ignores
    timestamps, the parser keeps them);
  * the derived counters hold the sum of every window fetched so far;
  * deployment-patch.yaml's autodiscovery annotation is conf.yaml's instance
    with %%host%% in the URL, for the Deployment's container.

    python3 datadog_e2e_test.py --daemon D --mock M --repo R
"""

import json
import os
import sys
import unittest

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # Debian's python3-prometheus-client is installed for Debian's python3;
    # ctest may have found another one first (pyenv).
    if sys.executable != "/usr/bin/python3" and os.access("/usr/bin/python3", os.X_OK):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("skip: prometheus_client is missing (apt-get install python3-prometheus-client)", file=sys.stderr)
    sys.exit(77)
try:
    import yaml
except ImportError:
    print("skip: python3-yaml is missing", file=sys.stderr)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

WINDOW = 3
W_MS = WINDOW * 1000
GAUGES = ["inference_endpoint_status", "requests_count_total", "requests_success_total",
          "requests_failure_total", "input_tokens_total", "output_tokens_total", "cache_rate",
          "ttft_seconds", "tpot_seconds", "e2e_latency_seconds", "queue_time_seconds"]


def load(name):
    with open(os.path.join(harness.REPO, "deploy", "datadog", name)) as f:
        return yaml.safe_load(f)


def expected_types(instance):
    """{family name as the parser gives it: type} from the instance's `metrics`."""
    out = {}
    for entry in instance["metrics"]:
        for raw, target in entry.items():
            out[raw] = target["type"]
    return out


class DatadogTest(unittest.TestCase):
    def test_openmetrics_check_reads_the_conf_types_and_the_api_values(self):
        conf = load("conf.yaml")
        instance = conf["instances"][0]
        self.assertEqual(instance["min_collection_interval"], 60)
        self.assertIs(instance["tag_by_endpoint"], False)
        types = expected_types(instance)

        ws = harness.Workspace(prefix="cmp-e2e-dd-")
        mock = harness.Mock(ws, window="%ds" % WINDOW, endpoints=2, rate_limit=6, rate_window="10s")
        up = harness.upstream_cfg(mock, interval="%ds" % WINDOW, requests=6, window="10s",
                                  timestamps="window", derived_counters=True)
        daemon = harness.Daemon(ws, {"upstreams": [up]})
        self.addCleanup(mock.stop)
        self.addCleanup(daemon.stop)
        # Three windows in the counters, so that a sum is a sum.
        harness.wait_until(lambda: len({r["window"] for r in mock.api_requests() if r["status"] == 200}) >= 3,
                           8 * WINDOW, "three windows fetched")
        text = daemon.metrics_text()
        fetched = sorted({r["window"] for r in mock.api_requests() if r["status"] == 200})

        families = {f.name: f for f in text_string_to_metric_families(text)}
        declared = harness.families(text)
        self.assertEqual(len(families), len(declared), "a family fell apart into untyped singletons: %r"
                         % sorted(set(families) - {n[:-6] if n.endswith("_total") and declared[n] == "counter"
                                                   else n for n in declared}))
        for name, typ in types.items():
            self.assertIn(name, families, "conf.yaml names %s, the scrape has no such family" % name)
            self.assertEqual(families[name].type, typ, name)

        stamps = {s.timestamp for n in GAUGES for s in families[n].samples}
        self.assertEqual(len(stamps), 1, stamps)
        w = int(stamps.pop() * 1000) // W_MS - 1
        self.assertIn(w, fetched)
        truth = {}
        for v in range(fetched[0], w + 1):
            if v in fetched:
                truth[v] = {(s.name, frozenset(s.labels.items())): s.value
                            for s in harness.parse_prom(mock.window_body(v))}
        got = {(s.name, frozenset(s.labels.items())): s.value for n in GAUGES for s in families[n].samples}
        self.assertEqual(got, truth[w])

        for gauge in ("requests_count_total", "requests_success_total", "requests_failure_total",
                      "input_tokens_total", "output_tokens_total"):
            counter = families["cerebras_proxy_cumulative_" + gauge[:-6]]
            for s in counter.samples:
                key = (gauge, frozenset(s.labels.items()))
                want = sum(t.get(key, 0.0) for t in truth.values())
                self.assertEqual(s.value, want, "%s%r: the sum of windows %r" % (s.name, s.labels, sorted(truth)))

        patch = load("deployment-patch.yaml")
        (key, value), = patch["spec"]["template"]["metadata"]["annotations"].items()
        with open(os.path.join(harness.REPO, "deploy/kubernetes/standalone/deployment.yaml")) as f:
            container = yaml.safe_load(f)["spec"]["template"]["spec"]["containers"][0]["name"]
        self.assertEqual(key, "ad.datadoghq.com/%s.checks" % container)
        annotated = json.loads(value)["openmetrics"]
        self.assertEqual(annotated["init_config"], {})
        self.assertEqual(annotated["instances"],
                         [dict(instance, openmetrics_endpoint="http://%%host%%:9753/metrics")])


if __name__ == "__main__":
    harness.main()
