#!/usr/bin/env python3
"""End-to-end test of issue 3 ("Done means"): every upstream fault, restart
storm, reload and shutdown keeps the budget and serves the last good data.
Stdlib only; run by CMake as

    resilience_e2e_test.py --daemon build/cerebras-metrics-proxy \
        --mock build/cerebras-mock-upstream --repo . [unittest args]

The scenarios are independent (each has its own mock and daemon), so they
all run in parallel threads at module setup (E2E_JOBS, default 8); each test
method then asserts on its scenario's outcome. A scenario function raises
AssertionError itself where it has to wait on a condition.
"""

import concurrent.futures
import email.utils
import glob
import math
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

WRONG_KEY = "sk-e2e-WRONGKEY-77aa01"      # a second secret: the daemon's key in one scenario
SCENARIOS = {}                             # name -> function(ws) -> observations dict
RESULTS = {}                               # name -> ("ok", obs) | ("error", exc, traceback text)


def scenario(fn):
    SCENARIOS[fn.__name__] = fn
    return fn


# ---------------------------------------------------------------- helpers


def upstream_values(samples):
    """{(name, labels)} -> value of the upstream samples (self-metrics dropped)."""
    return {(s.name, frozenset(s.labels.items())): s.value for s in samples
            if not s.name.startswith("cerebras_proxy_") and not s.name.startswith("process_")}


def mock_values(mock, w):
    return upstream_values(h.parse_prom(mock.window_body(w)))


def pair(ws, window="2s", rate_limit=6, rate_window="10s", cert="server", up=None, daemon=None,
         mock=None):
    """A mock and a daemon polling it; waits until the daemon has a snapshot."""
    m = h.Mock(ws, window=window, rate_limit=rate_limit, rate_window=rate_window, cert=cert,
               **(mock or {}))
    upk = dict(interval=window, offset="300ms", timeout="1s", requests=6, window=rate_window)
    upk.update(up or {})
    d = h.Daemon(ws, {"upstreams": [h.upstream_cfg(m, **upk)]}, **(daemon or {}))
    return m, d


def budget_of(m, window):
    reqs = m.api_requests()
    return h.max_in_window([r["t"] for r in reqs], window), reqs


def check_budget(m, limit=6, window=10.0):
    worst, reqs = budget_of(m, window)
    assert worst <= limit, "over budget: %d requests in %ss: %r" % (worst, window, reqs)
    assert not any(r["over_budget"] for r in reqs), "the mock refused a request over its budget"
    return reqs


def last_good_window(reqs):
    good = [r for r in reqs if r["status"] == 200 and r["fault"] == "none"]
    return good[-1]["window"] if good else None


def code_count(d, codes):
    s = d.metrics()
    return sum(h.total(s, "cerebras_proxy_upstream_requests_total", upstream="default", code=c)
               for c in codes)


def fault_flow(ws, kind, codes, params=None, cert_after=None, up=None, settle=None):
    """The common shape: good data, a fault on every request for a while,
    up 0 and the right code while the last good values are still served,
    then the fault clears and up is 1 again; the budget holds throughout."""
    m, d = pair(ws, up=up)
    obs = {"mock": m, "daemon": d}
    d.wait_up(timeout=30)
    before = code_count(d, codes)
    m.fault(kind, duration="60s", **(params or {}))
    t_fault = time.time()

    def down():
        s = d.metrics()
        n = sum(h.total(s, "cerebras_proxy_upstream_requests_total", upstream="default", code=c)
                for c in codes)
        return n > before and h.value(s, "cerebras_proxy_upstream_up", upstream="default") == 0 and s
    samples = h.wait_until(down, 30, "%s: up 0 and a request counted with code %s" % (kind, codes))
    reqs = m.api_requests()
    faulted = [r for r in reqs if r["t"] >= t_fault - 0.5 and r["fault"] != "none"]
    w = last_good_window([r for r in reqs if r["t"] < t_fault + 0.5 and r["fault"] == "none"])
    served = upstream_values(samples)
    assert served, "%s: the last good values are no longer served" % kind
    assert served == mock_values(m, w), "%s: served values are not the last good window's" % kind
    obs["parse_errors"] = h.value(samples, "cerebras_proxy_upstream_parse_errors_total",
                                  upstream="default")
    obs["ready_during"] = d.get("/-/ready")
    obs["page_during"] = d.get("/")
    obs["faulted"] = faulted
    if settle:
        settle(m, d, obs)
    m.clear_faults()
    t_clear = time.time()
    d.wait_up(timeout=30)
    obs["recovered_after"] = time.time() - t_clear
    obs["reqs"] = check_budget(m)
    obs["log"] = d.log_text()
    rc = d.stop()
    m.stop()
    assert rc == 0, "daemon exit %r" % rc
    return obs


# ---------------------------------------------------------------- fault matrix


@scenario
def f_500(ws):
    return fault_flow(ws, "500", ["500"])


@scenario
def f_503(ws):
    return fault_flow(ws, "503", ["503"])


@scenario
def f_stall(ws):
    return fault_flow(ws, "stall", ["timeout"])


@scenario
def f_latency(ws):
    return fault_flow(ws, "latency", ["timeout"], {"delay": "3s"})


@scenario
def f_malformed(ws):
    return fault_flow(ws, "malformed", ["200"])


@scenario
def f_truncated(ws):
    return fault_flow(ws, "truncated", ["protocol"])


