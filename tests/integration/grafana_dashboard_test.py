#!/usr/bin/env python3
"""Checks config/grafana/cerebras-dashboard.json (python3 stdlib only).

  * valid JSON, a Grafana dashboard with schemaVersion >= 37 and a uid;
  * the data source is templated: a `datasource` variable of type datasource
    (or a ${DS_*} import input), and every panel and every target uses it;
  * panel ids are unique, panels lie on the 24-column grid without overlap;
  * every PromQL expression (panels and variables) names only metrics that
    exist: the Cerebras families, the proxy's own metrics, `up`, or a
    recording rule defined in config/prometheus/rules/cerebras.rules.yml;
  * every $variable used is defined;
  * only this proxy's series are read in a shared Prometheus: every selector
    of a Cerebras family or recording rule carries organization_id!="", and
    the process_* panels are joined with cerebras_proxy_build_info;
  * when promtool is installed, every expression parses as PromQL (each is
    put into a throw-away rule file with Grafana's variables substituted).

Usage: grafana_dashboard_test.py REPO_ROOT     exit 0 pass, 1 fail
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

UPSTREAM = {
    "inference_endpoint_status", "requests_count_total", "requests_success_total",
    "requests_failure_total", "input_tokens_total", "output_tokens_total", "cache_rate",
    "ttft_seconds", "tpot_seconds", "e2e_latency_seconds", "queue_time_seconds",
}
SELF = {
    "cerebras_proxy_upstream_requests_total", "cerebras_proxy_upstream_up",
    "cerebras_proxy_upstream_last_success_timestamp_seconds",
    "cerebras_proxy_snapshot_age_seconds",
    "cerebras_proxy_upstream_request_duration_seconds_bucket",
    "cerebras_proxy_upstream_request_duration_seconds_sum",
    "cerebras_proxy_upstream_request_duration_seconds_count",
    "cerebras_proxy_upstream_parse_errors_total", "cerebras_proxy_rate_limit_remaining",
    "cerebras_proxy_scrapes_total", "cerebras_proxy_build_info",
    "cerebras_proxy_config_last_reload_successful",
    # the standard process collector
    "process_cpu_seconds_total", "process_open_fds", "process_max_fds",
    "process_virtual_memory_bytes", "process_resident_memory_bytes",
    "process_start_time_seconds",
    # written by Prometheus for every target
    "up",
}
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
    "unless", "offset", "bool", "inf", "nan", "atan2",
}
BUILTIN_VARS = {
    "__interval", "__interval_ms", "__rate_interval", "__range", "__range_s",
    "__range_ms", "__all", "__from", "__to", "__dashboard", "__org", "__user",
    "__name", "__timeFilter",
}
# Values a rendered query gets; only for the promtool syntax check.
SUBST = {
    "__interval": "1m", "__rate_interval": "4m", "__range": "6h", "__range_s": "21600",
    "__range_ms": "21600000", "__interval_ms": "60000",
}

problems = []


def fail(msg):
    problems.append(msg)


def recording_rules(path):
    text = open(path, encoding="utf-8").read()
    return set(re.findall(r"^\s*-\s*record:\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*$", text, re.M))


def metric_names(expr):
    """Metric names an expression selects: identifiers that are not
    functions, keywords, label names, strings, durations or variables."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    e = re.sub(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*", "1", e)
    e = re.sub(r"\{[^}]*\}", " ", e)                 # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)                # ranges and subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![A-Za-z0-9_:.])([A-Za-z_:][A-Za-z0-9_:]*)", e):
        word = m.group(1)
        rest = e[m.end():].lstrip()
        if rest.startswith("("):                     # function or aggregation
            continue
        if word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def selectors(expr, names):
    """(name, matchers) for each selector of one of `names` in expr; matchers
    is the text between the braces ("" when there are none)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: m.group(0).replace("{", "(").replace("}", ")"), expr)
    for m in re.finditer(r"(?<![A-Za-z0-9_:])([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^}]*\})?", e):
        if m.group(1) in names:
            yield m.group(1), expr[m.start(2) + 1:m.end(2) - 1] if m.group(2) else ""


VAR_RE = r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)"


def variables_used(text):
    return {a or b for a, b in re.findall(VAR_RE, text)}


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    root = sys.argv[1]
    dash_path = os.path.join(root, "config/grafana/cerebras-dashboard.json")
    rules_path = os.path.join(root, "config/prometheus/rules/cerebras.rules.yml")
    try:
        with open(dash_path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        print(f"FAIL: {dash_path}: {e}")
        return 1
    records = recording_rules(rules_path)
    if not records:
        fail(f"no recording rules found in {rules_path}")
    known = UPSTREAM | SELF | records

    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 37:
        fail(f"schemaVersion {dash.get('schemaVersion')!r} < 37")
    for key in ("uid", "title", "panels", "templating"):
        if not dash.get(key):
            fail(f"dashboard has no {key}")
    if dash.get("id") not in (None, 0):
        fail("dashboard id must be null so that import creates a new dashboard")

    variables = dash.get("templating", {}).get("list", [])
    var_names = {v.get("name") for v in variables}
    ds_vars = {v["name"] for v in variables if v.get("type") == "datasource" and v.get("query") == "prometheus"}
    ds_inputs = {i["name"] for i in dash.get("__inputs", []) if i.get("type") == "datasource"}
    ds_refs = {f"${{{n}}}" for n in ds_vars | ds_inputs} | {f"${n}" for n in ds_vars | ds_inputs}
    if not ds_refs:
        fail("no Prometheus datasource variable (type datasource, query prometheus) or ${DS_*} input")

    def ds_ok(ds):
        if isinstance(ds, dict):
            return ds.get("uid") in ds_refs
        return ds in ds_refs

    exprs = []   # (where, expr)
    for v in variables:
        if v.get("type") == "query":
            if not ds_ok(v.get("datasource")):
                fail(f"variable {v.get('name')}: datasource {v.get('datasource')!r} is not templated")
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            m = re.fullmatch(r"\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*", q or "", re.S)
            if m:
                exprs.append((f"variable {v['name']}", m.group(1)))
            elif q:
                fail(f"variable {v['name']}: unsupported query {q!r} (use label_values(expr, label))")

    ids = {}
    boxes = []
    panels = list(walk_panels(dash.get("panels", [])))
    if len(panels) < 10:
        fail(f"only {len(panels)} panels")
    titles = [p.get("title", "") for p in panels if p.get("type") == "row"]
    for want in ("health", "request", "token", "latency", "cache", "proxy"):
        if not any(want in t.lower() for t in titles):
            fail(f"no row whose title mentions {want!r} (rows: {titles})")
    for p in panels:
        pid = p.get("id")
        where = f"panel {pid} {p.get('title')!r}"
        if not isinstance(pid, int):
            fail(f"{where}: id is not an integer")
        elif pid in ids:
            fail(f"{where}: id also used by panel {ids[pid]!r}")
        else:
            ids[pid] = p.get("title")
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")):
            fail(f"{where}: gridPos incomplete")
        else:
            if g["x"] < 0 or g["w"] <= 0 or g["x"] + g["w"] > 24:
                fail(f"{where}: gridPos outside the 24 columns")
            for other, og in boxes:
                if (g["x"] < og["x"] + og["w"] and og["x"] < g["x"] + g["w"]
                        and g["y"] < og["y"] + og["h"] and og["y"] < g["y"] + g["h"]):
                    fail(f"{where}: overlaps {other}")
            boxes.append((where, g))
        if p.get("type") == "row":
            if p.get("targets"):
                fail(f"{where}: a row has queries")
            continue
        if not ds_ok(p.get("datasource")):
            fail(f"{where}: datasource {p.get('datasource')!r} is not the template variable")
        targets = p.get("targets") or []
        if not targets:
            fail(f"{where}: no queries")
        for t in targets:
            if "datasource" in t and not ds_ok(t["datasource"]):
                fail(f"{where} target {t.get('refId')}: datasource {t['datasource']!r} is not templated")
            expr = t.get("expr", "")
            if not expr.strip():
                fail(f"{where} target {t.get('refId')}: empty expr")
                continue
            exprs.append((f"{where} target {t.get('refId')}", expr))

    for where, expr in exprs:
        names = metric_names(expr)
        if not names:
            fail(f"{where}: selects no metric: {expr}")
        for n in sorted(names - known):
            fail(f"{where}: unknown metric {n!r} (not a Cerebras family, a proxy metric or a recording rule)")
        if re.search(r"\b(rate|irate|increase|delta|idelta|deriv)\s*\(\s*[a-z_:]*(requests_(count|success|failure)_total|(input|output)_tokens_total)\b", expr):
            fail(f"{where}: rate()/increase() on a per-minute gauge: {expr}")
        for name, matchers in selectors(expr, UPSTREAM | records):
            if not re.search(r'organization_id\s*!=\s*""', matchers):
                fail(f"{where}: {name} without organization_id!=\"\" would also read another "
                     f"application's {name} in a shared Prometheus: {expr}")
        if any(n.startswith("process_") for n in names) and not re.search(
                r"\band\s+on\s*\(\s*job\s*,\s*instance\s*\)\s*cerebras_proxy_build_info\b", expr):
            fail(f"{where}: process_* of every job: join it with "
                 f"`and on (job, instance) cerebras_proxy_build_info`: {expr}")
        for var in variables_used(expr):
            if var not in var_names and var not in BUILTIN_VARS:
                fail(f"{where}: undefined variable ${var}")

    promtool = shutil.which("promtool")
    if promtool and exprs:
        def render(expr):
            def sub(m):
                name = m.group(1) or m.group(2)
                return SUBST.get(name, ".*")
            return re.sub(VAR_RE, sub, expr)
        with tempfile.TemporaryDirectory() as tmp:
            rf = os.path.join(tmp, "dashboard.rules.yml")
            with open(rf, "w", encoding="utf-8") as f:
                f.write("groups:\n  - name: dashboard\n    rules:\n")
                for i, (where, expr) in enumerate(exprs):
                    f.write(f"      - record: dashboard:expr_{i}\n        expr: {json.dumps(render(expr))}\n")
            r = subprocess.run([promtool, "check", "rules", rf], capture_output=True, text=True)
            if r.returncode != 0:
                out = r.stdout + r.stderr
                for m in re.finditer(r"rule (\d+)", out):
                    i = int(m.group(1)) - 1
                    if 0 <= i < len(exprs):
                        fail(f"{exprs[i][0]}: not valid PromQL: {exprs[i][1]}")
                fail(f"promtool check rules on the dashboard's expressions:\n{out}")
    else:
        print("note: promtool not found, PromQL syntax not checked")

    if problems:
        for p in problems:
            print(f"FAIL: {p}")
        return 1
    print(f"PASS: {len(panels)} panels, {len(exprs)} expressions, datasource templated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
