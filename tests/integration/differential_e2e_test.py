#!/usr/bin/env python3
"""Differential suite: the daemon takes exactly what Prometheus takes.

Every body of tests/data/differential (plus a ~2 MB one made here) is served
by a small HTTP server on 127.0.0.1 with the Content-Type, gzip and chunked
framing that cases.json gives it. One Debian Prometheus scrapes every case
twice: directly (job "direct", target label `case`) and through one daemon
that has one upstream per case, each adding the label `case` (job "daemon",
the daemon's whole /metrics: one target, so also the daemon's own). Asserted:
  - a case Prometheus ingests directly arrives through the daemon with the
    same series, values and explicit timestamps;
  - a case Prometheus refuses is refused by the daemon (upstream_up 0, a parse
    error counted), and no series of it is served;
  - the daemon's own target stays up.
The verdicts are printed as a table (case, Prometheus direct, daemon).

`@NOW_MS@` / `@NOW_S@` in a body become the server's start time in
milliseconds / seconds, so explicit timestamps are recent enough to be stored.
Metric names are served prefixed with the case's name: the daemon serves all
upstreams as one exposition, where a family name with two types keeps only
the first (different organizations of one API never disagree; these cases do).
"""

import gzip
import http.server
import json
import os
import re
import socketserver
import sys
import threading
import time
import unittest
import urllib.parse

import harness
import e2e_prometheus as ep

SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
             "scrape_samples_post_metric_relabeling", "scrape_series_added"}
TEXT_CT = "text/plain; version=0.0.4; charset=utf-8"


_NAME_AT = re.compile(rb"^([ \t]*(?:#[ \t]+(?:HELP|TYPE|UNIT)[ \t]+)?)([a-zA-Z_:][a-zA-Z0-9_:]*)",
                      re.M)


def prefixed(case, body):
    """Every sample and metadata line's metric name, prefixed with `case_`."""
    return _NAME_AT.sub(lambda m: m.group(1) + case.encode() + b"_" + m.group(2), body)


def load_cases(now_ms):
    d = os.path.join(harness.REPO, "tests", "data", "differential")
    with open(os.path.join(d, "cases.json")) as f:
        meta = json.load(f)
    cases = {}
    for name, m in sorted(meta.items()):
        with open(os.path.join(d, name + ".prom"), "rb") as f:
            body = f.read()
        body = body.replace(b"@NOW_MS@", str(now_ms).encode()).replace(
            b"@NOW_S@", str(now_ms // 1000).encode())
        cases[name] = dict(m, body=prefixed(name, body))
    # ~2 MB: the Cerebras shape, many endpoints, in one block per endpoint
    # (each block repeats HELP/TYPE, as a per-endpoint aggregator would).
    lines = []
    for e in range(2600):
        for fam in ("requests_count_total", "output_tokens_total", "ttft_seconds"):
            lines.append("# HELP %s Per-endpoint %s.\n# TYPE %s gauge\n" % (fam, fam, fam))
            for stat in ("avg", "p50", "p90"):
                lines.append('%s{endpoint="model-%d-llama-3.3-70b",organization_id="org_abc123",'
                             'statistic="%s"} %d.%d\n' % (fam, e, stat, e, len(stat)))
    cases["large_2mb_repeated_blocks"] = {"content_type": TEXT_CT, "gzip": True, "chunked": True,
                                          "body": "".join(lines).encode()}
    return cases


class CaseServer:
    """Serves /case/NAME on 127.0.0.1:<free port>; HTTP/1.1, one response per connection."""

    def __init__(self, cases):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                name = urllib.parse.urlparse(self.path).path.rsplit("/", 1)[-1]
                c = outer.cases.get(name)
                if c is None:
                    self.send_error(404)
                    return
                body = gzip.compress(c["body"]) if c["gzip"] else c["body"]
                self.send_response(200)
                if c["content_type"] is not None:
                    self.send_header("Content-Type", c["content_type"])
                if c["gzip"]:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Connection", "close")
                if c["chunked"]:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(body), 7000):
                        part = body[i:i + 7000]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            # Prometheus scrapes the 60-odd targets close together; the
            # default backlog of 5 dropped connections on a loaded machine
            # (a SYN retransmit outlasts the 4 s scrape timeout: up == 0).
            request_queue_size = 256

            def handle_error(self, request, client_address):
                pass  # a scraper that gave up (timeout) is not the server's problem

        self.cases = cases
        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name):
        return "http://127.0.0.1:%d/case/%s" % (self.port, name)


class DifferentialPrometheus(ep.Prometheus):
    """Two jobs: each case directly, and the daemon (all cases, and its own metrics)."""

    def __init__(self, ws, server, daemon_port, names):
        self.server, self.daemon_port, self.names = server, daemon_port, names
        self.explicit = set()  # the timestamps the bodies carry
        super().__init__(ws, targets=[], scrape_interval="2s")

    def _config(self, rule_files, scrape_interval, evaluation_interval, honor_timestamps):
        q = ep._q
        lines = ["global:", "  scrape_interval: 5s", "  scrape_timeout: 4s",
                 "  evaluation_interval: 5s", "scrape_configs:",
                 "  - job_name: direct", "    static_configs:"]
        for n in self.names:
            lines += ["      - targets: [%s]" % q("127.0.0.1:%d" % self.server.port),
                      "        labels: {__metrics_path__: %s, case: %s}" % (q("/case/" + n), q(n))]
        lines += ["  - job_name: daemon", "    static_configs:",
                  "      - targets: [%s]" % q("127.0.0.1:%d" % self.daemon_port)]
        return "\n".join(lines) + "\n"

    def stored(self, job):
        """{case: {series key: ({values as text}, {timestamps ms})}} of every sample stored for `job`."""
        status, body = self._get("/api/v1/query?" + urllib.parse.urlencode(
            {"query": '{job="%s"}[10m]' % job}), timeout=60)
        doc = json.loads(body)
        assert status == 200 and doc["status"] == "success", body[:300]
        out = {}
        for r in doc["data"]["result"]:
            labels = dict(r["metric"])
            if labels.get("__name__") in SYNTHETIC:
                continue
            case = labels.pop("case", None)
            if case is None:
                continue  # the daemon's own metrics
            for k in ("job", "instance"):
                labels.pop(k, None)
            key = frozenset(labels.items())
            vals = {v for _, v in r["values"]}
            # Scrape times differ between the jobs; explicit ones must not.
            stamps = {int(round(float(t) * 1000)) for t, _ in r["values"]} & self.explicit
            out.setdefault(case, {})[key] = (vals, stamps)
        return out

    def up(self, job):
        """1 for a target with at least one successful scrape in the last
        minute: a body Prometheus refuses never has one, and one scrape lost
        to a busy machine must not look like a refusal."""
        return {labels.get("case"): v
                for labels, v in self.query('max_over_time(up{job="%s"}[1m])' % job)}