@scenario
def f_oversized(ws):
    return fault_flow(ws, "oversized", ["protocol"])


@scenario
def f_reset(ws):
    return fault_flow(ws, "reset", ["protocol", "connect"])


@scenario
def f_redirect(ws):
    return fault_flow(ws, "redirect", ["302"], {"location": "/moved"})


@scenario
def f_401(ws):
    return fault_flow(ws, "401", ["401"])


@scenario
def f_403(ws):
    return fault_flow(ws, "403", ["403"])


@scenario
def f_tls(ws):
    """The mock comes back with a wrong-host certificate, then a self-signed
    one, then the right one, on the same port."""
    m, d = pair(ws)
    obs = {}
    d.wait_up(timeout=30)
    good = upstream_values(d.metrics())
    for cert in ("wrong-host", "self-signed"):
        before = code_count(d, ["tls"])
        m.args = [a for a in m.args]
        i = m.args.index("--tls-cert")
        m.args[i + 1] = ws.cert(cert + ".pem")
        m.args[i + 3] = ws.cert(cert + ".key")
        m.restart()

        def down():
            s = d.metrics()
            return (h.total(s, "cerebras_proxy_upstream_requests_total", upstream="default",
                            code="tls") > before
                    and h.value(s, "cerebras_proxy_upstream_up", upstream="default") == 0 and s)
        s = h.wait_until(down, 30, "code tls with the %s certificate" % cert)
        obs[cert] = upstream_values(s) == good
    i = m.args.index("--tls-cert")
    m.args[i + 1] = ws.cert("server.pem")
    m.args[i + 3] = ws.cert("server.key")
    m.restart()
    d.wait_up(timeout=30)
    obs["reqs"] = check_budget(m)
    obs["log"] = d.log_text()
    assert d.stop() == 0
    m.stop()
    return obs


@scenario
def f_dns(ws):
    cfg = {"upstreams": [h.upstream_cfg(
        url="https://nonexistent.invalid:1/api/v1/metrics/organizations/org_x", ca_file=ws.ca,
        interval="2s", offset="300ms", timeout="1s")]}
    d = h.Daemon(ws, cfg)
    d.wait_metric("cerebras_proxy_upstream_requests_total", lambda v: v is not None and v >= 1,
                  30, "code dns", upstream="default", code="dns")
    s = d.metrics()
    obs = {"up": h.value(s, "cerebras_proxy_upstream_up", upstream="default"),
           "other_codes": [x.labels["code"] for x in
                           h.find(s, "cerebras_proxy_upstream_requests_total") if x.value > 0],
           "ready": d.get("/-/ready")}
    assert d.stop() == 0
    return obs


@scenario
def retry_5xx_backoff(ws):
    """503 twice, then good: retried with backoff inside the same poll
    interval (4 s windows leave room for retries); x-should-retry: false is
    not retried before the next scheduled poll."""
    m, d = pair(ws, window="4s", rate_window="24s")
    d.wait_up(timeout=30)
    n0 = len(m.api_requests())
    m.fault("503", count=2)
    h.wait_until(lambda: len([r for r in m.api_requests()[n0:] if r["status"] == 200]) >= 1,
                 40, "a 200 after two 503s")
    retried = m.api_requests()[n0:]
    h.wait_until(lambda: d.self_value("cerebras_proxy_upstream_up", upstream="default") == 1, 20,
                 "up after the retries")
    n1 = len(m.api_requests())
    m.fault("503", count=1, should_retry="false")
    h.wait_until(lambda: len([r for r in m.api_requests()[n1:] if r["status"] == 200]) >= 1,
                 40, "a 200 after the x-should-retry: false 503")
    no_retry = m.api_requests()[n1:]
    obs = {"retried": retried, "no_retry": no_retry, "reqs": check_budget(m, 6, 24.0),
           "log": d.log_text()}
    assert d.stop() == 0
    m.stop()
    return obs


def retry_after_flow(ws, params, wait):
    m, d = pair(ws)
    d.wait_up(timeout=30)
    n0 = len(m.api_requests())
    m.fault("429", count=1, **params)
    h.wait_until(lambda: any(r["status"] == 200 for r in m.api_requests()[n0 + 1:]),
                 wait + 30, "a request after the 429")
    after = m.api_requests()[n0:]
    obs = {"after": after, "reqs": check_budget(m), "code429": code_count(d, ["429"]),
           "log": d.log_text()}
    assert d.stop() == 0
    m.stop()
    return obs


@scenario
def retry_after_seconds(ws):
    return retry_after_flow(ws, {"retry_after": 5}, 5)


@scenario
def retry_after_http_date(ws):
    return retry_after_flow(ws, {"retry_after": 5, "retry_after_format": "http-date"}, 5)


@scenario
def retry_after_none(ws):
    return retry_after_flow(ws, {"retry_after": "none"}, 2)


@scenario
def mock_budget_429(ws):
    """The mock's own budget is tighter than the daemon's: its 429s carry
    Retry-After; the daemon never comes back earlier."""
    m, d = pair(ws, rate_limit=2, rate_window="8s", up={"requests": 6, "window": "10s"})
    h.wait_until(lambda: sum(1 for r in m.api_requests() if r["over_budget"]) >= 2, 40,
                 "two over-budget 429s from the mock")
    time.sleep(2)
    obs = {"reqs": m.api_requests(), "log": d.log_text()}
    assert d.stop() == 0
    m.stop()
    return obs


