#!/usr/bin/env python3
"""The differential runner: the daemon takes exactly what Prometheus takes.

A batch of cases (bodies with their HTTP framing) is served by a small HTTP
server on 127.0.0.1. One Debian Prometheus scrapes every case twice:
directly (job "direct", target label `case`) and through one daemon that has
one upstream per case (job "daemon", one target per case at
/metrics?upstream=NAME, same `case` label), plus the daemon's whole /metrics
(job "self"). A case agrees when:
  - Prometheus ingests it directly and the daemon takes it, and both jobs
    store the same series with the same values, and the same explicit
    timestamps with the same values (samples at scrape time have the
    scrape's own timestamp, different per job: their values are compared);
  - or Prometheus refuses it (up == 0) and the daemon refuses it (upstream
    up 0) and serves no series of it.

Used by differential_e2e_test.py (the cases of tests/data/differential and a
fixed seed of generated ones) and, for long runs, by scripts/differential.sh:

    differential.py --daemon D --mock M --bodies 20000 --seed 1 [--batch 500]
                    [--minimize] [--write DIR]

A mismatch is minimized (delta debugging over lines, then bytes; every
candidate of a round is one case of one batch) and written as a new case.

Case format (tests/data/differential/cases.json, one entry per NAME.prom):
  content_type  header value, null for none
  gzip, chunked booleans (the original format)
  encoding      optional: identity | gzip | gzip2 | identity-header | x-gzip |
                x-gzip-plain | GZIP | br-plain (wins over `gzip`)
  framing       optional: length | chunked | close (wins over `chunked`)
  limits        optional: the daemon's per-upstream limit keys; the direct job
                gets the Prometheus equivalent (see prometheus_limits)
Bodies may hold @NOW_MS@, @NOW_S@, @NOW_MS-N@ and @NOW_S-N@ (resolve()).
"""

import argparse
import gzip
import http.server
import json
import os
import re
import socketserver
import sys
import threading
import time
import urllib.parse

import harness
import e2e_prometheus as ep

SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
             "scrape_samples_post_metric_relabeling", "scrape_series_added"}
TEXT_CT = "text/plain; version=0.0.4; charset=utf-8"
DATA = ("tests", "data", "differential")

_NOW = re.compile(rb"@NOW_(MS|S)(?:-(\d{1,12}))?@")


def resolve(template, now_ms):
    """The body served: @NOW_MS@/@NOW_S@ become the run's start time in ms/s,
    @NOW_MS-N@/@NOW_S-N@ that time minus N."""
    def sub(m):
        base = now_ms if m.group(1) == b"MS" else now_ms // 1000
        return str(base - int(m.group(2) or 0)).encode()
    return _NOW.sub(sub, template)


def normalized(meta):
    """A case's HTTP settings with the defaults of the original format filled in."""
    enc = meta.get("encoding") or ("gzip" if meta.get("gzip") else "identity")
    framing = meta.get("framing") or ("chunked" if meta.get("chunked") else "length")
    return {"content_type": meta.get("content_type"), "encoding": enc, "framing": framing,
            "limits": dict(meta.get("limits") or {})}


def encode_body(encoding, body):
    """(Content-Encoding header or None, bytes on the wire). Prometheus 2.42
    gunzips only when the header is exactly `gzip` (all members, as Go's
    gzip.Reader does); every other value leaves the body as it is."""
    if encoding == "identity":
        return None, body
    if encoding == "gzip":
        return "gzip", gzip.compress(body, mtime=0)
    if encoding == "gzip2":
        cut = len(body) // 2
        return "gzip", gzip.compress(body[:cut], mtime=0) + gzip.compress(body[cut:], mtime=0)
    if encoding == "identity-header":
        return "identity", body
    if encoding == "x-gzip":
        return "x-gzip", gzip.compress(body, mtime=0)
    if encoding == "x-gzip-plain":
        return "x-gzip", body
    if encoding == "GZIP":
        return "GZIP", gzip.compress(body, mtime=0)
    if encoding == "br-plain":
        return "br", body
    raise ValueError("unknown encoding %r" % encoding)


def prometheus_limits(limits):
    """The scrape_config limits that make Prometheus refuse what the daemon's
    `limits` refuse. Prometheus counts the target's labels too: job,
    instance and case here (the daemon counts the name, as `__name__`, and
    the body's labels); the length limits are the same numbers."""
    out = {}
    if limits.get("label_limit"):
        out["label_limit"] = limits["label_limit"] + 3
    for k in ("label_name_length_limit", "label_value_length_limit", "sample_limit"):
        if limits.get(k):
            out[k] = limits[k]
    return out


