#!/usr/bin/env python3
"""deploy/grafana-cloud/config.alloy, with Prometheus standing in for Alloy
and for Grafana Cloud: what the Alloy file configures arrives, each window
once, behind basic auth.

Neither Alloy nor Grafana Cloud can run here. Prometheus 2.42 in agent mode
does what the Alloy file does (its job, scrape, external labels and
remote_write with basic auth and a password_file are read from config.alloy,
sys.env() and coalesce() evaluated with this test's environment), and a
second Prometheus with --web.enable-remote-write-receiver, behind an
exporter-toolkit web config with a bcrypt basic_auth_users entry, plays
Grafana Cloud's remote-write endpoint. The differences, for speed: 3 s
windows and a 1 s scrape interval instead of 60 s, and a 1 s
batch_send_deadline.

Checks: a write without the credentials is refused (401); the daemon's
`timestamps: window` samples are stored at the receiver once per window per
series, at the window's end, with the values the simulated API served for
that window, no window missing; the external labels arrive;
prometheus_remote_storage_samples_failed_total stays 0. Prints the active
series and samples per minute per Cerebras endpoint, measured (README.md of
deploy/grafana-cloud has the table).

    python3 grafana_cloud_e2e_test.py --daemon D --mock M --repo R
"""

import http.client as httpclient
import os
import socket
import sys
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import e2e_prometheus as ep  # noqa: E402
from docker_drift_test import Alloy  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import crypt   # bcrypt for the receiver's basic_auth_users (Python < 3.13)
    except ImportError:
        print("skip: Python's crypt module is gone (3.13+): no bcrypt hash for the web config",
              file=sys.stderr)
        sys.exit(77)

WINDOW = 3
W_MS = WINDOW * 1000
ENDPOINTS = 2
WINDOWS = 8          # windows that must arrive end to end
USER = "123456"      # a Grafana Cloud stack's Prometheus user is a number


def evaluate(value, env):
    """An Alloy expression of config.alloy, evaluated: the functions it uses."""
    if isinstance(value, tuple) and value[0] == "call":
        args = [evaluate(a, env) for a in value[2]]
        if value[1] == "sys.env":
            return env.get(args[0], "")
        if value[1] == "coalesce":
            return next((a for a in args if a not in ("", None, [], {})), args[-1])
        raise AssertionError("config.alloy calls %s(): teach this test what it does" % value[1])
    if isinstance(value, tuple) and value == ("ref", "constants.hostname"):
        return socket.gethostname()
    if isinstance(value, list):
        return [evaluate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: evaluate(v, env) for k, v in value.items()}
    return value


def agent_config(path, env):
    """(scrape job, remote_write entry, external labels) of the Alloy file."""
    with open(path) as f:
        blocks = Alloy(f.read(), path).parse()
    scrapes = [attrs for name, _, (_, attrs) in blocks if name == "prometheus.scrape"]
    writes = [body for name, _, body in blocks if name == "prometheus.remote_write"]
    assert len(scrapes) == 1 and len(writes) == 1, "one scrape and one remote_write expected"
    s = evaluate(scrapes[0], env)
    job = {"job_name": s["job_name"], "honor_labels": s["honor_labels"],
           "honor_timestamps": s["honor_timestamps"], "scrape_interval": "1s", "scrape_timeout": "1s",
           "static_configs": [{"targets": [t["__address__"] for t in s["targets"]]}]}
    inner, attrs = writes[0]
    endpoints = [(b, a) for n, _, (b, a) in inner if n == "endpoint"]
    assert len(endpoints) == 1, endpoints
    blocks_, e = endpoints[0]
    auth = [evaluate(a, env) for n, _, (_, a) in blocks_ if n == "basic_auth"]
    rw = {"url": evaluate(e["url"], env), "queue_config": {"batch_send_deadline": "1s"}}
    if auth:
        rw["basic_auth"] = auth[0]
    return job, rw, evaluate(attrs.get("external_labels", {}), env)