@scenario
def wrong_key(ws):
    m = h.Mock(ws, window="2s", rate_limit=6, rate_window="10s")
    d = h.Daemon(ws, {"upstreams": [h.upstream_cfg(m, requests=6, window="10s")]},
                 api_key=WRONG_KEY)
    d.wait_metric("cerebras_proxy_upstream_requests_total", lambda v: v is not None and v >= 2,
                  30, "two 401s", upstream="default", code="401")
    obs = {"reqs": m.requests(), "log": d.log_text(), "page": d.get("/"),
           "ready": d.get("/-/ready"), "metrics": d.get("/metrics")}
    assert d.stop() == 0
    m.stop()
    return obs


@scenario
def json_log_fault(ws):
    """The 401 line in JSON log format also names the upstream, never the key."""
    m, d = pair(ws, daemon={"args": ["--log.format=json"]})
    d.wait_up(timeout=30)
    m.fault("401", count=1)
    h.wait_until(lambda: code_count(d, ["401"]) >= 1, 30, "a 401")
    d.wait_up(timeout=30)
    obs = {"log": d.log_text()}
    assert d.stop() == 0
    m.stop()
    return obs


@scenario
def key_file_credentials(ws):
    """api_key_file relative to $CREDENTIALS_DIRECTORY (systemd LoadCredential),
    a world-readable key file -> a warning naming it; a world-readable config
    file (it holds no secret) -> none."""
    m = h.Mock(ws, window="2s", rate_limit=0)
    creds = ws.subdir("credentials")
    kfile = os.path.join(creds, "cerebras-api-key")
    with open(kfile, "w") as f:
        f.write(h.API_KEY + "\n")
    os.chmod(kfile, 0o644)
    up = h.upstream_cfg(m, api_key_env=None, api_key_file="cerebras-api-key")
    d = h.Daemon(ws, {"upstreams": [up]}, start=False,
                 env={"CREDENTIALS_DIRECTORY": creds, "CMP_E2E_API_KEY": "not-the-key"})
    os.chmod(d.config_path, 0o644)
    d.start()
    d.wait_up(timeout=30)
    obs = {"log": d.log_text()}
    d.signal(signal.SIGINT)
    obs["sigint_rc"] = d.proc.wait(timeout=30)
    d.stop()
    m.stop()
    return obs


# ---------------------------------------------------------------- restarts and state


@scenario
def restart_storm(ws):
    """5 x (kill -9 + restart) inside one 30 s budget window, with the mock
    failing at first so that the daemon wants to retry: the mock never sees
    more than 6 requests in any 30 s."""
    m, d = pair(ws, rate_limit=6, rate_window="30s", up={"requests": 6, "window": "30s"})
    d.wait_up(timeout=30)
    t0 = time.time()
    m.fault("500", duration="6s")
    for i in range(5):
        time.sleep(1.0 + 0.3 * i)
        d.kill9()
        # Without its snapshot a fresh process wants to poll at once: only
        # the persisted ledger stands between the storm and the budget.
        for p in glob.glob(os.path.join(d.state_dir, "*.snapshot")):
            os.unlink(p)
        d.start()
    elapsed = time.time() - t0
    time.sleep(6)
    obs = {"reqs": check_budget(m, 6, 30.0), "elapsed": elapsed, "alive": d.alive(),
           "ledgers": glob.glob(os.path.join(d.state_dir, "*.ledger")),
           "log": d.all_logs()}
    assert d.stop() == 0
    m.stop()
    return obs


@scenario
def restart_serves_snapshot(ws):
    """After a restart the last good snapshot is served at once, with its
    fetch time (honest age), even while the upstream fails."""
    m, d = pair(ws)
    d.wait_up(timeout=30)
    r = d.get("/metrics")
    s = h.parse_prom(r.text)
    last_success = h.value(s, "cerebras_proxy_upstream_last_success_timestamp_seconds",
                           upstream="default")
    assert d.stop() == 0
    m.fault("500", duration="60s")
    time.sleep(3)
    d.start()
    r2 = d.get("/metrics")
    s2 = h.parse_prom(r2.text)
    lm2 = email.utils.parsedate_to_datetime(r2.headers["last-modified"]).timestamp()
    obs = {"restart_at": time.time(), "last_success": last_success,
           "values_before": upstream_values(s), "values_after": upstream_values(s2),
           "age_after": h.value(s2, "cerebras_proxy_snapshot_age_seconds", upstream="default"),
           "lm_before": email.utils.parsedate_to_datetime(r.headers["last-modified"]).timestamp(),
           "lm_after": lm2, "ready_after": d.get("/-/ready").status,
           "age_header_after": int(r2.headers.get("age", "-1")),
           "last_success_after": h.value(
               s2, "cerebras_proxy_upstream_last_success_timestamp_seconds", upstream="default")}
    assert d.stop() == 0
    m.stop()
    return obs


