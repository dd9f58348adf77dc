#!/usr/bin/env python3
"""One daemon polling N organizations every 10 s: what a cycle costs.

For each N, starts one mock upstream (plain HTTP on 127.0.0.1; --endpoints
40 gives ~100 KB per organization, like a real one) and the daemon with N
upstreams on it (one URL each, so one budget ledger each, told apart by an
`org` extra label), waits until every organization was served, then for
--cycles poll cycles measures:

  cpu/org/cycle   the daemon's CPU time (utime+stime from /proc/PID/stat)
                  divided by N and the number of cycles
  polls/org/cycle min and max over the organizations, from the daemon's own
                  cerebras_proxy_upstream_requests_total (1.0 = every
                  organization polled once per cycle)
  max loop lag    cerebras_proxy_event_loop_lag_seconds at the end (the
                  longest lateness of its 100 ms timer over the last 30-60 s;
                  "n/a" for a binary without the metric)
  scrape p99      of gzip OpenMetrics scrapes of /metrics (one every 100 ms
                  from one client) started during a burst, i.e. from the
                  poll offset to 3 s after it; a scrape that takes longer
                  than 10 s counts as 10 s
  VmRSS, RssAnon  at the end (/proc/PID/status), and the /metrics text size
  others, steal   during the measured cycles, in ms per second: CPU time the
                  machine spent on everything but the daemon (the mock, the
                  scraper, any other process), and time the hypervisor kept
                  the guest's vCPUs from running (/proc/stat "steal"). Both
                  take cores from the daemon's I/O thread: a lag or p99
                  outlier with high values here is the machine, not the code.

Usage: bench/run_org_bench.py [--build DIR] [--daemon BIN] [--orgs 1,10,100,300]
                              [--cycles 3] [--endpoints 40] [--keep DIR]
Performance is reported, never asserted; exit 1 only when a process fails.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

INTERVAL = 10
OFFSET = 1
ORG = "org_abc123"
KEY = "bench-key-0123456789"


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu():
    """(busy, steal) seconds of all CPUs so far, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / hz, v[7] / hz


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def get(url, headers=None, timeout=10):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def metrics(port):
    return get("http://127.0.0.1:%d/metrics" % port, {"Accept": "text/plain"}).decode()


def self_values(text, name):
    """{upstream: summed value} of a self-metric."""
    out = {}
    for m in re.finditer(r'^%s\{([^}]*)\} (\S+)$' % re.escape(name), text, re.M):
        u = re.search(r'upstream="([^"]*)"', m.group(1))
        if u:
            out[u.group(1)] = out.get(u.group(1), 0.0) + float(m.group(2))
    return out


