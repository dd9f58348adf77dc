#!/usr/bin/env python3
"""Keeps docker/ honest statically (python3 stdlib; PyYAML is used when
installed, else a small block-YAML reader). The image itself is built and run
by container_image_test.py; the Alloy, Agent, Prometheus and Grafana images
cannot be pulled in CI, so their configuration is checked here.

docker/Dockerfile
  * both stages are debian:bookworm-slim;
  * build dependencies come only from `scripts/deps.sh build`, runtime
    packages only from `scripts/deps.sh runtime` fed with
    scripts/packages/runtime.txt: no apt-get install of its own (no drift
    from the package lists, and no curl in the image);
  * the cmake configure and build commands are those of the contract
    (`cmake -S . -B build -DCMAKE_BUILD_TYPE=Release`, `cmake --build build -j2`)
    and, when scripts/demo.sh exists, carry the same -D options as it does;
    only -DCMP_BUILD_{TESTS,BENCH,FUZZ}=OFF and --target may be added;
  * the final stage (with the stages it is built FROM) copies the daemon from
    the build stage, runs as a non-root USER, EXPOSEs 9753 and has a
    HEALTHCHECK on /-/healthy or /healthz; it has no simulated upstream, which
    is the `mock-upstream` target's; the `release` target takes the
    cross-compiled daemon from the `release-bin` build context and carries
    the OCI labels version, revision, created and source from build arguments;
    the license label is Apache-2.0;
  * no `# syntax=` directive (BuildKit would pull a frontend image: offline
    builds break); the USER's group is created with the same number as the
    user (useradd --user-group alone picks GID 999);
  * every file it COPYs from the context exists.
docker/compose.yaml and the files it names
  * parse as YAML; the daemon builds from docker/Dockerfile; a mock upstream in
    the `demo` profile, built from its `mock-upstream` target (the daemon's
    image has no simulated upstream), that starts, healthy, before the daemon (both in a
    network namespace neither owns); Grafana Alloy by default and Grafana
    Agent in the `agent` profile; Prometheus; every bind-mounted host
    path exists; agent.yaml scrapes with honor_labels and honor_timestamps and
    has a remote_write; config.alloy has the same scrape (prometheus.scrape with
    honor_labels, honor_timestamps, the job name, forward_to an existing
    prometheus.remote_write with an endpoint); prometheus.yml loads the mounted rules and, when
    promtool is installed, passes `promtool check config`;
  * the daemon configs in docker/ are named in compose and exist.

Usage: docker_drift_test.py REPO_ROOT      exit 0 pass, 1 fail
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

CONTRACT_CONFIGURE = ["cmake", "-S", ".", "-B", "build", "-DCMAKE_BUILD_TYPE=Release"]
CONTRACT_BUILD = ["cmake", "--build", "build", "-j2"]
TOGGLES = re.compile(r"^-DCMP_BUILD_(TESTS|BENCH|FUZZ)(:BOOL)?=(OFF|0|FALSE|NO)$", re.I)
BASE_IMAGE = "debian:bookworm-slim"

problems = []


def fail(msg):
    problems.append(msg)


# --------------------------------------------------------------- YAML reading
def load_yaml(path):
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        raise ValueError(str(e)) from None
    if os.environ.get("CMP_TEST_NO_PYYAML") != "1":
        try:
            import yaml  # python3-yaml
        except ImportError:
            pass
        else:
            try:
                return yaml.safe_load(text)
            except yaml.YAMLError as e:
                raise ValueError(f"{path}: {e}") from None
    return MiniYaml(text, path).parse()


class MiniYaml:
    """Block mappings and sequences, flow sequences/mappings of scalars,
    quoted and plain scalars, comments. Enough for the files in docker/;
    anything else is reported as an error, never silently accepted."""

    def __init__(self, text, path):
        self.path = path
        self.lines = []
        for no, raw in enumerate(text.splitlines(), 1):
            if "\t" in raw[: len(raw) - len(raw.lstrip())]:
                raise ValueError(f"{path}:{no}: tab in indentation")
            line = self._strip_comment(raw).rstrip()
            if not line.strip():
                continue
            if self.lines and self._open_brackets(self.lines[-1][2]) > 0:
                # a flow collection continued on the next line
                pno, pind, ptext = self.lines[-1]
                self.lines[-1] = (pno, pind, ptext + " " + line.strip())
                continue
            self.lines.append((no, len(line) - len(line.lstrip()), line.strip()))
        self.i = 0

    @staticmethod
    def _open_brackets(s):
        depth, quote = 0, None
        for ch in s:
            if quote:
                if ch == quote:
                    quote = None
            elif ch in "\"'":
                quote = ch
            elif ch in "[{":
                depth += 1
            elif ch in "]}":
                depth -= 1
        return depth

    @staticmethod
    def _strip_comment(s):
        out, quote = [], None
        for k, ch in enumerate(s):
            if quote:
                if ch == quote:
                    quote = None
            elif ch in "\"'":
                quote = ch
            elif ch == "#" and (k == 0 or s[k - 1] in " \t"):
                break
            out.append(ch)
        if quote:
            pass  # an unterminated quote is caught by _scalar
        return "".join(out)

    def err(self, msg):
        no = self.lines[min(self.i, len(self.lines) - 1)][0] if self.lines else 0
        raise ValueError(f"{self.path}:{no}: {msg}")

    def parse(self):
        if not self.lines:
            return None
        v = self._block(self.lines[0][1])
        if self.i != len(self.lines):
            self.err("unexpected indentation")
        return v

    def _block(self, indent):
        _, ind, text = self.lines[self.i]
        if ind != indent:
            self.err("bad indentation")
        return self._seq(indent) if text == "-" or text.startswith("- ") else self._map(indent)

    def _map(self, indent):
        out = {}
        while self.i < len(self.lines):
            _, ind, text = self.lines[self.i]
            if ind < indent:
                break
            if ind > indent:
                self.err("bad indentation in mapping")
            if text.startswith("- "):
                self.err("sequence item inside a mapping")
            key, rest = self._key(text)
            if key in out:
                self.err(f"duplicate key {key!r}")
            self.i += 1
            out[key] = self._value(rest, indent)
        return out

    def _seq(self, indent):
        out = []
        while self.i < len(self.lines):
            no, ind, text = self.lines[self.i]
            if ind < indent or not (text == "-" or text.startswith("- ")):
                if ind > indent:
                    self.err("bad indentation in sequence")
                break
            rest = text[1:].strip()
            if not rest:
                self.i += 1
                out.append(self._nested(indent))
            elif self._looks_like_key(rest):
                # "- key: value" starts a mapping indented past the dash
                inner = ind + (len(text) - len(rest))
                self.lines[self.i] = (no, inner, rest)
                out.append(self._map(inner))
            else:
                self.i += 1
                out.append(self._scalar(rest))
        return out

    def _nested(self, indent):
        if self.i < len(self.lines) and self.lines[self.i][1] > indent:
            return self._block(self.lines[self.i][1])
        return None

    def _value(self, rest, indent):
        if rest in ("|", ">", "|-", ">-", "|+", ">+"):
            parts = []
            while self.i < len(self.lines) and self.lines[self.i][1] > indent:
                parts.append(self.lines[self.i][2])
                self.i += 1
            return ("\n" if rest[0] == "|" else " ").join(parts)
        if rest:
            return self._scalar(rest)
        if self.i < len(self.lines):
            _, ind, text = self.lines[self.i]
            if ind > indent or (ind == indent and (text == "-" or text.startswith("- "))):
                return self._block(ind)
        return None

    @staticmethod
    def _looks_like_key(text):
        return re.match(r'^("[^"]*"|\'[^\']*\'|[^\s"\'\[{][^:]*?):(\s|$)', text) is not None

    def _key(self, text):
        m = re.match(r'^("[^"]*"|\'[^\']*\'|[^\s"\'\[{][^:]*?):(\s+(.*))?$', text)
        if not m:
            self.err(f"expected 'key: value', got {text!r}")
        key = m.group(1)
        if key[0] in "\"'":
            key = key[1:-1]
        return key, (m.group(3) or "").strip()

    def _scalar(self, s):
        s = s.strip()
        if s.startswith("[") or s.startswith("{"):
            return self._flow(s)
        if s[0] in "\"'":
            if len(s) < 2 or s[-1] != s[0]:
                self.err(f"unterminated quoted scalar {s!r}")
            return s[1:-1]
        if s in ("true", "True", "yes"):
            return True
        if s in ("false", "False", "no"):
            return False
        if s in ("null", "~"):
            return None
        if re.fullmatch(r"-?\d+", s):
            return int(s)
        if re.fullmatch(r"-?\d+\.\d*", s):
            return float(s)
        if re.match(r"^[&*!|>%@`]", s):
            self.err(f"unsupported YAML construct {s!r}")
        return s

    def _flow(self, s):
        if s[-1] != {"[": "]", "{": "}"}[s[0]]:
            self.err(f"unterminated flow collection {s!r}")
        body = s[1:-1].strip()
        items, cur, quote, depth = [], "", None, 0
        for ch in body:
            if quote:
                cur += ch
                if ch == quote:
                    quote = None
                continue
            if ch in "\"'":
                quote = ch
            elif ch in "[{":
                depth += 1
            elif ch in "]}":
                depth -= 1
            elif ch == "," and depth == 0:
                items.append(cur.strip())
                cur = ""
                continue
            cur += ch
        if cur.strip():
            items.append(cur.strip())
        if s[0] == "[":
            return [self._scalar(x) for x in items]
        out = {}
        for x in items:
            k, v = self._key(x)
            out[k] = self._scalar(v) if v else None
        return out


# ------------------------------------------------------------ Dockerfile reading
def dockerfile_instructions(path):
    """[(lineno, KEYWORD, args)] with continuations joined and comments dropped."""
    out, buf, start = [], "", 0
    for no, raw in enumerate(open(path, encoding="utf-8").read().splitlines(), 1):
        s = raw.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue  # comment lines inside a continuation are removed by Docker
        if not buf:
            start = no
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        kw, _, args = buf.partition(" ")
        out.append((start, kw.upper(), args.strip()))
        buf = ""
    if buf:
        fail(f"Dockerfile: unterminated continuation at line {start}")
    return out


def shell_commands(run_args):
    """Split a RUN/shell line into simple commands (on && ; ||), each a token list."""
    if run_args.startswith("["):
        return []
    out = []
    for part in re.split(r"&&|\|\||;", run_args):
        try:
            toks = shlex.split(part)
        except ValueError:
            toks = part.split()
        if toks:
            out.append(toks)
    return out


def script_commands(path):
    """cmake commands of a shell script, continuations joined."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"\\\n", " ", text)
    cmds = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0]
        for toks in shell_commands(line.strip()):
            while toks and ("=" in toks[0] and not toks[0].startswith("-")) or (toks and toks[0] in ("run", "exec", "time", "command")):
                toks = toks[1:]
            if toks and toks[0] == "cmake":
                cmds.append(toks)
    return cmds


