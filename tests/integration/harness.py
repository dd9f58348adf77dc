#!/usr/bin/env python3
"""Shared helpers of the daemon + mock end-to-end suites (stdlib only).

Every *_e2e_test.py does

    import harness
    ...
    if __name__ == "__main__":
        harness.main()          # parses --daemon --mock --repo, then unittest

and uses:
  - harness.Workspace()            temp dir (removed at exit unless KEEP_E2E=1),
                                   test CA via make_test_ca.sh (ws.ca_dir, ws.ca)
  - harness.Mock(ws, ...)          the simulated upstream over TLS on port 0, its
                                   request log (mock.requests()), faults
                                   (mock.fault("500", count=2)), /mock/expected
  - harness.Daemon(ws, cfg)        writes a config (dict -> YAML), starts the
                                   daemon on 127.0.0.1:0, parses the port from its
                                   log (stderr captured to a file: d.log_text())
  - harness.upstream_cfg(mock, ...) one `upstreams:` entry for a mock
  - harness.request(port, method, path, headers) -> Response(status, headers, body)
  - harness.parse_prom(text) -> [Sample(name, labels, value)], harness.find/value
  - harness.max_in_window(times, W) sliding-window maximum over log times
  - harness.wait_until(fn, timeout, what) polls a condition
Every process started here is killed at exit (atexit, and on SIGTERM of the
test itself). Every body fetched and every daemon log is remembered, so a
suite can assert that the API key never appeared (harness.assert_no_secret).
"""

import argparse
import atexit
import gzip as _gzip
import http.client as httpclient
import json
import math
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
DAEMON = None
MOCK = None
REPO = None

API_KEY = "sk-e2e-SECRET-9f3c1a7d5b2e"   # greppable, never expected in any output
ORG = "org_abc123"
API_PATH = "/api/v1/metrics/organizations/"

# Slowness factor for timeouts (ASan runs ~3x slower): E2E_SLOW=3.
SLOW = float(os.environ.get("E2E_SLOW", "1"))

# ---------------------------------------------------------------- arguments


def parse_args(argv=None):
    """Parses --daemon/--mock/--repo; sets the module globals; returns the rest."""
    global DAEMON, MOCK, REPO
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--daemon", required=True)
    p.add_argument("--mock", required=True)
    p.add_argument("--repo", default=os.path.dirname(os.path.dirname(HERE)))
    args, rest = p.parse_known_args(sys.argv[1:] if argv is None else argv)
    DAEMON = os.path.abspath(args.daemon)
    MOCK = os.path.abspath(args.mock)
    REPO = os.path.abspath(args.repo)
    for exe in (DAEMON, MOCK):
        if not os.access(exe, os.X_OK):
            print("skip: %s is not an executable" % exe, file=sys.stderr)
            sys.exit(77)
    if not shutil.which("openssl"):
        print("skip: openssl is missing (make_test_ca.sh)", file=sys.stderr)
        sys.exit(77)
    return rest


def project_version():
    """The one version source: project(VERSION) in CMakeLists.txt."""
    with open(os.path.join(REPO, "CMakeLists.txt")) as f:
        return re.search(r"^project\(cerebras-metrics-proxy VERSION (\d+\.\d+\.\d+)", f.read(), re.M).group(1)


def main():
    rest = parse_args()
    unittest.main(argv=[sys.argv[0]] + rest)


# ---------------------------------------------------------------- cleanup

_procs = []            # every Popen started here
_procs_lock = threading.Lock()
_tmpdirs = []
SEEN_TEXTS = []        # (origin, text) of every body fetched, for the secret grep
SEEN_LOGS = []         # paths of every captured daemon/mock stderr


def _register(proc):
    with _procs_lock:
        _procs.append(proc)


def kill_all():
    with _procs_lock:
        procs = list(_procs)
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
    for p in procs:
        try:
            p.wait(timeout=5)
        except Exception:
            pass


def _cleanup():
    kill_all()
    if os.environ.get("KEEP_E2E") != "1":
        for d in _tmpdirs:
            shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def _on_term(signum, frame):
    _cleanup()
    os._exit(128 + signum)


signal.signal(signal.SIGTERM, _on_term)


