#!/usr/bin/env python3
"""End-to-end test of issue 16, item 1: the API key is rotated by replacing
`api_key_file`, and the daemon uses the new key from the next poll on,
without a signal or a reload. The mock reads its accepted key from the same
file (re-read on change), so the moment the file is replaced only the new key
is accepted: any request still sent with the old key would be a 401.
A file that becomes unusable keeps the key in use and is logged once.

Run by CMake as
    key_rotation_e2e_test.py --daemon ... --mock ... --repo . [unittest args]
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

INTERVAL = 2.0
KEY_A = "sk-rotation-A-1b2c3d4e5f60718293a4"
KEY_B = "sk-rotation-B-99aa88bb77cc66dd55ee"
KEY_C = "sk-rotation-C-0f1e2d3c4b5a69788796"
RELOADS = "cerebras_proxy_api_key_reloads_total"


class KeyFileMock(h.Mock):
    """The mock with --api-key-file instead of --api-key."""

    def __init__(self, ws, key_file, **kw):
        self.key_file = key_file
        super().__init__(ws, **kw)

    def _start(self):
        if "--api-key" in self.args:
            i = self.args.index("--api-key")
            self.args[i:i + 2] = ["--api-key-file", self.key_file]
        super()._start()


def write_key(path, key):
    """Replaces the file as secret managers do: a new file renamed over it."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(key + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class KeyRotationE2E(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = h.Workspace("cmp-keyrot-e2e-")
        keys = cls.ws.subdir("keys")
        cls.key_file = os.path.join(keys, "api-key")
        write_key(cls.key_file, KEY_A)
        cls.mock = KeyFileMock(cls.ws, cls.key_file, window="%ds" % INTERVAL, rate_limit=8,
                               rate_window="12s")
        up = h.upstream_cfg(cls.mock, interval="%ds" % INTERVAL, offset="300ms", timeout="1s",
                            requests=8, window="12s", api_key_env=None)
        up["api_key_file"] = cls.key_file
        cls.daemon = h.Daemon(cls.ws, {"log": {"level": "debug", "format": "logfmt"},
                                       "upstreams": [up]})
        cls.daemon.wait_up(timeout=30)

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        cls.mock.stop()

    def api_requests_after(self, t):
        return [r for r in self.mock.api_requests() if r["t"] > t]

    def wait_requests_after(self, t, n, what):
        return h.wait_until(lambda: len(self.api_requests_after(t)) >= n and
                            self.api_requests_after(t), 10 * INTERVAL, what)

    def between_polls(self):
        """Returns just after a poll has been answered: the next one is about
        INTERVAL away, so a file replaced now is not raced by a request that
        was already on its way with the old key."""
        t = time.time()
        self.wait_requests_after(t, 1, "a poll")
        time.sleep(0.2)

    def reloads(self):
        return self.daemon.self_value(RELOADS, upstream="default")

    def test_1_rotated_file_is_used_from_the_next_poll_without_a_signal(self):
        self.assertEqual(self.reloads(), 0)
        pid = self.daemon.proc.pid
        self.between_polls()
        rotated_at = time.time()
        write_key(self.key_file, KEY_B)  # from now on the mock accepts only KEY_B
        reqs = self.wait_requests_after(rotated_at, 3, "three polls after the rotation")
        self.assertEqual([r["status"] for r in reqs[:3]], [200, 200, 200],
                         "a poll after the rotation did not succeed: %r" % reqs)
        self.assertTrue(all(r["auth"] for r in reqs))
        self.assertEqual(self.reloads(), 1)
        self.assertEqual(self.daemon.self_value("cerebras_proxy_upstream_up", upstream="default"), 1)
        self.assertEqual(self.daemon.proc.pid, pid)
        log = self.daemon.log_text()
        self.assertIn("API key reloaded from " + self.key_file, log)
        self.assertNotIn("reloading configuration", log)  # no SIGHUP, no /-/reload

    def test_2_unusable_file_keeps_the_key_in_use_and_is_logged_once(self):
        self.between_polls()
        removed_at = time.time()
        os.remove(self.key_file)  # the mock keeps accepting KEY_B too
        reqs = self.wait_requests_after(removed_at, 3, "three polls with the key file gone")
        self.assertEqual([r["status"] for r in reqs[:3]], [200, 200, 200], reqs)
        # Another unusable state (an empty file) is the same state: no new line.
        emptied_at = time.time()
        with open(self.key_file, "w") as f:
            f.write("")
        os.chmod(self.key_file, 0o600)
        reqs = self.wait_requests_after(emptied_at, 2, "two polls with an empty key file")
        self.assertEqual([r["status"] for r in reqs[:2]], [200, 200], reqs)
        log = self.daemon.log_text()
        self.assertEqual(log.count("API key file unusable, keeping the key in use"), 1, log)
        self.assertEqual(self.reloads(), 1)

        write_key(self.key_file, KEY_B)
        h.wait_until(lambda: "readable again (same key)" in self.daemon.log_text(),
                     10 * INTERVAL, "the 'readable again' log line")
        self.assertEqual(self.reloads(), 1)

        self.between_polls()
        rotated_at = time.time()
        write_key(self.key_file, KEY_C)
        reqs = self.wait_requests_after(rotated_at, 2, "two polls after the second rotation")
        self.assertEqual([r["status"] for r in reqs[:2]], [200, 200], reqs)
        self.assertEqual(self.reloads(), 2)

    def test_3_no_key_in_any_output(self):
        self.daemon.metrics_text()
        self.daemon.get("/")
        for key in (KEY_A, KEY_B, KEY_C):
            self.assertEqual(h.secret_hits(key), [], "the key leaked")
        self.assertGreater(h.secret_coverage()[1], 0)