class CaseServer:
    """Serves /case/NAME on 127.0.0.1:<free port>, one response per connection."""

    def __init__(self, cases, now_ms):
        outer = self
        self.wire = {}
        for name, c in cases.items():
            enc, data = encode_body(c["encoding"], resolve(c["template"], now_ms))
            self.wire[name] = (c, enc, data)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                name = urllib.parse.urlparse(self.path).path.rsplit("/", 1)[-1]
                entry = outer.wire.get(name)
                if entry is None:
                    self.send_error(404)
                    return
                c, enc, data = entry
                self.send_response(200)
                if c["content_type"] is not None:
                    self.send_header("Content-Type", c["content_type"])
                if enc is not None:
                    self.send_header("Content-Encoding", enc)
                self.send_header("Connection", "close")
                if c["framing"] == "chunked":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(data), 7000):
                        part = data[i:i + 7000]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                elif c["framing"] == "close":
                    self.end_headers()       # the body ends where the connection does
                    self.wfile.write(data)
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            # Prometheus scrapes hundreds of targets close together; the
            # default backlog of 5 dropped connections on a loaded machine.
            request_queue_size = 1024

            def handle_error(self, request, client_address):
                pass  # a scraper that gave up (timeout) is not the server's problem

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name):
        return "http://127.0.0.1:%d/case/%s" % (self.port, name)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class DifferentialPrometheus(ep.Prometheus):
    """Starts scraping one warm-up target only, so that the head has a recent
    max time before any case is scraped (an empty head takes a sample of
    any age, and the first explicit timestamp would then decide what counts
    as out of bounds); then every case, directly and through the daemon."""

    def __init__(self, ws, server, daemon_port, cases):
        self.server, self.daemon_port, self.cases = server, daemon_port, cases
        self.full = False
        super().__init__(ws, targets=[], scrape_interval="2s")

    def _config(self, rule_files, scrape_interval, evaluation_interval, honor_timestamps):
        q = ep._q
        lines = ["global:", "  scrape_interval: 4s", "  scrape_timeout: 3500ms",
                 "  evaluation_interval: 5s", "scrape_configs:",
                 "  - job_name: self", "    static_configs:",
                 "      - targets: [%s]" % q("127.0.0.1:%d" % self.daemon_port)]
        if not self.full:
            return "\n".join(lines) + "\n"
        # One direct job per distinct set of limits (limits are per job).
        groups = {}
        for n, c in sorted(self.cases.items()):
            key = json.dumps(prometheus_limits(c["limits"]), sort_keys=True)
            groups.setdefault(key, []).append(n)
        for i, (key, names) in enumerate(sorted(groups.items())):
            lines += ["  - job_name: direct%s" % ("" if key == "{}" else "_%d" % i)]
            lines += ["    %s: %d" % kv for kv in sorted(json.loads(key).items())]
            lines += ["    static_configs:"]
            for n in names:
                lines += ["      - targets: [%s]" % q("127.0.0.1:%d" % self.server.port),
                          "        labels: {__metrics_path__: %s, case: %s}" % (
                              q("/case/" + n), q(n))]
        lines += ["  - job_name: daemon", "    static_configs:"]
        for n in sorted(self.cases):
            lines += ["      - targets: [%s]" % q("127.0.0.1:%d" % self.daemon_port),
                      "        labels: {__param_upstream: %s, case: %s}" % (q(n), q(n))]
        return "\n".join(lines) + "\n"

    def scrape_cases(self):
        self.full = True
        with open(self.config_path, "w") as f:
            f.write(self._config((), None, None, True))
        c = __import__("http.client").client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request("POST", "/-/reload")
            r = c.getresponse()
            assert r.status == 200, (r.status, r.read()[:300])
        finally:
            c.close()

    def query_all(self, expr):
        status, body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}),
                                 timeout=120)
        doc = json.loads(body)
        assert status == 200 and doc["status"] == "success", body[:300]
        return doc["data"]["result"]

    def stored(self, job_re):
        """{case: {series key: samples}} of every sample stored for the jobs
        matching job_re; samples: ({(explicit ts, value)}, {values at scrape
        time}). A timestamp is a scrape's if `up` of that target has it."""
        # The samples first, then `up`: a scrape that lands between the two
        # queries must not make its samples look like explicit timestamps.
        data = self.query_all('{job=~"%s"}[1h]' % job_re)
        scrape_ts = {}
        for r in self.query_all('up{job=~"%s"}[1h]' % job_re):
            m = r["metric"]
            scrape_ts[(m["job"], m.get("case"))] = {int(round(float(t) * 1000))
                                                    for t, _ in r["values"]}
        out = {}
        for r in data:
            labels = dict(r["metric"])
            if labels.get("__name__") in SYNTHETIC:
                continue
            case = labels.pop("case", None)
            job = labels.pop("job", None)
            labels.pop("instance", None)
            scrapes = scrape_ts.get((job, case), set())
            explicit, at_scrape = set(), set()
            for t, v in r["values"]:
                ms = int(round(float(t) * 1000))
                if ms in scrapes:
                    at_scrape.add(v)
                else:
                    explicit.add((ms, v))
            out.setdefault(case, {})[frozenset(labels.items())] = (frozenset(explicit), frozenset(at_scrape))
        return out

    def up(self, job_re):
        """{case: 1.0} for a target with a successful scrape in the last 10
        minutes: a body Prometheus refuses never has one."""
        return {r["metric"].get("case"): float(r["value"][1])
                for r in self.query_all('max_over_time(up{job=~"%s"}[10m])' % job_re)}


