#!/usr/bin/env python3
"""A real Prometheus server for the end-to-end suites (stdlib only).

    import harness, e2e_prometheus as ep
    ep.skip_without_prometheus()                 # exit 77 when /usr/bin/prometheus is missing
    prom = ep.Prometheus(ws, targets=["127.0.0.1:%d" % daemon.port],
                         rule_files=[ep.rules_file()])
    prom.wait_target_up()
    prom.query('requests_count_total')           # instant vector -> [(labels, value)]
    prom.raw_samples('requests_count_total', "5m", at=t)   # stored samples with timestamps

Prometheus cannot listen on port 0, so a free port is picked by binding a
socket to 127.0.0.1:0 and closing it; a start that loses the port to
someone else is retried on another one. Its TSDB lives in the workspace, so
every run starts from an empty head (explicit timestamps from a previous run
can never make samples out of bounds). The process is registered with the
harness, so it is killed at exit like the daemon and the mock.
"""

import base64
import http.client as httpclient
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse

import harness

PROMETHEUS = "/usr/bin/prometheus"
JOB = "cerebras-metrics-proxy"   # the job name the shipped alerts expect


def skip_without_prometheus():
    if not os.access(PROMETHEUS, os.X_OK):
        print("skip: %s is missing (apt-get install prometheus)" % PROMETHEUS, file=sys.stderr)
        sys.exit(77)


def rules_file():
    return os.path.join(harness.REPO, "config", "prometheus", "rules", "cerebras.rules.yml")


def _q(s):
    return json.dumps(str(s))   # a JSON string is a valid YAML double-quoted scalar


