#!/usr/bin/env python3
"""Documentation that cannot drift (issue 23, item 8). Compares what the
daemon says about itself with what the man page and the README say:

  * the flags: `--help`, the man page's OPTIONS (made from --help by help2man
    at build time) and the README's "Command line" block name the same set;
    every flag in --help but --help/--version states its default;
  * the environment variables the daemon reads by name (getenv("X") and the
    proxy lookups in src/, the default api_key_env) are in --help and in the
    man page's ENVIRONMENT;
  * the exit codes of include/cmp/app/daemon.hpp are in --help's "Exit status"
    and the man page's EXIT STATUS, and in the README;
  * the man page has FILES, ENVIRONMENT, EXAMPLES and EXIT STATUS and says
    where the documentation is.
The config keys (README table, example configuration) are checked by the
unit test Examples.EveryAcceptedKeyIsInTheExampleAndTheReadme.

Usage: docs_drift_test.py REPO_ROOT BUILD_DIR DAEMON    exit 0 pass, 1 fail, 77 skip
"""
import glob
import os
import re
import subprocess
import sys


def section(text, start, end_pattern):
    """The text after the line matching `start` up to the next `end_pattern` line."""
    m = re.search(start + r".*?\n(.*?)(?=" + end_pattern + r"|\Z)", text, re.S | re.M)
    return m.group(1) if m else ""


def roff_text(s):
    """Roff source as plain text, enough to find names: escapes and fonts gone."""
    s = s.replace("\\-", "-").replace("\\(em", "-")
    s = re.sub(r"\\f(?:\(..|\[[^]]*\]|.)", "", s)
    return re.sub(r"\\[,/&]", "", s)


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    repo, build, daemon = sys.argv[1:]
    man_path = os.path.join(build, "packaging", "cerebras-metrics-proxy.1")
    if not os.path.exists(man_path):
        print("SKIP: no man page in the build tree (help2man not installed; scripts/packages/build.txt lists it)")
        return 77
    failures = []

    def check(ok, what, detail=""):
        print(("ok   " if ok else "FAIL ") + what + ("" if ok or not detail else ": " + str(detail)))
        if not ok:
            failures.append(what)

    help_text = subprocess.run([daemon, "--help"], capture_output=True, text=True, check=True).stdout
    man = open(man_path).read()
    man_plain = roff_text(man)
    readme = open(os.path.join(repo, "README.md")).read()

    # Flags.
    options = section(help_text, r"^Options:", r"^\S")
    help_flags = set(re.findall(r"^  (?:-\w, )?--([a-z][a-z.-]*)", options, re.M))
    check(len(help_flags) >= 10, "--help lists the flags", sorted(help_flags))
    man_options = section(man_plain, r'^\.SH "?OPTIONS"?', r"^\.SH ")
    man_flags = set(re.findall(r"^(?:-\w, )?--([a-z][a-z.-]*)", man_options, re.M))
    readme_block = section(readme, r"^## Command line", r"^```\n\n")
    readme_flags = set(re.findall(r"--([a-z][a-z.-]*[a-z])", readme_block))
    check(help_flags == man_flags, "the man page has the flags of --help",
          f"only in --help: {sorted(help_flags - man_flags)}, only in the man page: {sorted(man_flags - help_flags)}")
    check(help_flags == readme_flags, "the README's Command line block has the flags of --help",
          f"only in --help: {sorted(help_flags - readme_flags)}, only in the README: {sorted(readme_flags - help_flags)}")
    entries = re.split(r"\n(?=  -)", options)
    no_default = [e.split("\n")[0].strip() for e in entries
                  if "Default:" not in e and not re.search(r"--(help|version)\b", e)]
    check(not no_default, "every flag in --help states its default", no_default)

    # Environment variables the daemon reads by name.
    sources = "".join(open(p).read() for p in glob.glob(os.path.join(repo, "src", "**", "*.cpp"), recursive=True))
    headers = open(os.path.join(repo, "include", "cmp", "config", "config.hpp")).read()
    names = set(re.findall(r'getenv\("([A-Za-z_][A-Za-z0-9_]*)"\)', sources))
    for upper, lower in re.findall(r'get\("([A-Z_]+)", "([a-z_]+)"\)', sources):
        names.update((upper, lower))
    names.update(re.findall(r'api_key_env = "([A-Z_]+)"', headers))
    check({"CREDENTIALS_DIRECTORY", "HTTPS_PROXY", "NO_PROXY", "CEREBRAS_API_KEY"} <= names,
          "the variables the daemon reads are found in its source", sorted(names))
    help_env = section(help_text, r"^Environment:", r"^\S")
    man_env = section(man_plain, r"^\.SH ENVIRONMENT", r"^\.SH ")
    for n in sorted(names):
        check(re.search(rf"\b{n}\b", help_env), f"--help's Environment names {n}")
        check(re.search(rf"\b{n}\b", man_env), f"the man page's ENVIRONMENT names {n}")

    # Exit codes.
    codes = re.findall(r"exit_\w+ = (\d+);", open(os.path.join(repo, "include/cmp/app/daemon.hpp")).read())
    help_exit = section(help_text, r"^Exit status:", r"^\S")
    man_exit = section(man_plain, r'^\.SH "EXIT STATUS"', r"^\.SH ")
    readme_exit = re.search(r"^Exit codes:(.*?)\n\n", readme, re.S | re.M)
    for code in codes:
        check(re.search(rf"^  {code}  \S", help_exit, re.M), f"--help's Exit status explains {code}")
        check(re.search(rf"^{code}\s*$|^\.TP\n{code}\b|^{code}\b", man_exit, re.M), f"the man page's EXIT STATUS explains {code}")
        check(readme_exit and f"`{code}`" in readme_exit.group(1), f"the README's Exit codes explain {code}")

    # The man page's own sections and where the docs are.
    for name in ("NAME", "SYNOPSIS", "OPTIONS", "ENVIRONMENT", '"EXIT STATUS"', "FILES", "EXAMPLES", "DOCUMENTATION",
                 '"SEE ALSO"'):
        check(re.search(rf"^\.SH {name}$", man, re.M), f"the man page has {name}")
    check("README.md" in help_text and "docs/production.md" in help_text, "--help says where the documentation is")
    check("/etc/cerebras-metrics-proxy/cerebras-metrics-proxy.yml" in man_plain, "FILES names the configuration")

    print("PASS" if not failures else f"FAIL: {len(failures)} check(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