@scenario
def corrupt_ledger(ws):
    """A corrupt ledger: a warning, no crash, and no request until a whole
    budget window (plus the margin) has passed."""
    m, d = pair(ws, rate_window="8s", up={"requests": 6, "window": "8s"})
    d.wait_up(timeout=30)
    assert d.stop() == 0
    ledgers = glob.glob(os.path.join(d.state_dir, "*.ledger"))
    assert ledgers, "no ledger file in state_dir: %r" % os.listdir(d.state_dir)
    for p in ledgers:
        with open(p, "wb") as f:
            f.write(b"\x00\xffgarbage\nnot a ledger at all\n" * 10)
    # Also make the snapshot unusable so the daemon wants to poll at once.
    for p in glob.glob(os.path.join(d.state_dir, "*.snapshot")):
        with open(p, "wb") as f:
            f.write(b"corrupt snapshot\n")
    n0 = len(m.api_requests())
    t_start = time.time()
    d.start()
    h.wait_until(lambda: len(m.api_requests()) > n0, 40, "the first request after the restart")
    first = m.api_requests()[n0]
    obs = {"t_start": t_start, "first": first, "log": d.log_text(), "alive": d.alive()}
    d.wait_up(timeout=30)
    obs["reqs"] = check_budget(m, 6, 8.0)
    assert d.stop() == 0
    m.stop()
    return obs


@scenario
def staleness(ws):
    m, d = pair(ws, up={"max_staleness": "3s"})
    d.wait_up(timeout=30)
    m.fault("500", duration="60s")

    def gone():
        s = d.metrics()
        return not upstream_values(s) and s
    s = h.wait_until(gone, 30, "the stale upstream series to disappear")
    obs = {"samples": s, "ready": d.get("/-/ready"), "readyz": d.get("/readyz")}
    m.clear_faults()
    h.wait_until(lambda: upstream_values(d.metrics()), 30, "series back after recovery")
    obs["ready_after"] = d.get("/-/ready").status
    obs["reqs"] = check_budget(m)
    assert d.stop() == 0
    m.stop()
    return obs


# ---------------------------------------------------------------- reload and shutdown


class Scraper:
    """Background scrapes while something happens: counts statuses and errors."""

    def __init__(self, port, threads=4, headers=None):
        self.port, self.headers = port, headers or {}
        self.statuses, self.errors = [], []
        self.stopping = False
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def run(self):
        while not self.stopping:
            try:
                r = h.request(self.port, "GET", "/metrics", self.headers, timeout=20)
                self.statuses.append(r.status)
                h.parse_prom(r.text)
            except Exception as e:  # noqa: BLE001
                self.errors.append(repr(e))
            time.sleep(0.05)

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(timeout=30)


@scenario
def reload_sighup(ws):
    m1 = h.Mock(ws, window="2s", rate_limit=6, rate_window="10s")
    m2 = h.Mock(ws, window="2s", rate_limit=6, rate_window="10s", org="org_second")
    up1 = h.upstream_cfg(m1, name="first", requests=6, window="10s")
    up2 = h.upstream_cfg(m2, name="second", requests=6, window="10s")
    d = h.Daemon(ws, {"upstreams": [up1]})
    d.wait_up("first", timeout=30)
    sc = Scraper(d.port)
    obs = {}
    try:
        # Add an upstream.
        cfg = dict(d.cfg, upstreams=[up1, up2])
        d.write_config(cfg)
        d.signal(signal.SIGHUP)
        d.wait_up("second", timeout=30)
        s = d.metrics()
        obs["after_add"] = (h.value(s, "cerebras_proxy_config_last_reload_successful"),
                            len(h.find(s, "inference_endpoint_status")))
        # An invalid file: the running configuration stays.
        with open(d.config_path, "w") as f:
            f.write("upstreams:\n  - name: first\n    bogus: [\n")
        d.signal(signal.SIGHUP)
        d.wait_metric("cerebras_proxy_config_last_reload_successful", lambda v: v == 0, 20)
        time.sleep(2.5)
        s = d.metrics()
        obs["after_bad"] = (h.value(s, "cerebras_proxy_upstream_up", upstream="first"),
                            h.value(s, "cerebras_proxy_upstream_up", upstream="second"))
        obs["alive_after_bad"] = d.alive()
        # Remove the first upstream again.
        d.write_config(dict(d.cfg, upstreams=[up2]))
        d.signal(signal.SIGHUP)
        d.wait_metric("cerebras_proxy_config_last_reload_successful", lambda v: v == 1, 20)
        h.wait_until(lambda: not h.find(d.metrics(), "cerebras_proxy_upstream_up",
                                        upstream="first"), 20, "upstream first removed")
        obs["after_remove"] = [x.labels.get("organization_id")
                               for x in h.find(d.metrics(), "inference_endpoint_status")]
    finally:
        sc.stop()
    obs["statuses"] = sc.statuses
    obs["errors"] = sc.errors
    obs["reqs1"] = check_budget(m1)
    obs["reqs2"] = check_budget(m2)
    obs["log"] = d.log_text()
    assert d.stop() == 0
    m1.stop()
    m2.stop()
    return obs


@scenario
def reload_unchanged_keeps_ledger(ws):
    """A reload that does not change an upstream keeps its ledger: repeated
    SIGHUPs never cause extra requests beyond the budget."""
    m, d = pair(ws, rate_limit=6, rate_window="20s", up={"requests": 3, "window": "20s"})
    d.wait_up(timeout=30)
    for _ in range(8):
        d.signal(signal.SIGHUP)
        time.sleep(0.7)
    time.sleep(3)
    obs = {"reqs": m.api_requests(), "alive": d.alive()}
    assert d.stop() == 0
    m.stop()
    return obs