class Prometheus:
    """Debian's prometheus on 127.0.0.1:<free port>, scraping `targets` as job
    cerebras-metrics-proxy with honor_labels: true.

    scrape_interval/evaluation_interval "1s" by default; honor_timestamps as
    given (Prometheus' default is true). For other setups:
      scrape_configs   a list of jobs (dicts) instead of that one job
      remote_write     a list of remote_write entries (dicts)
      agent=True       agent mode (--enable-feature=agent: scrape and
                       remote-write only, no queries, no rules)
      args             more command-line flags (e.g. --web.config.file=...)
      basic_auth       (user, password) this test's own requests send
      external_labels  a dict for global.external_labels"""

    def __init__(self, ws, targets=(), rule_files=(), scrape_interval="1s",
                 evaluation_interval="1s", honor_timestamps=True, attempts=5,
                 scrape_configs=None, remote_write=None, agent=False, args=(),
                 basic_auth=None, external_labels=None):
        self.ws = ws
        self.dir = ws.subdir("prometheus")
        self.data = os.path.join(self.dir, "data")
        self.config_path = os.path.join(self.dir, "prometheus.yml")
        self.targets = list(targets)
        self.agent = agent
        self.args = list(args)
        self.scrape_configs, self.remote_write = scrape_configs, remote_write
        self.external_labels = external_labels
        self.auth = None
        if basic_auth is not None:
            token = base64.b64encode(("%s:%s" % basic_auth).encode()).decode()
            self.auth = {"Authorization": "Basic " + token}
        with open(self.config_path, "w") as f:
            f.write(self._config(rule_files, scrape_interval, evaluation_interval,
                                 honor_timestamps))
        self.proc = None
        self.port = None
        self.starts = 0
        last = ""
        for _ in range(attempts):
            if self._start():
                return
            last = self.log_text()
            if "address already in use" not in last:
                break
        raise AssertionError("prometheus did not start:\n" + last[-4000:])

    def _config(self, rule_files, scrape_interval, evaluation_interval, honor_timestamps):
        lines = [
            "global:",
            "  scrape_interval: %s" % scrape_interval,
            "  scrape_timeout: %s" % scrape_interval,
        ]
        if self.external_labels:
            lines.append("  external_labels: " + json.dumps(self.external_labels))
        if not self.agent:
            lines.append("  evaluation_interval: %s" % evaluation_interval)
        if rule_files:
            lines.append("rule_files:")
            lines += ["  - %s" % _q(r) for r in rule_files]
        if self.remote_write is not None:
            lines.append("remote_write: " + json.dumps(self.remote_write))   # JSON is YAML
        if self.scrape_configs is not None:
            return "\n".join(lines + ["scrape_configs: " + json.dumps(self.scrape_configs)]) + "\n"
        lines += [
            "scrape_configs:",
            "  - job_name: %s" % JOB,
            "    honor_labels: true",
            "    honor_timestamps: %s" % ("true" if honor_timestamps else "false"),
            "    metrics_path: /metrics",
            "    static_configs:",
            "      - targets: [%s]" % ", ".join(_q(t) for t in self.targets),
        ]
        return "\n".join(lines) + "\n"

    def _start(self):
        self.starts += 1
        self.port = harness.free_port()
        self.log_path = os.path.join(self.dir, "stderr-%d.log" % self.starts)
        self._log = open(self.log_path, "wb")
        storage = (["--enable-feature=agent", "--storage.agent.path=" + self.data] if self.agent else
                   ["--storage.tsdb.path=" + self.data, "--storage.tsdb.retention.time=1d"])
        cmd = [PROMETHEUS,
               "--config.file=" + self.config_path] + storage + [
               "--web.listen-address=127.0.0.1:%d" % self.port,
               "--web.enable-lifecycle",
               "--log.level=debug"] + self.args
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=self._log,
                                     stdin=subprocess.DEVNULL, cwd=self.dir)
        harness._register(self.proc)

        def ready_or_exited():
            if self.proc.poll() is not None:
                return "exited"
            try:
                return self._get("/-/ready", timeout=2)[0] == 200 and "ready"
            except OSError:
                return False
        if harness.wait_until(ready_or_exited, 60, "prometheus /-/ready", 0.2) == "ready":
            return True
        self._log.close()
        return False

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20 * harness.SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    # -- HTTP API
    def _get(self, path, timeout=10):
        c = httpclient.HTTPConnection("127.0.0.1", self.port, timeout=timeout * harness.SLOW)
        try:
            c.request("GET", path, headers=self.auth or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def api(self, path, **params):
        """GET /api/v1/<path>?params; returns `data`, raises on an error answer."""
        q = urllib.parse.urlencode(params)
        status, body = self._get("/api/v1/%s%s" % (path, "?" + q if q else ""))
        doc = json.loads(body)
        if status != 200 or doc.get("status") != "success":
            raise AssertionError("prometheus %s %r: %d %s" % (path, params, status, body[:500]))
        return doc["data"]

    def query(self, expr, at=None):
        """Instant query of a vector: [(labels dict, float value)]."""
        params = {"query": expr}
        if at is not None:
            params["time"] = "%.3f" % at
        data = self.api("query", **params)
        if data["resultType"] != "vector":
            raise AssertionError("%s: %s, not a vector" % (expr, data["resultType"]))
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def raw_samples(self, selector, rng, at=None):
        """The samples stored for `selector` in (at - rng, at]: the range-vector
        selector in an instant query returns them as written, with their own
        timestamps (query_range would resample at its step instead).
        Returns {frozenset(labels.items()): [(timestamp_ms, value), ...]}."""
        params = {"query": "%s[%s]" % (selector, rng)}
        if at is not None:
            params["time"] = "%.3f" % at
        data = self.api("query", **params)
        if data["resultType"] != "matrix":
            raise AssertionError("%s: %s, not a matrix" % (selector, data["resultType"]))
        out = {}
        for r in data["result"]:
            out[frozenset(r["metric"].items())] = [
                (int(round(float(t) * 1000)), float(v)) for t, v in r["values"]]
        return out

    def targets_active(self):
        return self.api("targets", state="active")["activeTargets"]

    def wait_target_up(self, timeout=60):
        def up():
            ts = [t for t in self.targets_active() if t["labels"].get("job") == JOB]
            return ts and all(t["health"] == "up" for t in ts) and ts
        return harness.wait_until(up, timeout, "prometheus target %s up" % JOB, 0.25)

    def wait_query(self, expr, timeout=60, pred=bool, what=None):
        """Waits until pred(query(expr)); returns the last result."""
        box = {}

        def ok():
            box["r"] = self.query(expr)
            return pred(box["r"])
        harness.wait_until(ok, timeout, what or "prometheus query %r" % expr, 0.25)
        return box["r"]

    def own_metrics(self):
        """Prometheus' own /metrics (not stored: read directly), parsed."""
        status, body = self._get("/metrics")
        assert status == 200, status
        return harness.parse_prom(body.decode())

    def ingest_errors(self):
        """Samples Prometheus rejected while scraping, by reason (its own counters)."""
        s = self.own_metrics()
        names = {
            "out_of_order": "prometheus_target_scrapes_sample_out_of_order_total",
            "duplicate_timestamp": "prometheus_target_scrapes_sample_duplicate_timestamp_total",
            "out_of_bounds": "prometheus_target_scrapes_sample_out_of_bounds_total",
        }
        return {k: harness.total(s, n) for k, n in names.items()}


def series_key(labels, drop=("job", "instance")):
    """(name, frozenset(labels)) without the target labels, as harness.expected_values keys."""
    d = dict(labels)
    name = d.pop("__name__", None)
    for k in drop:
        d.pop(k, None)
    return name, frozenset(d.items())
