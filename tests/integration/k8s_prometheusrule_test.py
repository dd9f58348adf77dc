#!/usr/bin/env python3
"""The PrometheusRule in deploy/kubernetes/standalone/ is what
config/prometheus/rules/cerebras.rules.yml says, and what promtool accepts:

  * `generate-prometheusrule.py --check`: the file is the generator's output
    for the rules file as it is now (fails when someone edits one of them);
  * its spec.groups equal the rules file's groups, parsed;
  * promtool check rules on those groups, and promtool test rules with the
    project's own cases (cerebras.rules.test.yml) run against them.

Usage: k8s_prometheusrule_test.py REPO_ROOT     exit 0 pass, 1 fail, 77 skip
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("SKIP: python3-yaml is missing (scripts/packages/test.txt lists it)")
    sys.exit(77)


def main():
    repo = os.path.abspath(sys.argv[1])
    promtool = shutil.which("promtool")
    if promtool is None:
        print("SKIP: promtool not found (apt-get install prometheus)")
        return 77
    rules_dir = os.path.join(repo, "config", "prometheus", "rules")
    failed = []

    r = subprocess.run([sys.executable, os.path.join(repo, "deploy/kubernetes/generate-prometheusrule.py"),
                        "--check"], capture_output=True, text=True)
    print(r.stdout + r.stderr, end="")
    if r.returncode != 0:
        failed.append("generated file up to date")

    with open(os.path.join(repo, "deploy/kubernetes/standalone/prometheusrule.yaml")) as f:
        rule = yaml.safe_load(f)
    with open(os.path.join(rules_dir, "cerebras.rules.yml")) as f:
        source = yaml.safe_load(f)
    if rule["spec"]["groups"] != source["groups"]:
        failed.append("spec.groups equal the rules file's groups")

    with tempfile.TemporaryDirectory(prefix="cmp-k8s-rules-") as d:
        # Only spec.groups is a Prometheus rule file; the test cases name it
        # through rule_files, so they get a copy pointing at it.
        with open(os.path.join(d, "prometheusrule-groups.yml"), "w") as f:
            yaml.safe_dump({"groups": rule["spec"]["groups"]}, f, sort_keys=False)
        with open(os.path.join(rules_dir, "cerebras.rules.test.yml")) as f:
            cases = f.read()
        cases, n = re.subn(r"(?m)^rule_files:\n(  - .*\n)+", "rule_files:\n  - prometheusrule-groups.yml\n",
                           cases)
        if n != 1:
            failed.append("the test cases name their rule file in one rule_files block")
        with open(os.path.join(d, "cases.yml"), "w") as f:
            f.write(cases)
        for argv in (["check", "rules", "prometheusrule-groups.yml"], ["test", "rules", "cases.yml"]):
            r = subprocess.run([promtool] + argv, cwd=d, capture_output=True, text=True)
            print(f"promtool {' '.join(argv)}: exit {r.returncode}")
            if r.returncode != 0:
                print(r.stdout + r.stderr)
                failed.append("promtool " + " ".join(argv[:2]))
    if failed:
        print("FAIL: " + ", ".join(failed))
        return 1
    print("PASS: the PrometheusRule is the rules file, checked and unit-tested by promtool")
    return 0


if __name__ == "__main__":
    sys.exit(main())
