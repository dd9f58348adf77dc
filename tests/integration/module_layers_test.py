#!/usr/bin/env python3
"""Keeps the modules on their floors (docs/architecture.md):

    app                                   top: wiring, signals, main
    upstream      server                  peers: neither includes the other
    snapshot                              shared state between the peers
    config  exposition  telemetry         bottom

A module's sources (src/<m>/) and headers (include/cmp/<m>/) may include
`cmp/<other>/...` only for the modules listed in ALLOWED, and CMake's
CMP_DEPS_<m> may link only those modules' libraries. The mock upstream
(tools/) is a tool, not a module: it may use the bottom floor and snapshot.

The check reads `#include "cmp/..."` lines as text, so a conditional include
counts as well: a floor is kept in every configuration.

Usage: module_layers_test.py REPO_ROOT      exit 0 pass, 1 fail
"""
import os
import re
import sys

BOTTOM = {"config", "exposition", "telemetry"}
ALLOWED = {
    "exposition": set(),
    "config": set(),
    "telemetry": {"exposition"},
    "snapshot": BOTTOM,
    "upstream": BOTTOM | {"snapshot"},
    "server": BOTTOM | {"snapshot"},
    "app": BOTTOM | {"snapshot", "upstream", "server"},
}
# The mock upstream shares gzip, duration parsing and Accept-Encoding
# negotiation with the daemon; it never includes the daemon's upstream code.
TOOLS_ALLOWED = BOTTOM | {"snapshot", "server"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"cmp/([a-z_]+)/', re.M)


def includes_under(path):
    found = {}
    for dirpath, _, files in os.walk(path):
        for name in files:
            if not name.endswith((".hpp", ".cpp", ".h", ".cc", ".in")):
                continue
            full = os.path.join(dirpath, name)
            with open(full, encoding="utf-8", errors="replace") as f:
                for module in INCLUDE.findall(f.read()):
                    found.setdefault(module, []).append(full)
    return found


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    root = sys.argv[1]
    problems = []
    seen_modules = set()
    for module, allowed in ALLOWED.items():
        for base in (os.path.join(root, "src", module), os.path.join(root, "include", "cmp", module)):
            if not os.path.isdir(base):
                continue
            seen_modules.add(module)
            for other, files in includes_under(base).items():
                if other == module:
                    continue
                if other not in ALLOWED:
                    problems.append(f"{files[0]}: includes unknown module cmp/{other}/")
                elif other not in allowed:
                    problems.append(f"{os.path.relpath(files[0], root)}: {module} includes cmp/{other}/ "
                                    f"(a {module} file may include only: {', '.join(sorted(allowed)) or 'nothing'})")
    for module in ALLOWED:
        if module not in seen_modules:
            problems.append(f"module {module} has no src/{module} or include/cmp/{module}: "
                            "update ALLOWED with the new layout")

    tools = os.path.join(root, "tools")
    if os.path.isdir(tools):
        for other, files in includes_under(tools).items():
            if other not in TOOLS_ALLOWED:
                problems.append(f"{os.path.relpath(files[0], root)}: a tool includes cmp/{other}/")

    with open(os.path.join(root, "CMakeLists.txt"), encoding="utf-8") as f:
        cmake = f.read()
    for module, allowed in ALLOWED.items():
        m = re.search(r"^set\(CMP_DEPS_%s\b(.*?)\)" % module, cmake, re.M | re.S)
        if not m:
            problems.append(f"CMakeLists.txt: no set(CMP_DEPS_{module} ...)")
            continue
        for dep in re.findall(r"\bcmp_([a-z]+)\b", m.group(1)):
            if dep in ("asio", "core", "warnings", "sanitize"):
                continue
            if dep not in allowed:
                problems.append(f"CMakeLists.txt: cmp_{module} links cmp_{dep}, which is not on a floor below it")

    if problems:
        print("FAIL: the module layers are broken:")
        for p in problems:
            print("  " + p)
        return 1
    print(f"ok: {len(seen_modules)} modules keep their floors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