def _rfc3339(s):
    """Prometheus's lastScrape ("2026-12-02T15:04:05.123456789Z" or with an
    offset) -> unix seconds."""
    import datetime
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    assert m, s
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    t = datetime.datetime.fromisoformat(m.group(1) + tz).timestamp()
    return t + (float("0" + m.group(2)[:7]) if m.group(2) else 0)


_TRANSIENT_CODES = {"timeout", "connect", "dns"}


def _transient(error):
    """A scrape error about the connection, not the body: Go's client errors
    read `Get "URL": ...`; a slow server exceeds the scrape timeout."""
    return error.startswith('Get "') or any(
        e in error for e in ("deadline exceeded", "context canceled", "connection refused",
                             "connection reset"))


class Verdict:
    """One case's outcome: what each side did, and the difference if any."""

    def __init__(self, name, direct_ok, daemon_ok, problem):
        self.name, self.direct_ok, self.daemon_ok, self.problem = name, direct_ok, daemon_ok, problem
        self.flaky = False   # a timeout decided it: no verdict

    @property
    def kind(self):
        """What a minimized case must keep reproducing."""
        if self.problem is None:
            return None
        if self.direct_ok != self.daemon_ok:
            return "verdict:%s:%s" % (self.direct_ok, self.daemon_ok)
        return "series" if self.direct_ok else "refused-served"

    def row(self):
        return "%-34s %-10s %-8s %s" % (self.name, "ingested" if self.direct_ok else "rejected",
                                         "taken" if self.daemon_ok else "refused",
                                         "same" if self.problem is None else "DIFFERENT")


def _daemon_cfg_upstream(name, url, limits):
    up = harness.upstream_cfg(name=name, url=url, interval="60s", offset="1s", timeout="10s",
                              ca_file="", requests=30, window="60s")
    up.update(limits)
    return up