def run(args, daemon_bin, mock_bin, n, work):
    d = os.path.join(work, "n%d" % n)
    # A fresh start each time: an old mock.port would point the daemon at a
    # mock that is gone, old state files would restore snapshots and ledgers.
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    key = os.path.join(d, "key")
    with open(key, "w") as f:
        f.write(KEY + "\n")
    os.chmod(key, 0o600)
    port_file = os.path.join(d, "mock.port")
    mock = subprocess.Popen([mock_bin, "--api-key-file", key, "--listen", "127.0.0.1:0",
                             "--port-file", port_file, "--window", "%ds" % INTERVAL,
                             "--endpoints", str(args.endpoints), "--rate-limit", "1000000",
                             "--request-log", os.path.join(d, "requests.jsonl"), "--quiet"],
                            stderr=open(os.path.join(d, "mock.log"), "w"))
    daemon = None
    try:
        for _ in range(200):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        mock_port = int(open(port_file).read())
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        cfg = os.path.join(d, "config.yml")
        with open(cfg, "w") as f:
            f.write('listen: "127.0.0.1:%d"\nstate_dir: "%s"\nlog:\n  level: warn\nupstreams:\n'
                    % (port, os.path.join(d, "state")))
            for i in range(n):
                f.write('  - name: o%d\n    url: "http://127.0.0.1:%d/api/v1/metrics/organizations/%s?o=%d"\n'
                        '    api_key_file: "%s"\n    poll_interval: %ds\n    poll_offset: %ds\n'
                        '    timeout: 5s\n    max_staleness: 60s\n    extra_labels: {org: "o%d"}\n'
                        '    rate_limit: {requests: 12, window: 60s}\n'
                        % (i, mock_port, ORG, i, key, INTERVAL, OFFSET, i))
        os.chmod(cfg, 0o600)
        daemon = subprocess.Popen([daemon_bin, "--config.file=" + cfg],
                                  stderr=open(os.path.join(d, "daemon.log"), "w"))
        # Every organization served once, then one more cycle to settle.
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                up = self_values(metrics(port), "cerebras_proxy_upstream_up")
                if len(up) == n and all(v == 1 for v in up.values()):
                    break
            except Exception:
                pass
            time.sleep(0.5)
        else:
            print("N=%d: not every organization came up within 90 s" % n, file=sys.stderr)
        # Start measuring just before a cycle boundary.
        now = time.time()
        time.sleep(INTERVAL - now % INTERVAL + INTERVAL - 0.5)
        before = self_values(metrics(port), "cerebras_proxy_upstream_requests_total")
        cpu0, t0 = cpu_seconds(daemon.pid), time.time()
        busy0, steal0 = machine_cpu()
        lat = []
        stop = threading.Event()

        def scraper():
            url = "http://127.0.0.1:%d/metrics" % port
            hdr = {"Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
                   "Accept-Encoding": "gzip"}
            while not stop.is_set():
                start = time.time()
                try:
                    get(url, hdr, timeout=10)
                    took = time.time() - start
                except Exception:
                    took = 10.0
                phase = start % INTERVAL
                if OFFSET <= phase < OFFSET + 3:
                    lat.append(took)
                time.sleep(max(0.0, 0.1 - (time.time() - start)))

        th = threading.Thread(target=scraper)
        th.start()
        time.sleep(args.cycles * INTERVAL)
        cpu1, t1 = cpu_seconds(daemon.pid), time.time()
        busy1, steal1 = machine_cpu()
        stop.set()
        th.join()
        text = metrics(port)
        after = self_values(text, "cerebras_proxy_upstream_requests_total")
        cycles = (t1 - t0) / INTERVAL
        polls = [(after.get("o%d" % i, 0) - before.get("o%d" % i, 0)) / args.cycles for i in range(n)]
        lag = re.search(r"^cerebras_proxy_event_loop_lag_seconds (\S+)$", text, re.M)
        lat.sort()
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan")
        body = [ln for ln in text.splitlines(True) if not ln.startswith(("cerebras_proxy_", "process_", "# HELP cerebras_proxy", "# TYPE cerebras_proxy", "# HELP process_", "# TYPE process_"))]
        return {
            "n": n,
            "cpu_ms": 1000 * (cpu1 - cpu0) / n / cycles,
            "polls_min": min(polls), "polls_max": max(polls),
            "lag_ms": 1000 * float(lag.group(1)) if lag else None,
            "p99_ms": 1000 * p99, "max_ms": 1000 * lat[-1] if lat else float("nan"),
            "scrapes": len(lat),
            "rss_mib": status_kib(daemon.pid, "VmRSS") / 1024,
            "anon_mib": status_kib(daemon.pid, "RssAnon") / 1024,
            "text_mib": sum(len(x) for x in body) / 2**20,
            "others_ms": 1000 * ((busy1 - busy0) - (cpu1 - cpu0)) / (t1 - t0),
            "steal_ms": 1000 * (steal1 - steal0) / (t1 - t0),
        }
    finally:
        for p in (daemon, mock):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--build", default=os.environ.get("CMP_BUILD_DIR", os.path.join(root, "build")))
    ap.add_argument("--daemon", help="daemon binary (default: BUILD/cerebras-metrics-proxy)")
    ap.add_argument("--orgs", default="1,10,100,300")
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--endpoints", type=int, default=40)
    ap.add_argument("--keep", help="keep configs and logs in this directory")
    args = ap.parse_args()
    daemon_bin = args.daemon or os.path.join(args.build, "cerebras-metrics-proxy")
    mock_bin = os.path.join(args.build, "cerebras-mock-upstream")
    work = args.keep or tempfile.mkdtemp(prefix="cmp-org-bench-")
    print("| N | CPU ms/org/cycle | polls/org/cycle (min-max) | max loop lag ms | scrape p99 ms (max) during burst | VmRSS MiB | RssAnon MiB | /metrics text MiB | others, steal ms/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    try:
        for n in [int(x) for x in args.orgs.split(",")]:
            try:
                r = run(args, daemon_bin, mock_bin, n, work)
            except OSError as e:  # e.g. /metrics not answered within 10 s
                print("| %d | no result: %s |" % (n, e), flush=True)
                continue
            print("| %d | %.2f | %.2f-%.2f | %s | %.0f (%.0f, %d scrapes) | %.1f | %.1f | %.2f | %.0f, %.0f |" % (
                r["n"], r["cpu_ms"], r["polls_min"], r["polls_max"],
                "n/a" if r["lag_ms"] is None else "%.1f" % r["lag_ms"],
                r["p99_ms"], r["max_ms"], r["scrapes"], r["rss_mib"], r["anon_mib"], r["text_mib"],
                r["others_ms"], r["steal_ms"]),
                flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