class RotationDuringA401E2E(unittest.TestCase):
    """The file is replaced while a request with the old key is on its way:
    the 401 re-reads the file, and the poll is retried once in the same
    window with the new key instead of waiting for the next scheduled poll."""

    INTERVAL = 5.0   # start span [0.3 s, 3.5 s]: room for a retry after a slow 401

    @classmethod
    def setUpClass(cls):
        cls.ws = h.Workspace("cmp-keyrot401-e2e-")
        keys = cls.ws.subdir("keys")
        cls.key_file = os.path.join(keys, "api-key")
        write_key(cls.key_file, KEY_A)
        cls.mock = KeyFileMock(cls.ws, cls.key_file, window="%ds" % cls.INTERVAL, rate_limit=10,
                               rate_window="30s")
        up = h.upstream_cfg(cls.mock, interval="%ds" % cls.INTERVAL, offset="300ms",
                            timeout="1500ms", requests=10, window="30s", api_key_env=None)
        up["api_key_file"] = cls.key_file
        cls.daemon = h.Daemon(cls.ws, {"log": {"level": "debug", "format": "logfmt"},
                                       "upstreams": [up]})
        cls.daemon.wait_up(timeout=30)

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        cls.mock.stop()

    def test_401_rereads_the_file_and_retries_once_in_the_same_window(self):
        # The next request gets a 401 one second after it arrived (it was
        # sent with the valid old key); the key is rotated in that second.
        self.mock.fault("401", delay="1s")
        hit = h.wait_until(lambda: [r for r in self.mock.api_requests() if r["fault"] == "401"],
                           3 * self.INTERVAL, "the request that gets the 401", interval=0.02)[0]
        write_key(self.key_file, KEY_B)
        after = h.wait_until(lambda: [r for r in self.mock.api_requests() if r["t"] > hit["t"]],
                             3 * self.INTERVAL, "the request after the 401")
        self.assertEqual(after[0]["status"], 200, after)
        self.assertTrue(after[0]["auth"])
        self.assertEqual(int(after[0]["t"] // self.INTERVAL), int(hit["t"] // self.INTERVAL),
                         "the retry waited for the next scheduled poll")
        self.assertEqual(self.daemon.self_value(RELOADS, upstream="default"), 1)
        self.assertEqual(self.daemon.requests_total(code=401), 1)
        self.assertIn("re-read after HTTP 401", self.daemon.log_text())
        for key in (KEY_A, KEY_B):
            self.assertEqual(h.secret_hits(key), [], "the key leaked")


if __name__ == "__main__":
    h.main()