def remember(origin, text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    SEEN_TEXTS.append((origin, text))


def secret_hits(key=API_KEY):
    """Every place the key occurs in: fetched bodies and captured logs."""
    hits = []
    for origin, text in SEEN_TEXTS:
        if key in text:
            hits.append(origin)
    for path in SEEN_LOGS:
        try:
            with open(path, errors="replace") as f:
                if key in f.read():
                    hits.append(path)
        except OSError:
            pass
    return hits


def secret_coverage():
    return len(SEEN_TEXTS), len(SEEN_LOGS)


# ---------------------------------------------------------------- waiting


def upstream_part(text):
    """The upstream families: everything before the daemon's own metrics."""
    cut = len(text)
    for marker in ("# HELP cerebras_proxy_", "# TYPE cerebras_proxy_"):
        i = text.find(marker)
        if i >= 0:
            cut = min(cut, i)
    return text[:cut]


def wait_until(fn, timeout=20.0, what="condition", interval=0.1):
    """Calls fn() until it returns a truthy value; returns it. Raises
    AssertionError naming `what` (and the last exception) after timeout*SLOW."""
    deadline = time.monotonic() + timeout * SLOW
    last_exc = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last_exc = e
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s%s" % (
                timeout * SLOW, what, "" if last_exc is None else " (last error: %r)" % last_exc))
        time.sleep(interval)


def terminate(proc, timeout=10):
    """SIGTERM, then SIGKILL if it has not exited after `timeout` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- workspace


class Workspace:
    """A temp dir with the test CA in it. Shared CA dir per process."""

    _ca_dir = None
    _ca_lock = threading.Lock()

    def __init__(self, prefix="cmp-e2e-"):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        _tmpdirs.append(self.dir)
        self.ca_dir = Workspace.test_ca()
        self.ca = os.path.join(self.ca_dir, "ca.pem")
        self._n = 0
        self._lock = threading.Lock()

    @classmethod
    def test_ca(cls):
        with cls._ca_lock:
            if cls._ca_dir is None:
                d = tempfile.mkdtemp(prefix="cmp-e2e-ca-")
                _tmpdirs.append(d)
                subprocess.run([os.path.join(HERE, "make_test_ca.sh"), d], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
                cls._ca_dir = d
            return cls._ca_dir

    def subdir(self, name):
        with self._lock:
            self._n += 1
            n = self._n
        d = os.path.join(self.dir, "%s-%d" % (name, n))
        os.makedirs(d)
        return d

    def cert(self, name):
        return os.path.join(self.ca_dir, name)


# ---------------------------------------------------------------- mock


class Mock:
    """cerebras-mock-upstream on 127.0.0.1:0.

    cert: "server" (default), "wrong-host", "self-signed", or None for plain http."""

    def __init__(self, ws, window="2s", rate_limit=None, rate_window=None, cert="server",
                 endpoints=None, extra=(), api_key=API_KEY, org=ORG, port=0):
        self.ws = ws
        self.dir = ws.subdir("mock")
        self.port_file = os.path.join(self.dir, "port")
        self.log = os.path.join(self.dir, "requests.jsonl")
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.api_key = api_key
        self.org = org
        self.tls = cert is not None
        self.window_arg = window
        args = [MOCK, "--api-key", api_key, "--listen", "127.0.0.1:%d" % port,
                "--port-file", self.port_file, "--request-log", self.log, "--window", window]
        if rate_limit is not None:
            args += ["--rate-limit", str(rate_limit)]
        if rate_window is not None:
            args += ["--rate-window", rate_window]
        if endpoints is not None:
            args += ["--endpoints", str(endpoints)]
        if org != ORG:
            args += ["--org", org]
        if cert is not None:
            args += ["--tls-cert", ws.cert(cert + ".pem"), "--tls-key", ws.cert(cert + ".key")]
        args += list(extra)
        self.args = args
        self._start()

    def _start(self):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL)
        _register(self.proc)
        deadline = time.monotonic() + 15 * SLOW
        while True:
            if os.path.exists(self.port_file):
                try:
                    with open(self.port_file) as f:
                        self.port = int(f.read().strip())
                    break
                except ValueError:
                    pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mock did not start: " + self.stderr_text())
            time.sleep(0.02)
        # Control endpoint client: verify with the test CA, but not the host
        # name (wrong-host certs), and not at all for self-signed.
        ctx = ssl.create_default_context(cafile=self.ws.ca)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.ctx = ctx

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    def url(self, org=None, host="127.0.0.1"):
        return "%s://%s:%d%s%s" % (self.scheme, host, self.port, API_PATH, org or self.org)

    def stderr_text(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _conn(self, timeout=10):
        if self.tls:
            return httpclient.HTTPSConnection("127.0.0.1", self.port, timeout=timeout * SLOW,
                                               context=self.ctx)
        return httpclient.HTTPConnection("127.0.0.1", self.port, timeout=timeout * SLOW)

    def control(self, method, path, headers=None):
        c = self._conn()
        try:
            c.request(method, path, headers=headers or {})
            r = c.getresponse()
            body = r.read()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), body
        finally:
            c.close()

    def fault(self, kind, **params):
        """Queues a fault: mock.fault("500", count=3), mock.fault("429", retry_after=3)."""
        q = urllib.parse.urlencode([("kind", kind)] + [(k, str(v)) for k, v in params.items()])
        st, _, body = self.control("POST", "/mock/fault?" + q)
        if st != 200:
            raise AssertionError("mock refused fault %s %s: %d %r" % (kind, params, st, body))
        return json.loads(body or b"{}") if body.strip().startswith(b"{") else body

    def clear_faults(self):
        st, _, body = self.control("POST", "/mock/fault/clear")
        assert st == 200, (st, body)

    def clear_budget(self):
        st, _, body = self.control("POST", "/mock/budget/clear")
        assert st == 200, (st, body)

    def faults(self):
        st, _, body = self.control("GET", "/mock/faults")
        assert st == 200, (st, body)
        return json.loads(body)

    def expected(self):
        st, _, body = self.control("GET", "/mock/expected")
        assert st == 200, (st, body)
        return json.loads(body)

    def window_body(self, w):
        st, _, body = self.control("GET", "/mock/window/%d" % w)
        assert st == 200, (st, body)
        return body.decode()

    def requests(self):
        """Every line of the request log, parsed (lines still being written skipped)."""
        out = []
        try:
            with open(self.log) as f:
                for line in f:
                    if not line.endswith("\n"):
                        break
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        except FileNotFoundError:
            pass
        return out

    def api_requests(self):
        return [r for r in self.requests() if r.get("path", "").startswith(API_PATH)]

    def stop(self):
        terminate(self.proc)
        self._stderr.close()

    def restart(self):
        """Stops and starts again on the same port (faults and budget reset)."""
        port = self.port
        self.stop()
        self.args = [a if a != "127.0.0.1:0" else "127.0.0.1:%d" % port for a in self.args]
        self._start()


def max_in_window(times, window):
    """The most timestamps (seconds, any order) inside any window [t, t+window)."""
    ts = sorted(times)
    best, j = 0, 0
    for i in range(len(ts)):
        while ts[i] - ts[j] >= window:
            j += 1
        best = max(best, i - j + 1)
    return best


def log_max_in_window(mock, window, statuses=None):
    """Sliding-window maximum over the mock's request log (all lines reached the mock)."""
    reqs = mock.requests()
    if statuses is not None:
        reqs = [r for r in reqs if r["status"] in statuses]
    return max_in_window([r["t"] for r in reqs], window)