def configure_options(cmd):
    """-D options of a cmake configure command, as a set, toggles removed."""
    opts = set()
    toks = list(cmd)
    k = 0
    while k < len(toks):
        t = toks[k]
        if t == "-D" and k + 1 < len(toks):
            t = "-D" + toks[k + 1]
            k += 1
        if t.startswith("-D") and not TOGGLES.match(t):
            opts.add(t)
        k += 1
    return opts


def check_dockerfile(root):
    path = os.path.join(root, "docker/Dockerfile")
    if not os.path.isfile(path):
        fail("docker/Dockerfile missing")
        return
    text = open(path, encoding="utf-8").read()
    for no, line in enumerate(text.splitlines(), 1):
        if not line.startswith("#"):
            break
        if re.match(r"#\s*syntax\s*=", line, re.I):
            fail(f"Dockerfile:{no}: `# syntax=` makes BuildKit pull a frontend image (offline builds break)")
    ins = dockerfile_instructions(path)
    args = {}
    stages = []
    for no, kw, a in ins:
        if kw == "ARG" and not stages:
            name, _, default = a.partition("=")
            args[name.strip()] = default.strip().strip('"')
        if kw == "FROM":
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), a.split()[0])
            m = re.search(r"\bAS\s+(\S+)", a, re.I)
            stages.append({"image": image, "name": m.group(1) if m else None, "ins": [], "line": no})
        elif stages:
            stages[-1]["ins"].append((no, kw, a))
    if len(stages) < 2:
        fail(f"Dockerfile: expected a multi-stage build, found {len(stages)} stage(s)")
        return
    # A stage FROM an earlier stage inherits its instructions: checks of an
    # image look at its whole chain (the default image is FROM runtime).
    by_name = {}
    for s in stages:
        parent = by_name.get(s["image"])
        if parent:
            s["parent"], s["image"] = parent["name"], parent["image"]
            s["own"], s["ins"] = s["ins"], parent["ins"] + s["ins"]
        elif s["image"] != BASE_IMAGE:
            fail(f"Dockerfile:{s['line']}: stage on {s['image']!r}, expected {BASE_IMAGE}")
        if s["name"]:
            by_name[s["name"]] = s
    build, final = stages[0], stages[-1]
    check_image_stages(by_name, build, final)

    for s in stages:
        for no, kw, a in s["ins"]:
            if kw == "RUN" and re.search(r"\bapt(-get)?\s+(-\S+\s+)*install\b|\bdpkg\s+-i\b|\bpip3?\s+install\b", a):
                fail(f"Dockerfile:{no}: installs packages itself; use scripts/deps.sh and scripts/packages/*.txt")
            if kw == "RUN" and re.search(r"\b(curl|wget)\b", a):
                fail(f"Dockerfile:{no}: uses curl/wget (the image has no HTTP client; see the HEALTHCHECK)")

    def runs(stage):
        return [(no, a) for no, kw, a in stage["ins"] if kw == "RUN"]

    def copies(stage):
        return [(no, a) for no, kw, a in stage["ins"] if kw in ("COPY", "ADD")]

    # --- dependencies through scripts/deps.sh
    if not any(re.search(r"(^|[\s/])scripts/deps\.sh\s+build\b", a) for _, a in runs(build)):
        fail("Dockerfile build stage: no `scripts/deps.sh build`")
    dep_runs = [(no, a) for no, a in runs(final) if re.search(r"deps\.sh\s+runtime\b", a)]
    if not dep_runs:
        fail("Dockerfile final stage: runtime packages not installed with `deps.sh runtime`")
    final_copied = " ".join(a for _, a in copies(final))
    if "scripts/deps.sh" not in final_copied:
        fail("Dockerfile final stage: scripts/deps.sh is not copied in")
    if not re.search(r"scripts/packages/(runtime\.txt)?(\s|/|$)", final_copied):
        fail("Dockerfile final stage: scripts/packages/runtime.txt is not copied in")
    if re.search(r"scripts/packages/(build|test)\.txt", final_copied):
        fail("Dockerfile final stage: copies a non-runtime package list")
    for set_name in ("build", "runtime"):
        if not os.path.isfile(os.path.join(root, f"scripts/packages/{set_name}.txt")):
            fail(f"scripts/packages/{set_name}.txt missing")
    runtime = [l.split()[0] for l in open(os.path.join(root, "scripts/packages/runtime.txt"), encoding="utf-8")
               if l.strip() and not l.lstrip().startswith("#")]
    if "curl" in runtime:
        print("note: curl is in runtime.txt")

    # --- cmake commands
    build_cmds = [t for _, a in runs(build) for t in shell_commands(a) if t and t[0] == "cmake"]
    configures = [t for t in build_cmds if "-S" in t or "-B" in t]
    builds = [t for t in build_cmds if "--build" in t]
    if len(configures) != 1 or len(builds) != 1:
        fail(f"Dockerfile build stage: expected one cmake configure and one cmake --build, got {build_cmds}")
    else:
        conf, bld = configures[0], builds[0]
        if conf[:5] != CONTRACT_CONFIGURE[:5]:
            fail(f"Dockerfile configure {' '.join(conf)!r} does not start like the contract's {' '.join(CONTRACT_CONFIGURE)!r}")
        extra = [t for t in conf[5:] if t.startswith("-") and not t.startswith("-D")]
        if extra:
            fail(f"Dockerfile configure has options beyond -D: {extra}")
        reference = set(CONTRACT_CONFIGURE[5:])
        ref_name = "the contract"
        demo = os.path.join(root, "scripts/demo.sh")
        if os.path.isfile(demo):
            demo_conf = [c for c in script_commands(demo) if "-S" in c or "-B" in c]
            if demo_conf:
                reference = configure_options(demo_conf[0])
                reference = {o for o in reference if "$" not in o}
                ref_name = "scripts/demo.sh"
        for sh in ("scripts/test.sh", "scripts/demo.sh"):
            p = os.path.join(root, sh)
            if os.path.isfile(p):
                for c in script_commands(p):
                    bt = [o for o in configure_options(c) if o.startswith("-DCMAKE_BUILD_TYPE=")]
                    if ("-S" in c or "-B" in c) and bt and bt != ["-DCMAKE_BUILD_TYPE=Release"] and sh.endswith("demo.sh"):
                        fail(f"{sh} builds {bt}, the Dockerfile Release")
        mine = configure_options(conf)
        if mine != reference:
            fail(f"Dockerfile configure options {sorted(mine)} differ from {ref_name}'s {sorted(reference)} "
                 "(only -DCMP_BUILD_TESTS/BENCH/FUZZ=OFF may differ)")
        if "-DCMAKE_BUILD_TYPE=Release" not in mine:
            fail("Dockerfile configure is not -DCMAKE_BUILD_TYPE=Release")
        b = list(bld)
        if "--target" in b:
            b = b[: b.index("--target")]
        if b != CONTRACT_BUILD:
            fail(f"Dockerfile build {' '.join(bld)!r} is not the contract's {' '.join(CONTRACT_BUILD)!r} (+ --target)")

    # --- final stage contents
    if not any(re.search(rf"--from=({re.escape(build['name'] or '0')}|0)\b.*\bbuild/cerebras-metrics-proxy\b", a)
               for _, a in copies(final)):
        fail("Dockerfile final stage: cerebras-metrics-proxy not copied from the build stage")
    users = [a for _, kw, a in final["ins"] if kw == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        fail("Dockerfile final stage: no non-root USER")
    else:
        uid, _, gid = users[-1].partition(":")
        final_runs = " ".join(a for _, a in runs(final))
        if gid and gid.isdigit() and not re.search(rf"\bgroupadd\b[^&;]*--gid[= ]{gid}\b", final_runs):
            fail(f"Dockerfile final stage: USER {users[-1]} but no `groupadd --gid {gid}`: the group has no entry")
        if uid.isdigit() and not re.search(rf"\buseradd\b[^&;]*--uid[= ]{uid}\b[^&;]*--gid[= ]{gid or uid}\b"
                                           rf"|\buseradd\b[^&;]*--gid[= ]{gid or uid}\b[^&;]*--uid[= ]{uid}\b", final_runs):
            fail(f"Dockerfile final stage: USER {users[-1]} is not created by `useradd --uid {uid} --gid {gid or uid}`")
    if not any(kw == "EXPOSE" and "9753" in a.split() for _, kw, a in final["ins"]):
        fail("Dockerfile final stage: no EXPOSE 9753")
    hc = [a for _, kw, a in final["ins"] if kw == "HEALTHCHECK"]
    if not hc or not re.search(r"/-/healthy|/healthz", hc[-1]):
        fail("Dockerfile final stage: no HEALTHCHECK on /-/healthy or /healthz")
    if not any(kw == "ENTRYPOINT" and "cerebras-metrics-proxy" in a for _, kw, a in final["ins"]):
        fail("Dockerfile final stage: ENTRYPOINT is not the daemon")

    # --- COPY sources exist in the context (the repo root)
    for s in stages:
        for no, a in copies(s):
            toks = [t for t in a.split() if not t.startswith("--")]
            if "--from=" in a or a.startswith("["):
                continue
            for src in toks[:-1]:
                if src == ".":
                    continue
                if not os.path.exists(os.path.join(root, src)):
                    fail(f"Dockerfile:{no}: COPY source {src} does not exist")
    ignore = os.path.join(root, "docker/Dockerfile.dockerignore")
    if not os.path.isfile(ignore) and not os.path.isfile(os.path.join(root, ".dockerignore")):
        fail("no docker/Dockerfile.dockerignore or .dockerignore: a host build/ tree would be sent")
    elif os.path.isfile(ignore) and not re.search(r"^/?build\b", open(ignore).read(), re.M):
        fail("docker/Dockerfile.dockerignore does not exclude build")


def check_image_stages(by_name, build, final):
    """The simulated upstream is an image of its own (target mock-upstream),
    never in the daemon's; the release target takes the cross-compiled daemon
    from the `release-bin` build context and labels it with the version
    scripts/release.sh passes; every image says its license."""
    def copied(stage):
        return " ".join(a for _, kw, a in stage["ins"] if kw in ("COPY", "ADD"))
    if "cerebras-mock-upstream" in copied(final):
        fail("Dockerfile final stage: the daemon's image carries the simulated upstream")
    mock = by_name.get("mock-upstream")
    if not mock:
        fail("Dockerfile: no `mock-upstream` stage (the compose demo runs it)")
    elif not re.search(rf"--from={re.escape(build['name'] or '0')}\b.*\bbuild/cerebras-mock-upstream\b", copied(mock)):
        fail("Dockerfile mock-upstream stage: cerebras-mock-upstream not copied from the build stage")
    release = by_name.get("release")
    if not release:
        fail("Dockerfile: no `release` stage (scripts/release.sh builds it)")
        return
    if release.get("parent") != final.get("parent"):
        fail("Dockerfile: the release stage and the default image do not share one runtime stage")
    if not re.search(r"--from=release-bin\s+linux-\$\{TARGETARCH\}/cerebras-metrics-proxy\b", copied(release)):
        fail("Dockerfile release stage: the daemon is not copied from release-bin/linux-${TARGETARCH}/")
    labels = " ".join(a for _, kw, a in release["ins"] if kw == "LABEL")
    for key, arg in (("version", "VERSION"), ("revision", "REVISION"), ("created", "CREATED"), ("source", "SOURCE")):
        if f'org.opencontainers.image.{key}="${{{arg}}}"' not in labels:
            fail(f"Dockerfile release stage: no label org.opencontainers.image.{key} from ARG {arg}")
    if 'org.opencontainers.image.licenses="Apache-2.0"' not in labels:
        fail("Dockerfile: the images' licenses label is not Apache-2.0 (LICENSE)")


# ---------------------------------------------------------------- compose
def check_compose(root):
    ddir = os.path.join(root, "docker")
    path = os.path.join(ddir, "compose.yaml")
    if not os.path.isfile(path):
        fail("docker/compose.yaml missing")
        return
    try:
        compose = load_yaml(path)
    except ValueError as e:
        fail(f"compose.yaml does not parse: {e}")
        return
    if not isinstance(compose, dict) or not isinstance(compose.get("services"), dict):
        fail("compose.yaml: no services mapping")
        return
    services = compose["services"]
    named_volumes = set((compose.get("volumes") or {}).keys())

    daemon = [n for n, s in services.items() if isinstance(s, dict) and isinstance(s.get("build"), dict)
              and s["build"].get("dockerfile") == "docker/Dockerfile" and not s["build"].get("target")]
    if len(daemon) != 1:
        fail("compose.yaml: expected one service built from docker/Dockerfile")
    else:
        b = services[daemon[0]]["build"]
        ctx = os.path.normpath(os.path.join(ddir, b.get("context", ".")))
        if not os.path.isfile(os.path.join(ctx, b["dockerfile"])):
            fail(f"compose.yaml: build context {b.get('context')} + {b['dockerfile']} is not the Dockerfile")
    mock = [n for n, s in services.items() if isinstance(s, dict)
            and "cerebras-mock-upstream" in " ".join(map(str, s.get("entrypoint") or []) if isinstance(s.get("entrypoint"), list) else [str(s.get("entrypoint"))])]
    if not mock:
        fail("compose.yaml: no service runs cerebras-mock-upstream")
    elif "demo" not in (services[mock[0]].get("profiles") or []):
        fail("compose.yaml: the mock upstream is not in the `demo` profile")
    elif (services[mock[0]].get("build") or {}).get("target") != "mock-upstream":
        # The daemon's image has no simulated upstream in it.
        fail("compose.yaml: the mock upstream is not built from docker/Dockerfile's mock-upstream target")
    images = {n: str(s.get("image", "")) for n, s in services.items() if isinstance(s, dict)}
    agent = [n for n, i in images.items() if i.startswith("grafana/agent")]
    alloy = [n for n, i in images.items() if i.startswith("grafana/alloy")]
    prom = [n for n, i in images.items() if i.startswith("prom/prometheus")]
    if not agent:
        fail("compose.yaml: no grafana/agent service")
    elif "agent" not in (services[agent[0]].get("profiles") or []):
        fail("compose.yaml: Grafana Agent (end of life) is not confined to the `agent` profile")
    if not alloy:
        fail("compose.yaml: no grafana/alloy service")
    elif services[alloy[0]].get("profiles"):
        fail("compose.yaml: Grafana Alloy is not the default scraper (it has a profile)")
    if daemon and mock:
        check_start_order(services, daemon[0], mock[0])
    if not prom:
        fail("compose.yaml: no prom/prometheus service")
    for n, i in images.items():
        if i and ":" not in i.split("/")[-1]:
            fail(f"compose.yaml: service {n} image {i!r} has no tag")
        if i.endswith(":latest"):
            fail(f"compose.yaml: service {n} uses :latest")

    mounts = {}   # container path -> host path (absolute)
    for n, s in services.items():
        if not isinstance(s, dict):
            fail(f"compose.yaml: service {n} is not a mapping")
            continue
        for v in s.get("volumes") or []:
            src = v.get("source") if isinstance(v, dict) else str(v).split(":")[0]
            dst = v.get("target") if isinstance(v, dict) else str(v).split(":")[1]
            if src.startswith((".", "/")):
                host = os.path.normpath(os.path.join(ddir, src))
                if not os.path.exists(host):
                    fail(f"compose.yaml: service {n} mounts {src}, which does not exist")
                else:
                    mounts[dst] = host
            elif src not in named_volumes:
                fail(f"compose.yaml: service {n} uses volume {src!r} not declared under volumes:")
        for key in ("env_file",):
            for f in ([s[key]] if isinstance(s.get(key), str) else s.get(key) or []):
                if not os.path.exists(os.path.join(ddir, f)):
                    fail(f"compose.yaml: service {n} {key} {f} does not exist")
        for dep in (s.get("depends_on") or []):
            if dep not in services:
                fail(f"compose.yaml: service {n} depends on unknown service {dep}")
        nm = s.get("network_mode", "")
        if isinstance(nm, str) and nm.startswith("service:") and nm[8:] not in services:
            fail(f"compose.yaml: service {n} network_mode names unknown service {nm[8:]}")

    # The daemon's --config.file must be a mounted or baked-in file.
    if daemon:
        cmd = " ".join(map(str, services[daemon[0]].get("command") or []))
        for cfg in re.findall(r"--config\.file=(\S+)", cmd):
            cfg = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", cfg)
            if cfg not in mounts and cfg != "/etc/cerebras-metrics-proxy/cerebras-metrics-proxy.yml":
                fail(f"compose.yaml: the daemon's config {cfg} is not mounted")
        for cfg in ("cerebras-metrics-proxy.yml", "demo.yml"):
            if os.path.join(ddir, cfg) not in mounts.values():
                fail(f"compose.yaml: docker/{cfg} is not mounted into the daemon")

    alloy_cfg = mounts.get("/etc/alloy/config.alloy")
    if not alloy_cfg:
        fail("compose.yaml: config.alloy not mounted at /etc/alloy/config.alloy")
    else:
        check_alloy(alloy_cfg)

    # agent.yaml
    agent_cfg = mounts.get("/etc/agent/agent.yaml")
    if not agent_cfg:
        fail("compose.yaml: agent.yaml not mounted at /etc/agent/agent.yaml")
    else:
        try:
            a = load_yaml(agent_cfg)
            configs = a["metrics"]["configs"]
            scs = [sc for c in configs for sc in c.get("scrape_configs", [])]
            mine = [sc for sc in scs if any("9753" in str(t) for st in sc.get("static_configs", []) for t in st.get("targets", []))]
            if not mine:
                fail("agent.yaml: no scrape config targets the proxy on :9753")
            for sc in mine:
                if sc.get("honor_labels") is not True:
                    fail(f"agent.yaml: job {sc.get('job_name')} without honor_labels: true")
                if sc.get("honor_timestamps") is not True:
                    fail(f"agent.yaml: job {sc.get('job_name')} without honor_timestamps: true")
                if sc.get("job_name") != "cerebras-metrics-proxy":
                    fail("agent.yaml: job_name is not cerebras-metrics-proxy (the alert rules use it)")
            if not any(c.get("remote_write") for c in configs) and not a["metrics"].get("global", {}).get("remote_write"):
                fail("agent.yaml: no remote_write")
        except (ValueError, KeyError, TypeError) as e:
            fail(f"agent.yaml: {e!r}")

    # prometheus.yml
    prom_cfg = mounts.get("/etc/prometheus/prometheus.yml")
    rules_dir = mounts.get("/etc/prometheus/rules")
    if not prom_cfg:
        fail("compose.yaml: prometheus.yml not mounted at /etc/prometheus/prometheus.yml")
        return
    if rules_dir != os.path.join(root, "config/prometheus/rules"):
        fail("compose.yaml: config/prometheus/rules not mounted at /etc/prometheus/rules")
    try:
        p = load_yaml(prom_cfg)
        rule_files = p.get("rule_files") or []
    except (ValueError, AttributeError) as e:
        fail(f"prometheus.yml: {e}")
        return
    if "/etc/prometheus/rules/cerebras.rules.yml" not in rule_files:
        fail("prometheus.yml does not load /etc/prometheus/rules/cerebras.rules.yml")
    promtool = shutil.which("promtool")
    if promtool and rules_dir:
        with tempfile.TemporaryDirectory() as tmp:
            text = open(prom_cfg, encoding="utf-8").read().replace("/etc/prometheus/rules", rules_dir)
            f = os.path.join(tmp, "prometheus.yml")
            open(f, "w", encoding="utf-8").write(text)
            r = subprocess.run([promtool, "check", "config", f], capture_output=True, text=True)
            if r.returncode != 0:
                fail(f"promtool check config docker/prometheus.yml:\n{r.stdout}{r.stderr}")
    for f in ("grafana/provisioning/datasources/prometheus.yaml", "grafana/provisioning/dashboards/cerebras.yaml"):
        fp = os.path.join(ddir, f)
        if os.path.isfile(fp):
            try:
                load_yaml(fp)
            except ValueError as e:
                fail(f"docker/{f}: {e}")
    for f in ("cerebras-metrics-proxy.yml", "demo.yml"):
        fp = os.path.join(ddir, f)
        if os.path.isfile(fp):
            try:
                c = load_yaml(fp)
                if not str(c.get("listen", "")).startswith(("0.0.0.0:", "[::]:", ":")):
                    fail(f"docker/{f}: listen must not be loopback-only inside a container")
            except (ValueError, AttributeError) as e:
                fail(f"docker/{f}: {e}")


def depends(service):
    """depends_on as {name: {condition, required}} for both compose forms."""
    d = service.get("depends_on") or {}
    if isinstance(d, list):
        return {n: {"condition": "service_started", "required": True} for n in d}
    return {n: (v or {}) for n, v in d.items()}


def check_start_order(services, daemon, mock):
    """The demo's first poll must find the mock listening: the mock may not
    need the daemon's container, and the daemon waits until the mock is healthy."""
    d, m = services[daemon], services[mock]
    if daemon in depends(m) or str(m.get("network_mode", "")) == f"service:{daemon}":
        fail(f"compose.yaml: {mock} needs {daemon} to start first, so the demo's first poll fails")
    dep = depends(d).get(mock)
    if not dep or dep.get("condition") != "service_healthy":
        fail(f"compose.yaml: {daemon} does not wait for {mock} to be healthy (depends_on condition service_healthy)")
    elif dep.get("required", True) is not False:
        fail(f"compose.yaml: {daemon} requires {mock}, which only the demo profile starts (required: false)")
    hc = m.get("healthcheck") or {}
    if hc.get("disable") or not hc.get("test"):
        fail(f"compose.yaml: {mock} has no healthcheck to wait for")
    elif "8080" not in " ".join(map(str, hc["test"])):
        fail(f"compose.yaml: {mock}'s healthcheck does not probe its listener on 8080")
    nd, nm = str(d.get("network_mode", "")), str(m.get("network_mode", ""))
    if not nd.startswith("service:") or nd != nm:
        fail(f"compose.yaml: {daemon} and {mock} do not share one network namespace (http:// upstreams must be loopback)")
    else:
        owner = services.get(nd[8:]) or {}
        if not any("9753" in str(p) for p in owner.get("ports") or []):
            fail(f"compose.yaml: {nd[8:]} (the shared namespace) does not publish the proxy's port 9753")
        aliases = ((owner.get("networks") or {}).get("default") or {}).get("aliases") or []
        if daemon not in aliases:
            fail(f"compose.yaml: scrapers address {daemon}:9753, but {nd[8:]} has no such network alias")


# ------------------------------------------------------------------- Alloy
class Alloy:
    """Alloy's configuration syntax, as far as the project's .alloy files use
    it: blocks (`name "label" { ... }`), attributes (`key = value`), strings,
    numbers, booleans, lists, objects, component references (("ref", name))
    and function calls (("call", name, [args]), e.g. sys.env("X")). Anything
    else is an error, so a typo cannot pass as an unknown construct."""

    TOKEN = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)'
                       r'|(?P<id>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)|(?P<p>[{}\[\]()=,])', re.S)

    def __init__(self, text, path):
        self.path, self.toks, pos = path, [], 0
        while pos < len(text):
            m = self.TOKEN.match(text, pos)
            if not m:
                raise ValueError(f"{path}:{text.count(chr(10), 0, pos) + 1}: unexpected {text[pos:pos + 10]!r}")
            pos = m.end()
            kind = m.lastgroup
            if kind:
                self.toks.append((kind, m.group(kind)))
        self.i = 0

    def peek(self, k=0):
        return self.toks[self.i + k] if self.i + k < len(self.toks) else (None, None)

    def take(self, kind=None, value=None):
        t = self.peek()
        if t[0] is None or (kind and t[0] != kind) or (value and t[1] != value):
            raise ValueError(f"{self.path}: expected {value or kind}, got {t[1]!r}")
        self.i += 1
        return t[1]

    def body(self, end):
        """[(name, label, body)] for blocks, {name: value} for attributes."""
        blocks, attrs = [], {}
        while self.peek()[1] != end:
            name = self.take("id")
            if self.peek()[1] == "=":
                self.take(value="=")
                if name in attrs:
                    raise ValueError(f"{self.path}: attribute {name} set twice")
                attrs[name] = self.value()
                continue
            label = self.take("str")[1:-1] if self.peek()[0] == "str" else None
            self.take(value="{")
            blocks.append((name, label, self.body("}")))
            self.take(value="}")
        return blocks, attrs

    def items(self, end):
        """Comma-separated values up to `end` (a list's or a call's)."""
        out = []
        while self.peek()[1] != end:
            out.append(self.value())
            if self.peek()[1] != end:
                self.take(value=",")
        self.take(value=end)
        return out

    def value(self):
        kind, v = self.peek()
        if kind == "str":
            self.i += 1
            return v[1:-1]
        if kind == "num":
            self.i += 1
            return float(v)
        if kind == "id":
            self.i += 1
            if self.peek()[1] == "(":
                self.i += 1
                return ("call", v, self.items(")"))
            return {"true": True, "false": False, "null": None}.get(v, ("ref", v))
        if v == "[":
            self.i += 1
            return self.items("]")
        if v == "{":
            self.i += 1
            out = {}
            while self.peek()[1] != "}":
                k = self.take()
                k = k[1:-1] if k.startswith('"') else k
                self.take(value="=")
                out[k] = self.value()
                if self.peek()[1] != "}":
                    self.take(value=",")
            self.take(value="}")
            return out
        raise ValueError(f"{self.path}: unexpected {v!r}")

    def parse(self):
        blocks, attrs = self.body(None)
        if attrs:
            raise ValueError(f"{self.path}: top-level attributes {sorted(attrs)}")
        return blocks