class GrafanaCloudTest(unittest.TestCase):
    def test_alloy_remote_write_with_basic_auth(self):
        ep.skip_without_prometheus()
        ws = harness.Workspace(prefix="cmp-e2e-gc-")
        mock = harness.Mock(ws, window="%ds" % WINDOW, endpoints=ENDPOINTS, rate_limit=6, rate_window="10s")
        up = harness.upstream_cfg(mock, interval="%ds" % WINDOW, requests=6, window="10s",
                                  timestamps="window")
        daemon = harness.Daemon(ws, {"upstreams": [up]})
        self.addCleanup(mock.stop)
        self.addCleanup(daemon.stop)

        secrets = ws.subdir("secrets")
        token = "glc_e2e_" + os.urandom(8).hex()
        token_file = os.path.join(secrets, "token")
        with open(token_file, "w") as f:
            f.write(token + "\n")
        os.chmod(token_file, 0o600)
        web = os.path.join(secrets, "web.yml")
        with open(web, "w") as f:
            # Cost 5: the receiver checks the hash for every write.
            f.write('basic_auth_users:\n  %s: "%s"\n'
                    % (USER, crypt.crypt(token, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32))))
        receiver = ep.Prometheus(ws, scrape_configs=[], basic_auth=(USER, token),
                                 args=["--web.enable-remote-write-receiver", "--web.config.file=" + web])
        self.addCleanup(receiver.stop)
        c = httpclient.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
        c.request("POST", "/api/v1/write", body=b"", headers={"Content-Type": "application/x-protobuf"})
        self.assertEqual(c.getresponse().status, 401, "a write without credentials must be refused")
        c.close()

        env = {"CEREBRAS_PROXY_ADDRESS": "127.0.0.1:%d" % daemon.port,
               "GRAFANA_CLOUD_PROMETHEUS_URL": "http://127.0.0.1:%d/api/v1/write" % receiver.port,
               "GRAFANA_CLOUD_PROMETHEUS_USER": USER, "GRAFANA_CLOUD_TOKEN_FILE": token_file,
               "CLUSTER": "e2e", "POD_NAME": "cerebras-metrics-proxy-sidecar-0"}
        job, rw, external = agent_config(os.path.join(harness.REPO, "deploy/grafana-cloud/config.alloy"), env)
        self.assertEqual(rw["basic_auth"]["password_file"], token_file)
        agent = ep.Prometheus(ws, scrape_configs=[job], remote_write=[rw], agent=True,
                              external_labels=external)
        self.addCleanup(agent.stop)

        def fetched():
            return sorted((r["t"], r["window"]) for r in mock.api_requests() if r["status"] == 200)
        # Prometheus scrapes a new target after up to 5 s (its scrape manager
        # applies target changes every 5 s): count from the agent's first scrape.
        first_scrape = harness.wait_until(lambda: harness.total(agent.own_metrics(), "prometheus_target_interval_length_seconds_count") > 0 and time.time(),
                                          30, "the agent's first scrapes", 0.25)
        harness.wait_until(lambda: len([w for t, w in fetched() if t > first_scrape]) >= WINDOWS + 1,
                           (WINDOWS + 6) * WINDOW, "%d windows fetched and scraped" % WINDOWS, 0.25)
        # Every window served while the agent scraped (1 s interval, a window
        # is served 3 s); the last may not be sent yet.
        required = [w for t, w in fetched() if t > first_scrape][:-1]
        at = time.time() + 3
        harness.wait_until(lambda: time.time() > at, 10, "the last batch sent")

        self.check_windows(receiver, mock, required)

        own = agent.own_metrics()
        failed = harness.total(own, "prometheus_remote_storage_samples_failed_total")
        sent = harness.total(own, "prometheus_remote_storage_samples_total")
        self.assertEqual(failed, 0)
        self.assertGreater(sent, 0)
        self.report(receiver, sent, len(required))

    def check_windows(self, receiver, mock, required):
        """Every required window once per series, at its end, with the API's value."""
        stored = {}
        for labels, samples in receiver.raw_samples('{organization_id="%s"}' % harness.ORG, "10m").items():
            labels = dict(labels)
            self.assertEqual((labels.pop("cluster"), labels.pop("__replica__")),
                             ("e2e", "cerebras-metrics-proxy-sidecar-0"))
            stored[ep.series_key(labels)] = samples
        truth = {w: {(s.name, frozenset(s.labels.items())): s.value
                     for s in harness.parse_prom(mock.window_body(w))} for w in required}
        self.assertEqual(set(stored), set(truth[required[-1]]), "the series of the last window")
        for key, samples in stored.items():
            stamps = [t for t, _ in samples]
            self.assertEqual(len(stamps), len(set(stamps)), "%r: a window stored twice" % (key,))
            by_window = {t // W_MS - 1: v for t, v in samples}
            self.assertTrue(all(t % W_MS == 0 for t in stamps), "%r: not at window ends: %r" % (key, stamps))
            for w in required:
                self.assertIn(w, by_window, "%r: window %d missing (stored %r)" % (key, w, sorted(by_window)))
                self.assertEqual(by_window[w], truth[w][key], "%r, window %d" % (key, w))

    def report(self, receiver, sent, windows):
        """Active series and samples per minute, per Cerebras endpoint and for
        the daemon's own series, measured at the receiver."""
        per_endpoint = {m["endpoint"]: v for m, v in receiver.query(
            'count by (endpoint) ({organization_id="%s"})' % harness.ORG)}
        own = receiver.query('count({job="%s", organization_id=""})' % ep.JOB)[0][1]
        scrapes = receiver.query('count_over_time(up{job="%s"}[10m])' % ep.JOB)[0][1]
        self.assertEqual(len(per_endpoint), ENDPOINTS)
        # Every scrape sends every series again (agent mode keeps a sample
        # with the timestamp it already has); the store keeps one per window.
        per_scrape = sum(per_endpoint.values()) + own
        # (Within 10 %: the two counts are read a moment apart, a scrape or two may be in flight.)
        self.assertAlmostEqual(sent / scrapes, per_scrape, delta=per_scrape * 0.1)
        series = max(per_endpoint.values())
        print("\nmeasured: %d scrapes, %d windows, %.0f samples sent (%.1f per scrape)"
              % (scrapes, windows, sent, sent / scrapes))
        print("| | per Cerebras endpoint | daemon's own + scrape series |")
        print("|---|---|---|")
        print("| active series | %d | %d |" % (series, own))
        print("| samples sent per minute, scrape_interval 60s | %d | %d |" % (series, own))
        print("| samples sent per minute, scrape_interval 15s | %d | %d |" % (4 * series, 4 * own))
        print("| samples stored per minute, 15s, timestamps: window | %d | %d |" % (series, 4 * own))


if __name__ == "__main__":
    harness.main()