def run_batch(cases, log=None, settle=4.0):
    """Runs one batch: {name: case} -> {name: Verdict}. Cases: normalized()
    settings plus `template` (bytes)."""
    log = log or (lambda *a: None)
    now_ms = int(time.time() * 1000)
    names = sorted(cases)
    server = CaseServer(cases, now_ms)
    ws = harness.Workspace(prefix="cmp-diff-")
    daemon = None
    prom = None
    try:
        ups = [_daemon_cfg_upstream(n, server.url(n), cases[n]["limits"]) for n in names]
        daemon = harness.Daemon(ws, {"upstreams": ups}, log_level="info")
        prom = DifferentialPrometheus(ws, server, daemon.port, cases)
        # The warm-up scrape stores `up` at the current time.
        harness.wait_until(lambda: any(not t["lastScrape"].startswith("0001")
                                       for t in prom.targets_active()),
                           60, "the warm-up scrape", 0.2)
        prom.scrape_cases()
        t0 = time.time()

        codes = {}

        def polled():
            s = harness.parse_prom(harness.request(daemon.port, path="/metrics", timeout=60).text)
            ups, errs, bad = {}, {}, {}
            codes.clear()
            for smp in s:
                u = smp.labels.get("upstream")
                if smp.name == "cerebras_proxy_upstream_up":
                    ups[u] = smp.value
                elif smp.name == "cerebras_proxy_upstream_parse_errors_total":
                    errs[u] = smp.value
                elif smp.name == "cerebras_proxy_upstream_requests_total" and smp.value > 0:
                    codes.setdefault(u, set()).add(smp.labels.get("code"))
                    bad[u] = bad.get(u) or smp.labels.get("code") != "200"
            done = {n: ups.get(n) == 1 for n in names
                    if ups.get(n) == 1 or errs.get(n) or bad.get(n)}
            return len(done) == len(names) and done
        verdict = harness.wait_until(polled, 120, "every upstream polled", 0.5)
        polled_at = time.time()
        log("batch of %d: polled in %.1fs" % (len(names), polled_at - t0))

        late = []

        def scraped():
            ts = prom.targets_active()
            late[:] = [(t["scrapePool"], t["labels"].get("case"), t["lastScrape"])
                       for t in ts if t["lastScrape"].startswith("0001")
                       or _rfc3339(t["lastScrape"]) < polled_at + 0.5]
            return not late and len(ts) == 2 * len(names) + 1
        try:
            harness.wait_until(scraped, 120, "every target scraped after the polls", 0.5)
        except AssertionError:
            raise AssertionError("not scraped since the polls: %r" % late[:10])
        time.sleep(settle)

        def compare():
            # What only a loaded machine makes fail (a scrape or a fetch
            # that timed out) is no verdict: such a case is run again.
            direct_err = {t["labels"].get("case"): t["lastError"] for t in prom.targets_active()
                          if t["scrapePool"].startswith("direct")}
            direct_up = prom.up("direct.*")
            direct = prom.stored("direct.*")
            through = prom.stored("daemon")
            out = {}
            for n in names:
                p_ok = direct_up.get(n) == 1
                d_ok = verdict[n]
                a, b = direct.get(n, {}), through.get(n, {})
                problem = None
                if p_ok != d_ok:
                    problem = "Prometheus %s, daemon %s" % (
                        "ingested" if p_ok else "rejected", "took" if d_ok else "refused")
                elif p_ok and a != b:
                    only_a = sorted(set(a.items()) - set(b.items()), key=repr)[:3]
                    only_b = sorted(set(b.items()) - set(a.items()), key=repr)[:3]
                    problem = "series differ:\n    direct only %r\n    daemon only %r" % (
                        _show(only_a), _show(only_b))
                elif not p_ok and b:
                    problem = "refused but series served"
                if problem and not p_ok and direct_err.get(n):
                    problem += " (Prometheus: %s)" % direct_err[n][:200]
                v = out[n] = Verdict(n, p_ok, d_ok, problem)
                v.flaky = problem is not None and p_ok != d_ok and (
                    (not p_ok and _transient(direct_err.get(n, "")))
                    or (not d_ok and codes.get(n, set()) <= _TRANSIENT_CODES))
            return out

        results = compare()
        if os.environ.get("DIFF_DEBUG"):
            bad = [n for n, v in results.items() if v.problem][:2]
            for n in bad:
                for r in prom.query_all('up{case="%s"}[1h]' % n) + prom.query_all('{case="%s"}[1h]' % n):
                    print("DEBUG", n, r["metric"], r["values"], file=sys.stderr)
        if any(v.problem for v in results.values()):
            # A difference must persist: on a loaded machine one scrape can
            # be late or lost. Two more scrape intervals, then compare again.
            time.sleep(7)
            results = compare()
        self_up = prom.up("self").get(None)
        if self_up != 1.0:
            results["<self>"] = Verdict("<self>", True, False, "the daemon's own /metrics target "
                                        "is down: %s" % [t["lastError"] for t in prom.targets_active()
                                                         if t["scrapePool"] == "self"])
        return results
    finally:
        if prom is not None:
            prom.stop()
        if daemon is not None:
            daemon.stop()
        server.close()


def run_cases(cases, log=lambda *a: None, retries=2):
    """run_batch(), then the cases a timeout decided, again (up to `retries`
    times, in batches of their own): {name: Verdict}."""
    results = run_batch(cases, log=log)
    for _ in range(retries):
        again = {n: cases[n] for n, v in results.items() if v.flaky and n in cases}
        if not again:
            break
        log("%d cases decided by a timeout: running them again" % len(again))
        results.update(run_batch(again, log=log))
    return results


