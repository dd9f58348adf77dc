#!/usr/bin/env python3
"""End-to-end test of issue 23, items 1 and 2: a first run as a new user
sees it. `--check-config` refuses the shipped placeholder organization id;
`--probe` sends one real request per upstream through the budget ledger and
says what it found (families, series, endpoints) or what the API said with a
hint for a wrong id (404), a wrong key (401) and a disabled Metrics API
(403). Probes never exceed the budget: refused when it is spent, and while a
daemon runs on the same state_dir; a probe counts the daemon's own sends.

Run by CMake as
    first_run_e2e_test.py --daemon ... --mock ... --repo . [unittest args]
"""

import glob
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

NO_PROXY_ENV = {"HTTPS_PROXY": "", "https_proxy": "", "HTTP_PROXY": "", "http_proxy": ""}
WRONG_KEY = "sk-e2e-WRONG-7c1d2e3f4a5b"


class FirstRunE2E(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = h.Workspace("cmp-firstrun-e2e-")
        # No budget in the mock: only the daemon's ledger may refuse here.
        cls.mock = h.Mock(cls.ws, window="60s", rate_limit=0)

    @classmethod
    def tearDownClass(cls):
        cls.mock.stop()

    def config(self, org=None, **extra):
        """A config file for the mock with its own state_dir; returns (path, state_dir)."""
        d = self.ws.subdir("cfg")
        up = h.upstream_cfg(self.mock, url=self.mock.url(org=org), interval="60s", offset="5s",
                            timeout="5s", **extra)
        state = os.path.join(d, "state")
        path = os.path.join(d, "config.yml")
        with open(path, "w") as f:
            f.write(h.to_yaml({"state_dir": state, "upstreams": [up]}))
        return path, state

    def run_cli(self, path, flag, key=h.API_KEY):
        env = dict(NO_PROXY_ENV, CMP_E2E_API_KEY=key)
        r = h.run_daemon_cli(["--config.file=" + path, flag], env=env)
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        for secret in (h.API_KEY, WRONG_KEY):
            self.assertNotIn(secret, out, "the key in the output of " + flag)
        return r.returncode, out

    def api_requests(self, org=h.ORG):
        return [r for r in self.mock.api_requests() if r["path"].endswith("/" + org)]

    def test_working_setup(self):
        path, state = self.config()
        rc, out = self.run_cli(path, "--check-config")
        self.assertEqual(rc, 0, out)
        self.assertIn("configuration OK", out)
        self.assertNotIn("warning", out.lower())
        before = len(self.api_requests())
        rc, out = self.run_cli(path, "--probe")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"answer: HTTP 200 in \d+ ms")
        # The mock's body: 11 families, 2 endpoints of 28 series each (status,
        # count, success, 2 failure codes, input, output, cache, 4 latency
        # families x 5 statistics).
        self.assertIn("found: 11 families, 56 series, 2 endpoints", out)
        self.assertIn("request 1 of 6 allowed in any 1m", out)
        self.assertIn("probe: 1 of 1 upstream OK", out)
        self.assertEqual(len(self.api_requests()), before + 1, "exactly one request per upstream")
        ledgers = glob.glob(os.path.join(state, "*.ledger"))
        self.assertEqual(len(ledgers), 1, ledgers)
        self.assertEqual(len(open(ledgers[0]).read().split()), 3, "magic line + one send time")

    def test_placeholder_id_is_refused_before_any_request(self):
        path, _ = self.config(org="org_REPLACE_ME")
        before = len(self.mock.api_requests())
        for flag in ("--check-config", "--probe"):
            rc, out = self.run_cli(path, flag)
            self.assertEqual(rc, 1, out)
            self.assertIn(path + ': upstreams[0].url: organization id "org_REPLACE_ME" is a placeholder; '
                          "put your organization's id", out)
        self.assertEqual(len(self.mock.api_requests()), before, "no request for a placeholder")

    def test_wrong_organization_id(self):
        path, _ = self.config(org="org_wrong1")
        rc, out = self.run_cli(path, "--check-config")
        self.assertEqual(rc, 0, out)
        rc, out = self.run_cli(path, "--probe")
        self.assertEqual(rc, 1, out)
        self.assertIn("answer: HTTP 404", out)
        self.assertRegex(out, r"API error: .*Organization 'org_wrong1' not found")
        self.assertIn("hint: the organization id is wrong: " + path + ": upstreams[name=default].url", out)
        self.assertIn("result: FAILED", out)

    def test_wrong_key(self):
        path, _ = self.config()
        rc, out = self.run_cli(path, "--probe", key=WRONG_KEY)
        self.assertEqual(rc, 1, out)
        self.assertIn("answer: HTTP 401", out)
        self.assertRegex(out, r"API error: .*Wrong API Key")
        self.assertIn("hint: the API key was refused: check the key in the environment variable "
                      "CMP_E2E_API_KEY (" + path + ": upstreams[name=default].api_key_env)", out)

    def test_metrics_api_not_enabled(self):
        path, _ = self.config()
        self.mock.fault("403")
        rc, out = self.run_cli(path, "--probe")
        self.assertEqual(rc, 1, out)
        self.assertIn("answer: HTTP 403", out)
        self.assertRegex(out, r"API error: \S")
        self.assertIn("hint: the Metrics API is not enabled for this organization", out)

    def test_spent_budget_is_refused_with_the_next_allowed_time(self):
        path, _ = self.config(requests=2, window="60s")
        before = len(self.api_requests())
        for n in (1, 2):
            rc, out = self.run_cli(path, "--probe")
            self.assertEqual(rc, 0, out)
            self.assertIn("request %d of 2 allowed in any 1m" % n, out)
        rc, out = self.run_cli(path, "--probe")
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"refused: the budget is spent \(2 requests in any 1m, the daemon's polls and "
                              r"probes alike\); the next request is allowed at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
                              r"UTC, in \d+s\. No request sent\.")
        self.assertEqual(len(self.api_requests()), before + 2, "the refused probe sent nothing")

    def test_a_running_daemon_keeps_the_budget_to_itself(self):
        path, state = self.config(requests=6, window="60s")
        up = h.upstream_cfg(self.mock, interval="60s", offset="5s", timeout="5s", requests=6, window="60s")
        d = h.Daemon(self.ws, {"upstreams": [up]}, state_dir=state, env=NO_PROXY_ENV)
        try:
            d.wait_up()
            before = len(self.api_requests())
            rc, out = self.run_cli(path, "--probe")
            self.assertEqual(rc, 1, out)
            self.assertIn("probe refused: a running daemon (or another probe) uses state_dir " + state, out)
            self.assertIn("No request sent.", out)
            self.assertEqual(len(self.api_requests()), before, "a refused probe sends nothing")
        finally:
            self.assertEqual(d.stop(), 0)
        # The daemon's sends are in the ledger, and the probe counts them.
        ledger = glob.glob(os.path.join(state, "*.ledger"))[0]
        sent = len(open(ledger).read().split()) - 2
        self.assertGreaterEqual(sent, 1)
        rc, out = self.run_cli(path, "--probe")
        self.assertEqual(rc, 0, out)
        self.assertIn("request %d of 6 allowed in any 1m" % (sent + 1), out)


if __name__ == "__main__":
    h.main()