def parse_duration(s):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", s)
    assert m, s
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


# ---------------------------------------------------------------- value formula

BASE_NAMES = [
    "llama-3.3-70b", "qwen-3-32b", "llama3.1-8b", "gpt-oss-120b",
    "qwen-3-235b-a22b-instruct-2507", "llama-4-scout-17b-16e-instruct",
    "qwen-3-coder-480b", "llama-4-maverick-17b-128e-instruct",
]
LATENCY = [("ttft_seconds", 100, 200), ("tpot_seconds", 5, 20),
           ("e2e_latency_seconds", 500, 2000), ("queue_time_seconds", 1, 50)]
STATS = ["avg", "p50", "p90", "p95", "p99"]
FAMILIES = ["inference_endpoint_status", "requests_count_total", "requests_success_total",
            "requests_failure_total", "input_tokens_total", "output_tokens_total",
            "cache_rate"] + [name for name, _, _ in LATENCY]


def u(w, e, k):
    m = 1000003
    return ((w % m) * 7919 + (e % m) * 104729 + k * 1299709) % m % 1000


def endpoint_name(e):
    return BASE_NAMES[e] if e < 8 else "model-%d-%s" % (e, BASE_NAMES[e % 8])


def expected_values(w, endpoints=2, org=ORG, down=0, label="statistic"):
    """{(name, frozenset(labels)): value} of window w by the documented formula."""
    out = {}

    def put(name, labels, v):
        out[(name, frozenset(labels.items()))] = float(v)

    for e in range(endpoints):
        base = {"endpoint": endpoint_name(e), "organization_id": org}
        s, f429, f500 = 100 + u(w, e, 0), u(w, e, 1) % 5, u(w, e, 2) % 3
        c = s + f429 + f500
        put("inference_endpoint_status", base, -1 if e >= endpoints - down else 1)
        put("requests_count_total", base, c)
        put("requests_success_total", base, s)
        put("requests_failure_total", dict(base, http_code="429"), f429)
        put("requests_failure_total", dict(base, http_code="500"), f500)
        put("input_tokens_total", base, c * (200 + u(w, e, 3)))
        put("output_tokens_total", base, c * (50 + u(w, e, 4) % 200))
        put("cache_rate", base, u(w, e, 5) / 1000)
        for f, (name, lo, span) in enumerate(LATENCY):
            p50 = lo + u(w, e, 10 + f) % span
            for stat, ms in zip(STATS, [p50 * 3 // 2, p50, 2 * p50, 3 * p50, 5 * p50]):
                put(name, dict(base, **{label: stat}), ms / 1000)
    return out


# ---------------------------------------------------------------- prometheus text

_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+(-?\d+))?\s*$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


class Sample:
    __slots__ = ("name", "labels", "value", "timestamp")

    def __init__(self, name, labels, value, timestamp=None):
        self.name, self.labels, self.value, self.timestamp = name, labels, value, timestamp

    def __repr__(self):
        return "Sample(%s%r=%r)" % (self.name, self.labels, self.value)


def _unescape(s):
    return s.replace("\\\\", "\x00").replace('\\"', '"').replace("\\n", "\n").replace("\x00", "\\")


def _parse_value(v):
    if v in ("+Inf", "Inf"):
        return math.inf
    if v == "-Inf":
        return -math.inf
    if v == "NaN":
        return math.nan
    return float(v)


_line_cache = {}   # sample line -> parsed parts: scrapes repeat most lines


def parse_prom(text, openmetrics=False):
    """Minimal parser of Prometheus text 0.0.4 / OpenMetrics: returns samples,
    raises ValueError on a line that is neither a comment nor a sample, or on
    a sample after `# EOF`."""
    samples = []
    eof = False
    for n, line in enumerate(text.split("\n"), 1):
        if eof and line != "":
            raise ValueError("line %d after # EOF: %r" % (n, line))
        if line == "" or (line.startswith("#") and line != "# EOF"):
            if line.startswith("# TYPE") or line.startswith("# HELP") or line.startswith("# UNIT"):
                if len(line.split(" ", 3)) < 3:
                    raise ValueError("line %d: bad comment %r" % (n, line))
            continue
        if line == "# EOF":
            eof = True
            continue
        cached = _line_cache.get(line)
        if cached is not None:
            name, labels, val, ts = cached
            samples.append(Sample(name, dict(labels), val, ts))
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise ValueError("line %d: not a sample: %r" % (n, line))
        labels = {}
        body = m.group(3)
        if body:
            pos = 0
            while pos < len(body):
                lm = _LABEL_RE.match(body, pos)
                if not lm:
                    raise ValueError("line %d: bad labels %r" % (n, body))
                labels[lm.group(1)] = _unescape(lm.group(2))
                pos = lm.end()
        ts = m.group(6)
        smp = Sample(m.group(1), labels, _parse_value(m.group(4)), None if ts is None else int(ts))
        samples.append(smp)
        if len(_line_cache) > 500000:
            _line_cache.clear()
        _line_cache[line] = (smp.name, dict(labels), smp.value, smp.timestamp)
    if openmetrics and not eof:
        raise ValueError("no # EOF")
    return samples


def find(samples, name, **labels):
    return [s for s in samples if s.name == name
            and all(s.labels.get(k) == v for k, v in labels.items())]


def value(samples, name, default=None, **labels):
    """The value of the one sample matching; default if none; raises if several."""
    m = find(samples, name, **labels)
    if not m:
        return default
    if len(m) > 1:
        raise AssertionError("%d samples match %s%r" % (len(m), name, labels))
    return m[0].value


def total(samples, name, **labels):
    return sum(s.value for s in find(samples, name, **labels))


def families(text):
    """{name: type} from # TYPE lines."""
    out = {}
    for line in text.split("\n"):
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) >= 4:
                out[parts[2]] = parts[3]
    return out