@scenario
def reload_no_phantom_budget(ws):
    """A SIGHUP sends no request, so it must not use up budget: the
    remaining budget is the same before and after the reload."""
    m, d = pair(ws, rate_limit=0, up={"interval": "4s", "requests": 6, "window": "60s"})
    d.wait_up(timeout=30)

    def state():
        return (len(m.api_requests()),
                d.self_value("cerebras_proxy_rate_limit_remaining", upstream="default"))
    # Right after a poll (a new one is at least ~3 s away).
    n = len(m.api_requests())
    h.wait_until(lambda: len(m.api_requests()) > n, 20, "a scheduled poll")
    time.sleep(0.3)
    before = state()
    d.signal(signal.SIGHUP)
    h.wait_until(lambda: "configuration reloaded" in d.log_text(), 20, "the reload")
    time.sleep(0.3)
    after = state()
    obs = {"before": before, "after": after}
    assert d.stop() == 0
    m.stop()
    return obs


@scenario
def reload_lifecycle(ws):
    m, d = pair(ws, daemon={"args": ["--web.enable-lifecycle"]})
    d.wait_up(timeout=30)
    obs = {"ok": d.get("/-/reload", method="POST")}
    with open(d.config_path) as f:
        good_cfg = f.read()
    with open(d.config_path, "w") as f:
        f.write(good_cfg + "no_such_key: 1\n")
    obs["bad"] = d.get("/-/reload", method="POST")
    obs["gauge_bad"] = d.self_value("cerebras_proxy_config_last_reload_successful")
    obs["up_after_bad"] = d.self_value("cerebras_proxy_upstream_up", upstream="default")
    with open(d.config_path, "w") as f:
        f.write(good_cfg)
    obs["ok2"] = d.get("/-/reload", method="POST")
    obs["gauge_ok"] = d.self_value("cerebras_proxy_config_last_reload_successful")
    obs["get"] = d.get("/-/reload")
    assert d.stop() == 0
    m.stop()
    return obs


@scenario
def sigterm_in_flight(ws):
    """SIGTERM while scrapes are in flight: the scrapes waiting for a first
    snapshot (unreachable upstream, X-Prometheus-Scrape-Timeout-Seconds) and
    plain ones complete; the daemon exits 0 within 5 s."""
    port = h.free_port()
    cfg = {"upstreams": [h.upstream_cfg(
        url="https://127.0.0.1:%d/api/v1/metrics/organizations/org_x" % port, ca_file=ws.ca)]}
    d = h.Daemon(ws, cfg)
    results, lock = [], threading.Lock()
    started = threading.Barrier(11, timeout=30)

    def waiting_scrape():
        c = h.httpclient.HTTPConnection("127.0.0.1", d.port, timeout=30)
        try:
            c.putrequest("GET", "/metrics")
            c.putheader("X-Prometheus-Scrape-Timeout-Seconds", "20")
            c.endheaders()
            started.wait()
            r = c.getresponse()
            body = r.read()
            ok = r.status == 200 and int(r.getheader("Content-Length", len(body))) == len(body)
            h.parse_prom(body.decode())
            with lock:
                results.append(("ok" if ok else "bad", r.status))
        except Exception as e:  # noqa: BLE001
            with lock:
                results.append(("error", repr(e)))
        finally:
            c.close()

    threads = [threading.Thread(target=waiting_scrape, daemon=True) for _ in range(10)]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.5)          # the requests have reached the daemon and wait
    sc = Scraper(d.port, threads=3)
    time.sleep(0.3)
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    try:
        rc = d.proc.wait(timeout=30)
    except Exception:
        rc = None
    elapsed = time.monotonic() - t0
    for t in threads:
        t.join(timeout=10)
    sc.stop()
    d.stop()
    return {"rc": rc, "elapsed": elapsed, "results": results, "scraper_statuses": sc.statuses,
            "log": d.log_text()}


@scenario
def sigterm_during_stalled_fetch(ws):
    """A fetch with a long deadline hangs on a stalled upstream: SIGTERM still
    ends the daemon (exit 0) within 5 s."""
    m = h.Mock(ws, window="2s", rate_limit=0, extra=["--fault", "stall:5"])
    d = h.Daemon(ws, {"upstreams": [h.upstream_cfg(m, interval="20s", timeout="15s",
                                                   offset="1s")]})
    h.wait_until(lambda: m.api_requests(), 30, "the stalled request")
    time.sleep(0.5)
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    try:
        rc = d.proc.wait(timeout=30)
    except Exception:
        rc = None
    obs = {"rc": rc, "elapsed": time.monotonic() - t0}
    d.stop()
    m.stop()
    return obs


# ---------------------------------------------------------------- egress proxy