class Differential(unittest.TestCase):
    def test_daemon_takes_exactly_what_prometheus_takes(self):
        ep.skip_without_prometheus()
        now_ms = int(time.time() * 1000)
        cases = load_cases(now_ms)
        self.assertGreaterEqual(len(cases), 40)
        names = sorted(cases)
        server = CaseServer(cases)
        ws = harness.Workspace()
        ups = [harness.upstream_cfg(name=n, url=server.url(n), interval="60s", offset="1s",
                                    timeout="10s", ca_file="", extra_labels={"case": n})
               for n in names]
        daemon = harness.Daemon(ws, {"upstreams": ups}, log_level="info")
        prom = DifferentialPrometheus(ws, server, daemon.port, names)
        s = now_ms // 1000 * 1000
        prom.explicit = {now_ms, s, s + 250}

        # Every upstream polled once (taken or refused), and every target
        # scraped a few times after that.
        def polled():
            s = harness.parse_prom(harness.request(daemon.port, path="/metrics").text)
            done = {}
            for n in names:
                up = harness.value(s, "cerebras_proxy_upstream_up", upstream=n)
                errors = harness.value(s, "cerebras_proxy_upstream_parse_errors_total", 0,
                                       upstream=n)
                if up == 1 or errors:
                    done[n] = (up, errors)
            return len(done) == len(names) and (s, done)
        selfs, verdict = harness.wait_until(polled, 60, "every upstream polled", 0.5)
        polled_at = time.time()

        late = []

        def scraped():
            ts = prom.targets_active()
            late[:] = [(t["scrapePool"], t["labels"].get("case"), t["lastScrape"], t["lastError"])
                       for t in ts if t["lastScrape"].startswith("0001")
                       or _rfc3339(t["lastScrape"]) < polled_at + 1]
            # Every case and the daemon: Prometheus may not list a target
            # before its discovery has run.
            return not late and len(ts) == len(names) + 1
        try:
            harness.wait_until(scraped, 60, "every target scraped after the polls", 0.5)
        except AssertionError:
            raise AssertionError("not scraped since the polls: %r" % late[:10])
        time.sleep(5)

        def compare():
            direct_up, daemon_up = prom.up("direct"), prom.up("daemon")
            direct, through = prom.stored("direct"), prom.stored("daemon")
            rows, problems = [], []
            for n in names:
                p_ok = direct_up.get(n) == 1
                d_ok = verdict[n][0] == 1
                same = direct.get(n, {}) == through.get(n, {})
                rows.append((n, "ingested" if p_ok else "rejected",
                             "taken" if d_ok else "refused",
                             "same" if same else "DIFFERENT"))
                if p_ok != d_ok:
                    problems.append("%s: Prometheus %s, daemon %s" % (n, rows[-1][1], rows[-1][2]))
                elif p_ok and not same:
                    problems.append("%s: series differ:\n  direct %r\n  daemon %r" % (
                        n, sorted(direct.get(n, {}).items(), key=repr)[:5],
                        sorted(through.get(n, {}).items(), key=repr)[:5]))
                elif not p_ok and through.get(n):
                    problems.append("%s: refused but series served" % n)
            print("\n%-34s %-10s %-8s %s" % ("case", "prometheus", "daemon", "series"),
                  file=sys.stderr)
            for r in rows:
                print("%-34s %-10s %-8s %s" % r, file=sys.stderr)
            if daemon_up.get(None) != 1.0:
                problems.append("the daemon's own target is down")
            return direct_up, problems

        direct_up, problems = compare()
        if problems:
            # A difference must persist: on a loaded CI machine one scrape
            # can be late or lost. Two more scrape intervals, then compare
            # again; what differs twice is a real difference.
            print("differences, comparing again in 10 s:\n" + "\n".join(problems), file=sys.stderr)
            time.sleep(10)
            direct_up, problems = compare()
        self.assertFalse(problems, "\n".join(problems))
        # Every refused case counted a parse error; every taken one is up.
        for n in names:
            if direct_up.get(n) != 1:
                self.assertGreaterEqual(verdict[n][1], 1, n)


def _rfc3339(s):
    """Prometheus's lastScrape ("2026-12-02T15:04:05.123456789Z" or with an
    offset) -> unix seconds."""
    import datetime
    import re
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    assert m, s
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    t = datetime.datetime.fromisoformat(m.group(1) + tz).timestamp()
    return t + (float("0" + m.group(2)[:7]) if m.group(2) else 0)


if __name__ == "__main__":
    harness.main()