# ---------------------------------------------------------------- local HTTP


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # lower-case names
        self.body = body                # bytes, as received (not decoded)

    @property
    def text(self):
        b = self.body
        if self.headers.get("content-encoding") == "gzip":
            b = _gzip.decompress(b)
        return b.decode("utf-8")

    def __repr__(self):
        return "Response(%d, %r, %r)" % (self.status, self.headers, self.body[:200])


def request(port, method="GET", path="/metrics", headers=None, body=None, timeout=10,
         host="127.0.0.1"):
    c = httpclient.HTTPConnection(host, port, timeout=timeout * SLOW)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        resp = Response(r.status, dict((k.lower(), v) for k, v in r.getheaders()), data)
    finally:
        c.close()
    if data:
        try:
            remember("%s %s :%d" % (method, path, port), resp.text)
        except Exception:
            remember("%s %s :%d" % (method, path, port), data)
    return resp


# ---------------------------------------------------------------- daemon config


def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(obj, indent=0):
    pad = " " * indent
    lines = []
    if isinstance(obj, dict):
        if not obj:
            return pad + "{}\n"
        for k, v in obj.items():
            if isinstance(v, dict) and v:
                lines.append("%s%s:\n%s" % (pad, k, to_yaml(v, indent + 2)))
            elif isinstance(v, dict):
                lines.append("%s%s: {}\n" % (pad, k))
            elif isinstance(v, list):
                lines.append("%s%s:\n%s" % (pad, k, to_yaml(v, indent + 2)))
            else:
                lines.append("%s%s: %s\n" % (pad, k, _yaml_scalar(v)))
    elif isinstance(obj, list):
        for item in obj:
            inner = to_yaml(item, indent + 2)
            lines.append(pad + "- " + inner[indent + 2:])
    else:
        lines.append(pad + _yaml_scalar(obj) + "\n")
    return "".join(lines)