class ConnectProxy:
    """A tiny HTTP CONNECT proxy on 127.0.0.1: counts tunnels, pipes bytes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connects = []
        self.closed = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()

    def handle(self, c):
        up = None
        try:
            c.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    return
                data += chunk
            head, rest = data.split(b"\r\n\r\n", 1)
            line = head.split(b"\r\n")[0].decode()
            method, target, _ = line.split(" ", 2)
            if method != "CONNECT":
                c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.connects.append(target)
            host, port = target.rsplit(":", 1)
            host = host.strip("[]")
            if host not in ("127.0.0.1", "localhost", "::1"):
                c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            up = socket.create_connection((host, int(port)), timeout=10)
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                up.sendall(rest)
            c.settimeout(None)
            up.settimeout(None)
            socks = [c, up]
            while True:
                r, _, _ = select.select(socks, [], [], 30)
                if not r:
                    return
                for s in r:
                    chunk = s.recv(65536)
                    if not chunk:
                        return
                    (up if s is c else c).sendall(chunk)
        except OSError:
            pass
        finally:
            c.close()
            if up is not None:
                up.close()

    def close(self):
        self.closed = True
        self.sock.close()


@scenario
def egress_proxy(ws):
    m = h.Mock(ws, window="2s", rate_limit=0)
    obs = {}
    px = ConnectProxy()
    try:
        # 1. proxy_url in the config.
        d = h.Daemon(ws, {"upstreams": [h.upstream_cfg(
            m, proxy_url="http://127.0.0.1:%d" % px.port)]})
        d.wait_up(timeout=30)
        obs["proxy_url"] = list(px.connects)
        assert d.stop() == 0
        # 2. HTTPS_PROXY in the environment.
        n = len(px.connects)
        d = h.Daemon(ws, {"upstreams": [h.upstream_cfg(m)]},
                     env={"HTTPS_PROXY": "http://127.0.0.1:%d" % px.port})
        d.wait_up(timeout=30)
        obs["https_proxy"] = px.connects[n:]
        assert d.stop() == 0
        # 3. HTTPS_PROXY with NO_PROXY=localhost, upstream on localhost: direct.
        n = len(px.connects)
        d = h.Daemon(ws, {"upstreams": [h.upstream_cfg(m, url=m.url(host="localhost"))]},
                     env={"HTTPS_PROXY": "http://127.0.0.1:%d" % px.port, "NO_PROXY": "localhost"})
        d.wait_up(timeout=30)
        time.sleep(2.5)
        obs["no_proxy"] = px.connects[n:]
        obs["no_proxy_requests"] = len(m.api_requests())
        assert d.stop() == 0
    finally:
        px.close()
        m.stop()
    return obs


# ---------------------------------------------------------------- running


def setUpModule():
    h.Workspace.test_ca()
    ws = h.Workspace("cmp-resilience-e2e-")
    only = os.environ.get("E2E_ONLY")
    names = [n for n in SCENARIOS if not only or n in only.split(",")]

    def run(name):
        try:
            return name, ("ok", SCENARIOS[name](ws))
        except BaseException as e:  # noqa: BLE001 - reported by the test method
            return name, ("error", e, traceback.format_exc())
    jobs = int(os.environ.get("E2E_JOBS", "8"))
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for name, res in pool.map(run, names):
            RESULTS[name] = res
    if os.environ.get("E2E_VERBOSE"):
        print("\nscenarios ran in %.1fs" % (time.monotonic() - t0), file=sys.stderr)


class Base(unittest.TestCase):
    def obs(self, name):
        if name not in RESULTS:
            self.skipTest("scenario %s not run (E2E_ONLY)" % name)
        res = RESULTS[name]
        if res[0] == "error":
            raise AssertionError("scenario %s failed:\n%s" % (name, res[2]))
        return res[1]

    def assert_faulted_then_recovered(self, o, kind):
        self.assertTrue(o["faulted"], "%s: the fault never hit a request" % kind)
        self.assertEqual(o["ready_during"].status, 200)   # snapshot still fresh (5m)
        self.assertIn("default", o["page_during"].text)


class FaultMatrix(Base):
    def test_5xx(self):
        for name, code in (("f_500", 500), ("f_503", 503)):
            o = self.obs(name)
            self.assert_faulted_then_recovered(o, name)
            self.assertTrue(all(r["status"] == code for r in o["faulted"]))

    def test_stall_timeout(self):
        o = self.obs("f_stall")
        self.assert_faulted_then_recovered(o, "stall")
        self.assertTrue(all(r["status"] == 0 for r in o["faulted"]))

    def test_latency_over_deadline(self):
        self.assert_faulted_then_recovered(self.obs("f_latency"), "latency")

    def test_malformed_body(self):
        o = self.obs("f_malformed")
        self.assert_faulted_then_recovered(o, "malformed")
        self.assertGreaterEqual(o["parse_errors"], 1)

    def test_truncated_body(self):
        self.assert_faulted_then_recovered(self.obs("f_truncated"), "truncated")

    # An oversized (gzip) body is a failed exchange: the last good snapshot
    # stays and upstream_up drops to 0 (it once published an empty snapshot).
    def test_oversized_body(self):
        self.assert_faulted_then_recovered(self.obs("f_oversized"), "oversized")

    def test_connection_reset(self):
        self.assert_faulted_then_recovered(self.obs("f_reset"), "reset")

    def test_redirect_not_followed(self):
        o = self.obs("f_redirect")
        self.assert_faulted_then_recovered(o, "redirect")
        self.assertFalse([r for r in o["reqs"] if not r["path"].startswith(h.API_PATH)],
                         "the redirect was followed")

    def test_401_403(self):
        for name, needle in (("f_401", "401"), ("f_403", "private preview")):
            o = self.obs(name)
            self.assert_faulted_then_recovered(o, name)
            # Not retried before the next scheduled poll: at most one request per window.
            windows = [r["window"] for r in o["faulted"]]
            self.assertEqual(len(windows), len(set(windows)), o["faulted"])
            lines = [ln for ln in o["log"].splitlines() if needle in ln]
            self.assertTrue(lines, "%s: no log line mentioning %r" % (name, needle))
            self.assertTrue(any("upstream=default" in ln for ln in lines), lines)

    def test_tls_failures(self):
        o = self.obs("f_tls")
        self.assertTrue(o["wrong-host"], "last good values not served with a wrong-host cert")
        self.assertTrue(o["self-signed"], "last good values not served with a self-signed cert")

    def test_dns_failure(self):
        o = self.obs("f_dns")
        self.assertEqual(o["up"], 0)
        self.assertEqual(o["other_codes"], ["dns"])
        self.assertEqual(o["ready"].status, 503)
        self.assertIn("default", o["ready"].text)

    def test_5xx_retried_with_backoff_in_the_interval(self):
        o = self.obs("retry_5xx_backoff")
        r = o["retried"]
        self.assertEqual([x["status"] for x in r[:3]], [503, 503, 200], r)
        # The retries happen inside the poll interval of the first failure
        # (the next scheduled poll would be a window later).
        self.assertEqual(len({x["window"] for x in r[:3]}), 1, r)
        gaps = [b["t"] - a["t"] for a, b in zip(r, r[1:3])]
        self.assertTrue(all(g >= 0.09 for g in gaps), gaps)

    def test_x_should_retry_false(self):
        o = self.obs("retry_5xx_backoff")
        r = o["no_retry"]
        self.assertEqual(r[0]["status"], 503, r)
        self.assertGreater(r[1]["window"], r[0]["window"], "retried inside the interval: %r" % r)

    def check_retry_after(self, name, at_least):
        o = self.obs(name)
        a = o["after"]
        self.assertEqual(a[0]["status"], 429, a)
        self.assertGreaterEqual(o["code429"], 1)
        gap = a[1]["t"] - a[0]["t"]
        self.assertGreaterEqual(gap, at_least, "a request %.3fs after a 429: %r" % (gap, a))

    def test_429_retry_after_seconds(self):
        self.check_retry_after("retry_after_seconds", 5.0)

    def test_429_retry_after_http_date(self):
        # An HTTP-date has 1 s resolution: the date is at least now + 4 s.
        self.check_retry_after("retry_after_http_date", 4.0)

    def test_429_without_retry_after_waits_for_next_window(self):
        o = self.obs("retry_after_none")
        a = o["after"]
        self.assertEqual(a[0]["status"], 429, a)
        self.assertGreater(a[1]["window"], a[0]["window"], a)

    def test_mock_budget_429_respected(self):
        o = self.obs("mock_budget_429")
        reqs = o["reqs"]
        counted = []
        for i, r in enumerate(reqs):
            if r["over_budget"]:
                inwin = [c for c in counted if c > r["t"] - 8.0]
                ra = max(1, math.ceil(min(inwin) + 8.0 - r["t"])) if inwin else 1
                if i + 1 < len(reqs):
                    gap = reqs[i + 1]["t"] - r["t"]
                    self.assertGreaterEqual(gap, ra - 0.05,
                                            "request %.3fs after a 429 with Retry-After %d: %r" %
                                            (gap, ra, reqs))
            else:
                counted.append(r["t"])

    def test_wrong_key_401(self):
        o = self.obs("wrong_key")
        self.assertTrue(all(r["status"] == 401 and not r["auth"] for r in o["reqs"]), o["reqs"])
        windows = [r["window"] for r in o["reqs"]]
        self.assertEqual(len(windows), len(set(windows)), "401 retried within a window")
        for what in ("log", "page", "ready", "metrics"):
            text = o[what] if what == "log" else o[what].text
            self.assertNotIn(WRONG_KEY, text, what)
        self.assertEqual(o["ready"].status, 503)

    def test_json_log_names_upstream(self):
        o = self.obs("json_log_fault")
        lines = [ln for ln in o["log"].splitlines() if "401" in ln]
        self.assertTrue(lines)
        self.assertTrue(all(ln.startswith("{") for ln in lines), lines)
        self.assertTrue(any("default" in ln for ln in lines), lines)

    def test_budget_in_every_fault(self):
        for name in ("f_500", "f_503", "f_stall", "f_latency", "f_malformed", "f_truncated",
                     "f_oversized", "f_reset", "f_redirect", "f_401", "f_403", "f_tls"):
            if name in RESULTS and RESULTS[name][0] == "ok":
                self.assertLessEqual(h.max_in_window([r["t"] for r in RESULTS[name][1]["reqs"]],
                                                     10.0), 6, name)


class Secrets(Base):
    def test_key_file_in_credentials_directory(self):
        o = self.obs("key_file_credentials")
        warn = [ln for ln in o["log"].splitlines() if "cerebras-api-key" in ln and "readable" in ln]
        self.assertTrue(warn, "no warning about the world-readable key file:\n" + o["log"])
        self.assertFalse([ln for ln in o["log"].splitlines()
                          if "readable" in ln and "api_key_file" not in ln],
                         "a warning about the config file's mode (it holds no secret):\n" + o["log"])

    def test_sigint_exits_0(self):
        self.assertEqual(self.obs("key_file_credentials")["sigint_rc"], 0)


class RestartsAndState(Base):
    def test_restart_storm(self):
        o = self.obs("restart_storm")
        self.assertTrue(o["alive"])
        self.assertTrue(o["ledgers"])
        self.assertLess(o["elapsed"], 30.0, "the storm did not fit in one budget window")
        self.assertLessEqual(h.max_in_window([r["t"] for r in o["reqs"]], 30.0), 6, o["reqs"])
        # The storm really pressed on the budget (the daemon kept wanting to poll).
        self.assertGreaterEqual(len(o["reqs"]), 6, o["reqs"])

    def test_snapshot_served_after_restart(self):
        o = self.obs("restart_serves_snapshot")
        self.assertTrue(o["values_after"], "no upstream series right after the restart")
        self.assertEqual(o["values_after"], o["values_before"])
        self.assertEqual(o["lm_after"], o["lm_before"])
        # Honest age: at least the 3 s the daemon was down.
        self.assertGreaterEqual(o["age_after"], 3.0 - 0.5)
        self.assertGreaterEqual(o["age_header_after"], 2)
        self.assertEqual(o["ready_after"], 200)

    def test_corrupt_ledger(self):
        o = self.obs("corrupt_ledger")
        self.assertTrue(o["alive"])
        warn = [ln for ln in o["log"].splitlines() if "ledger" in ln and "warn" in ln]
        self.assertTrue(warn, "no warning about the ledger:\n" + o["log"])
        # Conservative: the window (8 s) is assumed spent at start.
        self.assertGreaterEqual(o["first"]["t"] - o["t_start"], 8.0 - 0.5, o["first"])

    def test_staleness(self):
        o = self.obs("staleness")
        s = o["samples"]
        self.assertTrue(h.find(s, "cerebras_proxy_upstream_up", upstream="default"))
        self.assertTrue(h.find(s, "process_start_time_seconds"))
        self.assertEqual(h.value(s, "cerebras_proxy_snapshot_served", upstream="default"), 0)
        for r in (o["ready"], o["readyz"]):
            self.assertEqual(r.status, 503)
            self.assertIn("default", r.text)
        self.assertEqual(o["ready_after"], 200)


class ReloadAndShutdown(Base):
    def test_sighup_changes_upstreams(self):
        o = self.obs("reload_sighup")
        self.assertEqual(o["errors"], [])
        self.assertTrue(o["statuses"])
        self.assertTrue(all(s == 200 for s in o["statuses"]), set(o["statuses"]))
        self.assertEqual(o["after_add"], (1, 4))
        self.assertEqual(o["after_bad"], (1, 1))
        self.assertTrue(o["alive_after_bad"])
        self.assertEqual(set(o["after_remove"]), {"org_second"})

    def test_sighup_unchanged_keeps_ledger(self):
        o = self.obs("reload_unchanged_keeps_ledger")
        self.assertTrue(o["alive"])
        # budget 3 per 20 s (+1 s margin) in the daemon
        self.assertLessEqual(h.max_in_window([r["t"] for r in o["reqs"]], 21.0), 3, o["reqs"])

    # A reload restores the persisted ledger into the shared one; the same
    # send must not be counted twice (it once dropped remaining by one).
    def test_sighup_uses_no_budget(self):
        o = self.obs("reload_no_phantom_budget")
        self.assertEqual(o["before"][0], o["after"][0], "a request was sent around the reload")
        self.assertEqual(o["after"][1], o["before"][1], "remaining budget before/after SIGHUP")

    def test_lifecycle_reload(self):
        o = self.obs("reload_lifecycle")
        self.assertEqual(o["ok"].status, 200)
        self.assertEqual(o["bad"].status, 500)
        self.assertIn("no_such_key", o["bad"].text)
        self.assertEqual(o["gauge_bad"], 0)
        self.assertEqual(o["up_after_bad"], 1)
        self.assertEqual(o["ok2"].status, 200)
        self.assertEqual(o["gauge_ok"], 1)
        self.assertEqual(o["get"].status, 405)

    def test_sigterm_with_scrapes_in_flight(self):
        o = self.obs("sigterm_in_flight")
        self.assertEqual(o["rc"], 0, o["log"][-2000:])
        self.assertLess(o["elapsed"], 5.0)
        self.assertEqual(len(o["results"]), 10)
        self.assertEqual([r for r in o["results"] if r[0] != "ok"], [], o["results"])


    def test_sigterm_during_stalled_fetch(self):
        o = self.obs("sigterm_during_stalled_fetch")
        self.assertEqual(o["rc"], 0)
        self.assertLess(o["elapsed"], 5.0)


class EgressProxy(Base):
    def test_proxy_url(self):
        o = self.obs("egress_proxy")
        self.assertTrue(o["proxy_url"], "no CONNECT through proxy_url")

    def test_https_proxy_env(self):
        o = self.obs("egress_proxy")
        self.assertTrue(o["https_proxy"], "no CONNECT through HTTPS_PROXY")

    def test_no_proxy_bypass(self):
        o = self.obs("egress_proxy")
        self.assertEqual(o["no_proxy"], [], "NO_PROXY=localhost went through the proxy")
        self.assertGreaterEqual(o["no_proxy_requests"], 1)


class ZzSecrets(unittest.TestCase):
    def test_key_never_appears(self):
        # Every daemon log of every scenario, every body fetched.
        self.assertGreater(len(h.SEEN_LOGS), 0 if os.environ.get("E2E_ONLY") else 10)
        self.assertEqual(h.secret_hits(), [], "the API key leaked")
        self.assertEqual(h.secret_hits(WRONG_KEY), [], "the wrong API key leaked")


if __name__ == "__main__":
    h.main()