def _show(items):
    return [(sorted(k), sorted(v[0])[:4], sorted(v[1])[:4]) for k, v in items]


# ---------------------------------------------------------------- cases on disk


def data_dir():
    return os.path.join(harness.REPO, *DATA)


def load_stored_cases(d=None):
    """{name: case} of tests/data/differential."""
    d = d or data_dir()
    with open(os.path.join(d, "cases.json")) as f:
        meta = json.load(f)
    out = {}
    for name, m in sorted(meta.items()):
        with open(os.path.join(d, name + ".prom"), "rb") as f:
            out[name] = dict(normalized(m), template=f.read())
    return out


def write_case(name, case, d=None):
    """Adds `case` to tests/data/differential as NAME.prom + a cases.json
    entry, unless a case with the same body and settings is there already
    (several mismatches often minimize to one shape). True if written."""
    d = d or data_dir()
    path = os.path.join(d, "cases.json")
    with open(path) as f:
        meta = json.load(f)
    for other, m in meta.items():
        with open(os.path.join(d, other + ".prom"), "rb") as f:
            if f.read() == case["template"] and normalized(m) == {
                    k: case[k] for k in ("content_type", "encoding", "framing", "limits")}:
                return False
    entry = {"content_type": case["content_type"], "gzip": case["encoding"] == "gzip",
             "chunked": case["framing"] == "chunked"}
    if case["encoding"] not in ("identity", "gzip"):
        entry["encoding"] = case["encoding"]
    if case["framing"] not in ("length", "chunked"):
        entry["framing"] = case["framing"]
    if case["limits"]:
        entry["limits"] = case["limits"]
    meta[name] = entry
    with open(os.path.join(d, name + ".prom"), "wb") as f:
        f.write(case["template"])
    with open(path + ".tmp", "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)
    return True


# ---------------------------------------------------------------- minimizing


def _chunks(seq, n):
    size = max(1, (len(seq) + n - 1) // n)
    return [(i, min(i + size, len(seq))) for i in range(0, len(seq), size)]


def minimize(failing, log=print, max_rounds=80, per_case=6, per_batch=600):
    """Delta debugging of every case in `failing` ({name: (case, kind)}) at
    once: each round runs, in one batch (or a few, of at most per_batch
    cases), up to per_case candidates of every case still being minimized
    (the case without one chunk of its lines, later of its bytes), and keeps
    the first candidate that still fails the same way. Returns {name:
    smaller case}."""
    state = {}
    for name, (case, kind) in failing.items():
        lines = case["template"].split(b"\n")
        units = [l + b"\n" for l in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
        state[name] = {"case": case, "kind": kind, "units": units, "phase": "lines"}
        _granularity(state[name], 2)
    for rnd in range(max_rounds):
        batch, owners = {}, {}
        for name, st in state.items():
            if st["phase"] == "done":
                continue
            chunks = _chunks(st["units"], st["n"])
            for k in st["pending"][:per_case]:
                a, b = chunks[k]
                cand = st["units"][:a] + st["units"][b:]
                cname = "m%d_%s_%d" % (rnd, re.sub(r"[^a-zA-Z0-9_-]", "_", name)[-40:], k)
                batch[cname] = dict(st["case"], template=b"".join(cand))
                owners[cname] = (name, k, cand)
        if not batch:
            break
        log("minimize round %d: %d candidates" % (rnd, len(batch)))
        results = {}
        names = sorted(batch)
        for i in range(0, len(names), per_batch):
            results.update(run_batch({n: batch[n] for n in names[i:i + per_batch]}))
        for name, st in state.items():
            if st["phase"] == "done":
                continue
            tried = [(k, cand, results[c]) for c, (owner, k, cand) in owners.items() if owner == name]
            tried.sort(key=lambda t: t[0])
            hit = next((cand for k, cand, v in tried if v.kind == st["kind"] and not v.flaky), None)
            if hit is not None:
                st["units"] = hit
                _granularity(st, max(st["n"] - 1, 2))
                continue
            st["pending"] = st["pending"][per_case:]
            if st["pending"]:
                continue
            if st["n"] < len(st["units"]):
                _granularity(st, min(2 * st["n"], len(st["units"])))
            elif st["phase"] == "lines":
                _to_bytes(st)
            else:
                st["phase"] = "done"
    return {name: dict(st["case"], template=b"".join(st["units"])) for name, st in state.items()}


def _granularity(st, n):
    st["n"] = n
    st["pending"] = list(range(len(_chunks(st["units"], n))))


def _to_bytes(st):
    body = b"".join(st["units"])
    if len(body) > 400:
        st["phase"] = "done"   # too long to take apart byte by byte in reasonable time
        return
    st["units"] = [body[i:i + 1] for i in range(len(body))]
    st["phase"] = "bytes"
    _granularity(st, 2)


# ---------------------------------------------------------------- long runs


def generated(seed, first, count, limits=True):
    import differential_gen as gen
    out = {}
    for i in range(first, first + count):
        c = gen.case(seed, i)
        if not limits:
            c["limits"] = {}
        out["g%d_%06d" % (seed, i)] = c
    return out


def _spread(mismatches, most):
    """At most `most` of {name: (case, kind)}, taken in turn from each group
    of the same kind, grammar and encoding."""
    groups = {}
    for name, (case, kind) in sorted(mismatches.items()):
        key = (kind, case["content_type"], case["encoding"], bool(case["limits"]))
        groups.setdefault(key, []).append(name)
    chosen = []
    while len(chosen) < most and any(groups.values()):
        for key in sorted(groups, key=repr):
            if groups[key] and len(chosen) < most:
                chosen.append(groups[key].pop(0))
    return {n: mismatches[n] for n in chosen}


def main():
    rest = harness.parse_args()
    p = argparse.ArgumentParser(description="generated bodies against the real Prometheus")
    p.add_argument("--bodies", type=int, default=1000)
    p.add_argument("--seed", type=int, nargs="+", default=[1])
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--minimize", action="store_true", help="minimize every mismatch")
    p.add_argument("--minimize-max", type=int, default=40,
                   help="minimize at most this many mismatches, spread over their kinds "
                        "(several mismatches are usually one cause)")
    p.add_argument("--minimize-rounds", type=int, default=40)
    p.add_argument("--no-limits", action="store_true",
                   help="no per-upstream limits (a daemon without the limit keys)")
    p.add_argument("--write", action="store_true",
                   help="write the minimized mismatches into tests/data/differential")
    args = p.parse_args(rest)
    ep.skip_without_prometheus()
    started = time.time()
    total, mismatches, inconclusive = 0, {}, {}
    for seed in args.seed:
        for first in range(args.first, args.first + args.bodies, args.batch):
            count = min(args.batch, args.first + args.bodies - first)
            cases = generated(seed, first, count, limits=not args.no_limits)
            t = time.time()
            results = run_cases(cases, log=lambda m: print(m, file=sys.stderr))
            total += count
            bad = {n: v for n, v in results.items() if v.problem and not v.flaky}
            for n, v in sorted(results.items()):
                if v.problem and v.flaky:
                    inconclusive[n] = cases[n]
                    print("  %s: inconclusive (timeouts): %s" % (n, v.problem), flush=True)
            print("seed %d bodies %d..%d: %d mismatches (%.0fs; %d bodies, %d mismatches so far, "
                  "%.0fs)" % (seed, first, first + count - 1, len(bad), time.time() - t, total,
                              len(mismatches) + len(bad), time.time() - started), flush=True)
            for n, v in sorted(bad.items()):
                print("  %s: %s" % (n, v.problem), flush=True)
                if n in cases:
                    mismatches[n] = (cases[n], v.kind)
    if inconclusive:
        # Decided by timeouts three times on a loaded machine: once more, alone.
        results = run_cases(inconclusive, log=lambda m: print(m, file=sys.stderr))
        for n, v in sorted(results.items()):
            if v.problem:
                print("  %s (again): %s%s" % (n, v.problem, " (timeouts)" if v.flaky else ""),
                      flush=True)
                if n in inconclusive:
                    mismatches[n] = (inconclusive[n], v.kind)
    print("TOTAL %d bodies, %d mismatches, %.0fs" % (total, len(mismatches), time.time() - started),
          flush=True)
    if mismatches and args.minimize:
        chosen = _spread(mismatches, args.minimize_max)
        small = minimize(chosen, log=lambda m: print(m, file=sys.stderr, flush=True),
                         max_rounds=args.minimize_rounds)
        for name, c in sorted(small.items()):
            print("minimized %s (%s, %s %s %r):\n%r" % (
                name, mismatches[name][1], c["content_type"], c["encoding"], c["limits"],
                c["template"][:2000]),
                  flush=True)
            if args.write and write_case(name, c):
                print("written: %s" % name, flush=True)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