def upstream_cfg(mock=None, name="default", url=None, interval="2s", offset="300ms",
                 timeout="1s", requests=None, window=None, max_staleness=None, ca_file=None,
                 api_key_env="CMP_E2E_API_KEY", **extra):
    """One `upstreams:` entry. Defaults: the mock's URL, its CA, a budget of
    6 per 3*interval (only if requests/window given), key from CMP_E2E_API_KEY."""
    u_ = {"name": name, "url": url or mock.url()}
    if api_key_env is not None:
        u_["api_key_env"] = api_key_env
    ca = ca_file if ca_file is not None else (mock.ws.ca if mock is not None else "")
    if ca:
        u_["ca_file"] = ca
    u_["timeout"] = timeout
    u_["poll_interval"] = interval
    u_["poll_offset"] = offset
    if requests is not None or window is not None:
        u_["rate_limit"] = {"requests": requests or 6, "window": window or "60s"}
    if max_staleness is not None:
        u_["max_staleness"] = max_staleness
    u_.update(extra)
    return u_


class Daemon:
    """The daemon under test, listening on 127.0.0.1:0.

    cfg: the whole config as a dict; `state_dir` defaults to a fresh dir and
    `upstreams` must be given. The API key is put in the environment under
    CMP_E2E_API_KEY (and any api_key_env named by the upstreams)."""

    def __init__(self, ws, cfg, args=(), env=None, start=True, state_dir=None,
                 listen="127.0.0.1:0", api_key=API_KEY, log_level="debug"):
        self.ws = ws
        self.dir = ws.subdir("daemon")
        self.cfg = dict(cfg)
        self.state_dir = state_dir or self.cfg.get("state_dir") or os.path.join(self.dir, "state")
        self.cfg["state_dir"] = self.state_dir
        self.config_path = os.path.join(self.dir, "config.yml")
        self.write_config(self.cfg)
        self.extra_args = list(args)
        self.listen = listen
        self.log_level = log_level
        self.env = dict(os.environ)
        for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY",
                  "no_proxy", "ALL_PROXY", "all_proxy", "CREDENTIALS_DIRECTORY"):
            self.env.pop(k, None)
        self.env["CMP_E2E_API_KEY"] = api_key
        for up in self.cfg.get("upstreams", []):
            if up.get("api_key_env"):
                self.env.setdefault(up["api_key_env"], api_key)
        if env:
            self.env.update(env)
        self.proc = None
        self.port = None
        self.starts = 0
        self.log_path = None
        if start:
            self.start()

    def write_config(self, cfg, path=None):
        path = path or self.config_path
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(to_yaml(cfg))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        return path

    def command(self):
        cmd = [DAEMON, "--config.file=" + self.config_path, "--log.level=" + self.log_level]
        if self.listen:
            cmd.append("--web.listen-address=" + self.listen)
        return cmd + self.extra_args

    def start(self, wait_port=True):
        self.starts += 1
        self.log_path = os.path.join(self.dir, "stderr-%d.log" % self.starts)
        SEEN_LOGS.append(self.log_path)
        self._log = open(self.log_path, "wb")
        self._log_offset = 0
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=self._log,
                                     stdin=subprocess.DEVNULL, env=self.env)
        _register(self.proc)
        if wait_port:
            self.port = self.wait_port()
        return self

    _LISTEN_RE = re.compile(r"listening on (?:\[[^\]]*\]|[^ :]+):(\d+)")

    def wait_port(self, timeout=20):
        def port():
            m = self._LISTEN_RE.search(self.log_text())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError("daemon exited %d before listening:\n%s" % (
                    self.proc.returncode, self.log_text()))
            return None
        try:
            return wait_until(port, timeout, "the daemon's 'listening on' log line", 0.02)
        except RuntimeError as e:
            raise AssertionError(str(e)) from None

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def all_logs(self):
        out = []
        for i in range(1, self.starts + 1):
            try:
                with open(os.path.join(self.dir, "stderr-%d.log" % i), errors="replace") as f:
                    out.append(f.read())
            except OSError:
                pass
        return "".join(out)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- HTTP
    def get(self, path="/metrics", headers=None, method="GET", timeout=10):
        return request(self.port, method, path, headers, timeout=timeout)

    def metrics(self, headers=None):
        r = self.get("/metrics", headers)
        if r.status != 200:
            raise AssertionError("GET /metrics: %r" % r)
        return parse_prom(r.text)

    def metrics_text(self, headers=None):
        r = self.get("/metrics", headers)
        if r.status != 200:
            raise AssertionError("GET /metrics: %r" % r)
        return r.text

    def self_value(self, name, default=None, **labels):
        return value(self.metrics(), name, default, **labels)

    def wait_metric(self, name, pred, timeout=20, what=None, **labels):
        """Waits until pred(value of name{labels}) (value None when absent)."""
        def ok():
            v = value(self.metrics(), name, None, **labels)
            return pred(v)
        return wait_until(ok, timeout, what or "%s%r" % (name, labels))

    def wait_up(self, upstream="default", up=1, timeout=20):
        return self.wait_metric("cerebras_proxy_upstream_up", lambda v: v == up, timeout,
                                "cerebras_proxy_upstream_up{upstream=%s} == %d" % (upstream, up),
                                upstream=upstream)

    def requests_total(self, upstream="default", code=None):
        s = self.metrics()
        if code is None:
            return total(s, "cerebras_proxy_upstream_requests_total", upstream=upstream)
        return total(s, "cerebras_proxy_upstream_requests_total", upstream=upstream, code=str(code))

    # -- signals and stop
    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill9(self):
        if self.alive():
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self, timeout=10):
        """SIGTERM, wait; returns the exit code (kills after timeout*SLOW)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def restart(self, kill=False):
        if kill:
            self.kill9()
        else:
            self.stop()
        return self.start()


def run_daemon_cli(args, env=None, timeout=20):
    """Runs the daemon binary to completion (for --version, --check-config...)."""
    e = dict(os.environ)
    e.setdefault("CMP_E2E_API_KEY", API_KEY)
    if env:
        e.update(env)
    r = subprocess.run([DAEMON] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, env=e, timeout=timeout * SLOW)
    remember("cli %s stdout" % " ".join(args), r.stdout)
    remember("cli %s stderr" % " ".join(args), r.stderr)
    return r


def promtool():
    for p in ("/usr/bin/promtool", shutil.which("promtool")):
        if p and os.access(p, os.X_OK):
            return p
    return None