def check_alloy(path):
    try:
        blocks = Alloy(open(path, encoding="utf-8").read(), path).parse()
    except (OSError, ValueError) as e:
        fail(f"config.alloy: {e}")
        return
    writes = {label: body for name, label, body in blocks if name == "prometheus.remote_write"}
    scrapes = [(label, body) for name, label, body in blocks if name == "prometheus.scrape"]
    mine = [(label, attrs) for label, (_, attrs) in scrapes
            if any(isinstance(t, dict) and t.get("__address__", "").endswith(":9753") for t in attrs.get("targets", []))]
    if not mine:
        fail("config.alloy: no prometheus.scrape targets the proxy on :9753")
    for label, attrs in mine:
        for key in ("honor_labels", "honor_timestamps"):
            if attrs.get(key) is not True:
                fail(f"config.alloy: prometheus.scrape \"{label}\" without {key} = true")
        if attrs.get("job_name") != "cerebras-metrics-proxy":
            fail(f"config.alloy: prometheus.scrape \"{label}\" job_name is not cerebras-metrics-proxy (the alert rules use it)")
        fwd = attrs.get("forward_to") or []
        if not fwd:
            fail(f"config.alloy: prometheus.scrape \"{label}\" forwards nowhere")
        for ref in fwd:
            m = re.fullmatch(r"prometheus\.remote_write\.(\w+)\.receiver", ref[1] if isinstance(ref, tuple) else "")
            if not m or m.group(1) not in writes:
                fail(f"config.alloy: forward_to {ref!r} is not the receiver of a prometheus.remote_write in the file")
    for label, (inner, _) in writes.items():
        urls = [a.get("url") for name, _, (_, a) in inner if name == "endpoint"]
        if not urls or not all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls):
            fail(f"config.alloy: prometheus.remote_write \"{label}\" has no endpoint with a url")
    agent_interval = None
    try:
        agent_interval = load_yaml(os.path.join(os.path.dirname(path), "agent.yaml"))["metrics"]["global"]["scrape_interval"]
    except (ValueError, KeyError, TypeError):
        pass
    for label, attrs in mine:
        if agent_interval and attrs.get("scrape_interval") != agent_interval:
            fail(f"config.alloy: scrape_interval {attrs.get('scrape_interval')!r} differs from agent.yaml's {agent_interval!r}")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    root = os.path.abspath(sys.argv[1])
    check_dockerfile(root)
    check_compose(root)
    if problems:
        for p in problems:
            print(f"FAIL: {p}")
        return 1
    print("PASS: docker/Dockerfile and compose.yaml match scripts/ and the repository")
    return 0


if __name__ == "__main__":
    sys.exit(main())
