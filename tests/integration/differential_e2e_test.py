#!/usr/bin/env python3
"""Differential suite: the daemon takes exactly what Prometheus takes.

One batch (differential.run_batch: one Debian Prometheus, one daemon with an
upstream per case, every case scraped directly and through
/metrics?upstream=NAME) of:
  - every case of tests/data/differential (hand-written ones, and the
    minimized mismatches the generator found, each a regression case);
  - a ~2 MB body of the Cerebras shape, gzipped and chunked;
  - GENERATED bodies of differential_gen with the fixed seed SEED (the same
    bodies every run; scripts/differential.sh runs other seeds and more).
Asserted for every case: Prometheus ingests it directly and the daemon takes
it, with the same series, values and explicit timestamps; or both refuse it
(a parse error counted) and no series of it is served. The verdicts of the
stored cases are printed as a table (case, Prometheus direct, daemon).
"""

import os
import sys
import time
import unittest

import harness
import e2e_prometheus as ep
import differential as diff

TEXT_CT = diff.TEXT_CT
SEED = 26
GENERATED = int(os.environ.get("CMP_DIFFERENTIAL_BODIES", "500"))


def large_case():
    """~2 MB: the Cerebras shape, many endpoints, in one block per endpoint
    (each block repeats HELP/TYPE, as a per-endpoint aggregator would)."""
    lines = []
    for e in range(2600):
        for fam in ("requests_count_total", "output_tokens_total", "ttft_seconds"):
            lines.append("# HELP %s Per-endpoint %s.\n# TYPE %s gauge\n" % (fam, fam, fam))
            for stat in ("avg", "p50", "p90"):
                lines.append('%s{endpoint="model-%d-llama-3.3-70b",organization_id="org_abc123",'
                             'statistic="%s"} %d.%d\n' % (fam, e, stat, e, len(stat)))
    return dict(diff.normalized({"content_type": TEXT_CT, "gzip": True, "chunked": True}),
                template="".join(lines).encode())


class Differential(unittest.TestCase):
    def test_daemon_takes_exactly_what_prometheus_takes(self):
        ep.skip_without_prometheus()
        stored = diff.load_stored_cases()
        self.assertGreaterEqual(len(stored), 60)
        cases = dict(stored)
        cases["large_2mb_repeated_blocks"] = large_case()
        cases.update(diff.generated(SEED, 0, GENERATED))
        started = time.time()
        results = diff.run_cases(cases, log=lambda m: print(m, file=sys.stderr))
        print("\n%d cases (%d generated, seed %d) in %.0fs" % (
            len(cases), GENERATED, SEED, time.time() - started), file=sys.stderr)
        print("%-34s %-10s %-8s %s" % ("case", "prometheus", "daemon", "series"), file=sys.stderr)
        for name in sorted(stored):
            print(results[name].row(), file=sys.stderr)
        problems = ["%s: %s" % (n, v.problem) for n, v in sorted(results.items()) if v.problem]
        self.assertFalse(problems, "\n".join(problems))
        # Many cases taken and many refused: both kinds of verdict compared
        # (the generator refuses about 3 bodies in 5: dirty tokens, mutations).
        taken = sum(1 for v in results.values() if v.direct_ok)
        self.assertGreater(taken, len(cases) // 4)
        self.assertLess(taken, len(cases) - 50)


if __name__ == "__main__":
    harness.main()
