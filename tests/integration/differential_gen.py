#!/usr/bin/env python3
"""Seeded generator of exposition bodies for the differential suite.

    import differential_gen as gen
    case = gen.case(seed, index)     # the same case for the same (seed, index), always

A case is a dict in the format of tests/data/differential/cases.json plus its
body (`template`, bytes):
  - content_type   the Content-Type header (None: no header)
  - encoding       identity | gzip | gzip2 (two gzip members) | header-only
                   variants: "identity-header", "x-gzip", "x-gzip-plain",
                   "GZIP", "br-plain" (see differential.encode_body)
  - framing        length | chunked | close
  - limits         {} or per-upstream limit keys (label_limit, ...)

The grammar covers text 0.0.4 and OpenMetrics 1.0 as Prometheus 2.42 lexes
them (model/textparse/promlex.l, openmetricslex.l): metric and label names
(valid, invalid, long), label values with every escape and raw byte class,
values and timestamps in the spellings Go's ParseFloat/ParseInt take or
refuse, HELP/TYPE/UNIT lines anywhere and repeated, comments, histograms and
summaries that fit their type or not, several samples of one series with
explicit timestamps, blanks, CRLF, missing final newlines, sizes from empty
to a few MiB; then, for some cases, byte-level mutations of the result.

Explicit timestamps are written as placeholders resolved when the body is
served (differential.resolve): `@NOW_MS-N@` is N ms before the run started,
`@NOW_S-N@` N s before it, so that a stored case stays reproducible and its
timestamps stay recent enough to be stored. They stay within 30 minutes in
the past (Prometheus drops older samples than head max time - 1 h, and a
future timestamp would move that bound while the batch runs); the out of
bounds ones are far (0, 1000, 10^17...), so both sides drop them alike.
"""

import random

TEXT_CT = "text/plain; version=0.0.4; charset=utf-8"
OM_CT = "application/openmetrics-text; version=1.0.0; charset=utf-8"

# Label names the scrape targets carry (job, instance, case): a body label of
# that name is renamed exported_* by Prometheus on both sides alike, but two
# of them in one sample are resolved in an order Go's unstable sort decides.
TARGET_LABELS = ("job", "instance", "case")

METRIC_NAMES = ["a", "b", "metric", "http_requests", "x:y", ":colon", "_under", "__dunder",
                "a1", "Z9_", "requests_count_total", "ttft_seconds", "cache_rate",
                "h_bucket", "s_sum", "c_total", "up_time"]
LABEL_NAMES = ["l", "le", "quantile", "endpoint", "_u", "__meta", "A", "l2", "code",
               "organization_id", "statistic", "x_y"]
INVALID_METRIC_NAMES = ["1a", "a-b", "a.b", "é", "a b", "", "a{", "\"a\""]
INVALID_LABEL_NAMES = ["1l", "l-x", "l:x", "é", "l.x", "", "__name__"]

# Label value pieces: (text-format bytes, OpenMetrics-safe).
VALUE_PIECES = [
    b"v", b"value", b"llama-3.3-70b", b"org_abc123", b"0.5", b"+Inf", b"1e3", b" ", b"  x ",
    b"a,b", b"a=b", b"{}", b"#", b"}", b"{", b"=", b",",
    b"\\\\", b"\\\"", b"\\n", b"\\t", b"\\q", b"\\x41", b"\\u00e9", b"\\\\n",
    "é".encode(), "日本".encode(), "\U0001F600".encode(), b"\t",
    b"\n",                      # raw newline: text takes it, OpenMetrics refuses it
    b"\r", b"\x00", b"\x01", b"\x7f",
    b"\x80", b"\xc3", b"\xc0\x80", b"\xed\xa0\x80", b"\xf5\x80\x80\x80", b"\xff",
]

VALUES_OK = [b"1", b"0", b"-0", b"1.0", b"1.", b".5", b"+1e-3", b"1E5", b"-2.5e+10", b"007",
             b"NaN", b"nan", b"Inf", b"+Inf", b"-Inf", b"inf", b"+inf", b"Infinity",
             b"-infinity", b"INF", b"123456789012345678901234567890", b"1e-400", b"4.9e-324",
             b"2.4703282292062328e-324", b"1.7976931348623157e308",
             b"1.797693134862315807e308", b"0.1", b"3862085.0", b"1e308",
             b"0.000000000000000000000000000001", b"9007199254740993"]
VALUES_BAD = [b"", b"+", b"-", b".", b"e5", b"1e", b"1e+", b"0x10", b"0x1p3", b"1_000",
              b"1e400", b"-1e400", b"1.7976931348623159e308", b"+NaN", b"-nan", b"infin",
              b"infinit", b"0.0.1", b"1,5", b"\xd9\xa1", b"one", b"1f", b"0b1", b"0o7",
              b"Nan1", b"1e1_0", b"0X1P2", b"--1", b"+-1", b"1.5e3.2", b"\x001"]


def _choice_w(r, pairs):
    """One item of [(weight, item)]."""
    total = sum(w for w, _ in pairs)
    x = r.random() * total
    for w, item in pairs:
        x -= w
        if x < 0:
            return item
    return pairs[-1][1]


class _Body:
    """One body under construction: the format, the random source, lines."""

    def __init__(self, r, om):
        self.r = r
        self.om = om
        self.lines = []       # bytes, without line ending
        self.sep = b" "       # the blank between tokens of this body
        # Explicit timestamps of this body, in ms before now, increasing
        # per series as the generator hands them out.
        self.offset_ms = r.randint(60_000, 1_800_000)
        # How often a token is one Prometheus refuses or a byte class it
        # treats specially: half the bodies are clean, so that most cases
        # compare series and not only refusals.
        self.dirty = r.choice([0, 0, 0, 0.3, 1, 2])
        self.long_ok = True   # long names and values (not in large bodies)

    def odd(self, p):
        """True with probability p scaled by this body's dirtiness."""
        return self.r.random() < p * self.dirty

    # -- tokens
    def _name(self, valid, invalid, long_char, long_sizes):
        r = self.r
        if self.odd(0.02):
            return r.choice(invalid).encode()
        if self.long_ok and self.odd(0.01):
            return long_char * r.choice(long_sizes)
        return r.choice(valid).encode()

    def metric_name(self):
        return self._name(METRIC_NAMES, INVALID_METRIC_NAMES, b"n", [300, 1025, 5000])

    def label_name(self):
        return self._name(LABEL_NAMES, INVALID_LABEL_NAMES, b"l", [100, 1025, 3000])

    def label_value(self):
        r = self.r
        x = r.random()
        if x < 0.1:
            return b""
        if self.long_ok and self.odd(0.02):
            return b"v" * r.choice([1000, 16385, 70000])
        if x < 0.7 or not self.dirty:
            return r.choice(VALUE_PIECES[:7]) + str(r.randint(0, 99)).encode()
        n = r.randint(1, 4)
        # Mostly valid escapes and UTF-8; the raw byte classes less often.
        pool = VALUE_PIECES if self.odd(0.15) else VALUE_PIECES[:29]
        return b"".join(r.choice(pool) for _ in range(n))

    def value(self):
        r = self.r
        if self.odd(0.03):
            return r.choice(VALUES_BAD)
        return r.choice(VALUES_OK) if self.dirty or r.random() < 0.3 else VALUES_OK[r.randrange(10)]

    def timestamp(self, step=True):
        """An explicit timestamp of this body (a placeholder), or a spelling."""
        r = self.r
        x = r.random()
        if step:
            self.offset_ms -= r.randint(1, 20_000)
            self.offset_ms = max(self.offset_ms, 1)
        off = self.offset_ms
        if self.om:
            if self.odd(0.06):
                return r.choice([b"NaN", b"Inf", b"-Inf", b"1e400", b"0x1p3", b"1_0", b"",
                                 b"1e20", b"-1", b"-1e20", b"0", b"1000", b"-0.0001",
                                 b"1.5e9", b"+1", b".5"])
            s, ms = divmod(off, 1000)
            return _choice_w(r, [
                (5, b"@NOW_S-%d@.%03d" % (s + 1, 1000 - ms) if ms else b"@NOW_S-%d@" % s),
                (1, b"@NOW_S-%d@" % (s + 1)),
                (1, b"@NOW_S-%d@.5" % (s + 1)),
                (1, b"@NOW_S-%d@.0001" % (s + 1)),
            ])
        if self.odd(0.06):
            return r.choice([b"-1", b"+1", b"1.5", b"1e3", b"0x10", b"", b"9223372036854775808",
                             b"99999999999999999999", b"1_000", b"\xd9\xa1", b"ts"])
        if x < 0.1:
            return r.choice([b"0", b"1000", b"100000000000", b"9223372036854775807",
                             b"00000"])
        t = b"@NOW_MS-%d@" % off
        return b"00" + t if x < 0.12 else t

    def blank(self):
        """The separator before a value or timestamp (text: any blanks)."""
        r = self.r
        if self.om:
            return r.choice([b"  ", b"\t"]) if self.odd(0.01) else b" "
        return self.sep if not self.odd(0.1) else r.choice([b" ", b"\t", b"  ", b" \t ", b""])

    def labels(self, pairs):
        """{...} of (name, raw value) pairs, with this format's punctuation."""
        r = self.r
        if not pairs and r.random() < 0.5:
            return b""
        out = []
        for i, (n, v) in enumerate(pairs):
            sp = b"" if self.om and not self.odd(0.005) or not self.odd(0.05) else r.choice([b" ", b"\t"])
            out.append(sp + n + sp + b"=" + sp + b"\"" + v + b"\"" + sp)
        comma = b","
        if self.odd(0.05):
            comma = r.choice([b"", b" , "])   # text: commas between pairs are optional
        body = comma.join(out)
        if pairs and self.odd(0.05):
            body += b","                        # one trailing comma: text only
        return b"{" + body + b"}"

    def sample(self, name, pairs, value=None, ts=None):
        line = name + self.labels(pairs)
        line += self.blank() + (value if value is not None else self.value())
        if ts is not None:
            line += self.blank() + ts
        if self.odd(0.03):
            line += self.r.choice([b" ", b"\t", b"  "])   # trailing blanks
        return line

    # -- metadata
    def help(self, name):
        r = self.r
        if not self.odd(1):
            return b"# HELP " + name + b" " + r.choice([b"Help text.", b"", b"with \\\\ and \\n"])
        text = r.choice([b"Help text.", b"", b"with \\\\ and \\n", b"odd \\q escape",
                         b"quote \\\" here", "é".encode(), b"\xff bad", b"  lead",
                         b"h" * 70000 if self.long_ok and r.random() < 0.05 else b"x"])
        sep = b" " if not self.odd(0.2) else r.choice([b"\t", b"  ", b"-", b"{"])
        if text == b"" and r.random() < 0.5:
            return b"# HELP " + name
        return b"# HELP " + name + sep + text

    def type_line(self, name, word):
        r = self.r
        sep = b" " if not self.odd(0.1) else r.choice([b"\t", b"  ", b"-"])
        return b"# TYPE " + name + sep + word

    def type_word(self, kind):
        r = self.r
        if self.odd(0.05):
            return r.choice([b"Counter", b"untyped", b"unknown", b"gaugehistogram", b"info",
                             b"stateset", b"counter ", b"", b"histogram2"])
        if kind == "untyped":
            return b"unknown" if self.om else b"untyped"
        return kind.encode()

    def comment(self):
        r = self.r
        return r.choice([b"# a comment", b"#", b"#no space", b"# HELP", b"# TYPE", b"#HELP a x",
                         b"# HELPER a", b"#\tTYPE x counter", b"# EOF", b"# UNIT a_s s",
                         b"  # indented", b"# \x00 nul", b"#\x00"])


def _family(b, fam):
    """Appends one family: metadata and samples, in a random arrangement."""
    r = b.r
    kind = _choice_w(r, [(4, "gauge"), (3, "counter"), (2, "untyped"), (2, "histogram"),
                         (2, "summary")])
    meta = []
    if r.random() < 0.7:
        meta.append(b.help(fam))
    if r.random() < 0.8:
        meta.append(b.type_line(fam, b.type_word(kind)))
    if b.om and r.random() < 0.1:
        meta.append(b"# UNIT " + fam + b" " + r.choice([b"", b"seconds", fam.split(b"_")[-1]]))
    if r.random() < 0.08 and meta:
        meta.append(r.choice(meta))            # a repeated HELP or TYPE
    samples = []
    names = [fam]
    if kind == "histogram":
        names = [fam + b"_bucket", fam + b"_sum", fam + b"_count"]
        if r.random() < 0.1:
            names.append(fam)                   # does not fit a histogram
    elif kind == "summary":
        names = [fam, fam + b"_sum", fam + b"_count"]
    elif kind == "counter" and b.om:
        names = [fam + b"_total"] + ([fam + b"_created"] if r.random() < 0.2 else [])
    series = [[(b.label_name(), b.label_value()) for _ in range(r.choice([0, 1, 1, 2, 3]))]
              for _ in range(r.randint(1, 3))]
    if b.long_ok and r.random() < 0.03:
        series.append([(b"l%d" % i, b"v") for i in range(r.choice([65, 130]))])
    for s in series:
        for n in names:
            pairs = list(s)
            if n.endswith(b"_bucket"):
                les = [b"0.1", b"1", b"+Inf"] if r.random() < 0.9 else [
                    r.choice([b"Inf", b"1e3", b"x", b"", b"+inf", b"0x1"])]
                for le in les:
                    if r.random() < 0.05:
                        samples.append(b.sample(n, pairs))             # no `le`: misfit
                    else:
                        samples.append(b.sample(n, pairs + [(b"le", le)]))
                continue
            if kind == "summary" and n == fam:
                for q in ([b"0.5", b"0.99"] if r.random() < 0.9 else [b"x", b""]):
                    if r.random() < 0.05:
                        samples.append(b.sample(n, pairs))
                    else:
                        samples.append(b.sample(n, pairs + [(b"quantile", q)]))
                continue
            ts = b.timestamp() if r.random() < 0.15 else None
            samples.append(b.sample(n, pairs, ts=ts))
            x = r.random()
            if x < 0.1:
                # Several samples of one series: more explicit timestamps
                # (later ones are newer, equal, older), or none.
                for _ in range(r.randint(1, 3)):
                    y = r.random()
                    if y < 0.6:
                        t2 = b.timestamp()
                    elif y < 0.8:
                        t2 = ts or b.timestamp(step=False)
                    elif y < 0.9:
                        b.offset_ms += r.randint(1, 60_000)
                        t2 = b.timestamp(step=False)
                    else:
                        t2 = None
                    samples.append(b.sample(n, pairs, ts=t2))
            elif x < 0.15:
                # The same series again: same spelling, labels reordered, or
                # an empty label added (Prometheus drops empty labels).
                p2 = list(reversed(pairs))
                if r.random() < 0.3:
                    p2.append((b"extra", b""))
                samples.append(b.sample(n, p2))
    arrangement = r.random()
    if arrangement < 0.8:
        lines = meta + samples
    elif arrangement < 0.9:
        lines = samples + meta                   # metadata after the samples
    else:
        lines = samples[:len(samples) // 2] + meta + samples[len(samples) // 2:]
    return lines


def _huge(r, om):
    """8 to 16 MiB, just under the body cap, in few series (Prometheus keeps
    every series of a batch in memory): long label values, HELP texts and
    comments."""
    target = r.randint(8 << 20, (16 << 20) - 4096)
    lines, size, i = [], 0, 0
    while size < target - (300 << 10):
        kind = r.random()
        if kind < 0.5:
            line = b'big_%d{v="%s"} %d' % (i, b"x" * r.randint(1000, 200_000), i)
        elif kind < 0.8:
            line = b"# HELP big_%d %s" % (i, b"h" * r.randint(1000, 300_000))
        else:
            line = (b"# " if om else b"#") + b"c" * r.randint(1000, 300_000)
            if om:
                line = b"# HELP comment_%d %s" % (i, line)
        lines.append(line)
        size += len(line) + 1
        i += 1
    if om:
        lines.append(b"# EOF")
    return b"\n".join(lines) + b"\n"


def _body(r, om):
    if r.random() < 0.0005:
        return _huge(r, om)
    b = _Body(r, om)
    if not om and r.random() < 0.05:
        b.sep = r.choice([b"\t", b"  "])
    size = _choice_w(r, [(40, "small"), (8, "medium"), (1, "large"), (3, "empty")])
    if size == "empty":
        nfam = 0
    elif size == "small":
        nfam = r.randint(1, 4)
    elif size == "medium":
        nfam = r.randint(5, 40)
    else:
        nfam = r.randint(500, 4000)
        b.long_ok = False
    fams = []
    for i in range(nfam):
        name = b.metric_name()
        if size != "small":
            name = name + b"_%d" % i
        fams.append(name)
    blocks = []
    for fam in fams:
        blocks.append(_family(b, fam))
    # A family split in two blocks, or repeated whole.
    if len(blocks) >= 2 and r.random() < 0.1:
        i = r.randrange(len(blocks))
        half = len(blocks[i]) // 2
        blocks.append(blocks[i][half:])
        blocks[i] = blocks[i][:half]
    lines = []
    for blk in blocks:
        if not om and r.random() < 0.2:
            lines.append(r.choice([b"", b"", b" ", b"\t", b"# comment"]))
        if om and b.odd(0.02):
            lines.append(r.choice([b"", b"# comment", b" "]))
        lines.extend(blk)
    if not om and r.random() < 0.1:
        lines.insert(r.randint(0, len(lines)), b.comment())
    if om and b.odd(0.03):
        lines.insert(r.randint(0, len(lines)), b.comment())
    if om:
        x = r.random()
        if not b.odd(0.1):
            lines.append(b"# EOF")
        elif x < 0.5:
            lines += [b"# EOF", r.choice([b"", b"a 1", b"# EOF"])]
    eol = b"\n"
    if b.odd(0.03):
        eol = b"\r\n"
    text = eol.join(lines)
    x = r.random()
    if lines and x < 0.85:
        text += eol
    elif x < 0.9:
        text += eol + eol
    if not om and r.random() < 0.02:
        text = r.choice([b"\n", b"  \n", b"\t\n"]) + text
    return text


MUTATION_BYTES = b"\x00\r\n\t \"\\{},=#.-+e1aZ_:\x80\xff\xc3"


def mutate(r, body):
    """One to three byte-level edits: replace, insert, delete, duplicate or
    drop a line, truncate."""
    body = bytearray(body)
    for _ in range(r.randint(1, 3)):
        op = r.random()
        if not body:
            body += bytes([r.choice(MUTATION_BYTES)])
            continue
        i = r.randrange(len(body))
        if op < 0.3:
            body[i] = r.choice(MUTATION_BYTES)
        elif op < 0.5:
            body[i:i] = bytes([r.choice(MUTATION_BYTES)])
        elif op < 0.65:
            del body[i:i + r.randint(1, 4)]
        elif op < 0.8:
            lines = bytes(body).split(b"\n")
            j = r.randrange(len(lines))
            if r.random() < 0.5:
                lines.insert(j, lines[j])
            else:
                del lines[j]
            body = bytearray(b"\n".join(lines))
        else:
            del body[i:]
    return bytes(body)


def _http(r, om):
    """Content-Type, Content-Encoding variant and framing."""
    if om:
        ct = _choice_w(r, [
            (20, OM_CT), (3, "application/openmetrics-text"),
            (1, "Application/OpenMetrics-Text; version=1.0.0"),
            (1, "application/openmetrics-text; version=1.0.0;"),
            (1, "application/openmetrics-text;"),
            (1, " application/openmetrics-text ; charset=utf-8"),
            (1, "application/openmetrics-text; charset"),        # unparseable: text
            (1, "application/openmetrics-text; a=1; a=2"),       # duplicate: text
            (1, "application/openmetrics-text; a=\"x;y\""),
            (1, "application/openmetrics-text; a=\"unterminated"),
            (1, "application/openmetrics-text; ;"),
            (1, "application/openmetrics-text/x"),
            (1, "application/openmetrics-text; version=1.0.0, text/plain"),
            (1, TEXT_CT),                                         # OM served as text
        ])
    else:
        ct = _choice_w(r, [
            (20, TEXT_CT), (3, None), (2, "text/plain"), (1, ""), (1, "TEXT/PLAIN;version=0.0.4"),
            (1, "application/json"), (1, "text/plain; charset"), (1, "garbage"),
            (1, "text/html; charset=utf-8"), (1, OM_CT),          # text served as OM
            (1, "application/openmetrics-text; version=1.0.0; charset"),
        ])
    enc = _choice_w(r, [(30, "identity"), (6, "gzip"), (3, "gzip2"), (1, "identity-header"),
                        (1, "x-gzip"), (1, "x-gzip-plain"), (1, "GZIP"), (1, "br-plain")])
    framing = _choice_w(r, [(6, "length"), (3, "chunked"), (1, "close")])
    return ct, enc, framing


LIMIT_CHOICES = [
    {"label_limit": 3}, {"label_limit": 1}, {"sample_limit": 5}, {"sample_limit": 1},
    {"label_name_length_limit": 10}, {"label_value_length_limit": 20},
    {"label_limit": 4, "sample_limit": 20, "label_name_length_limit": 16,
     "label_value_length_limit": 100},
]


def case(seed, index):
    """The generated case `index` of `seed`: deterministic."""
    r = random.Random("%d:%d" % (seed, index))
    om = r.random() < 0.25
    body = _body(r, om)
    if r.random() < 0.15:
        body = mutate(r, body)
    ct, enc, framing = _http(r, om)
    limits = dict(r.choice(LIMIT_CHOICES)) if r.random() < 0.06 else {}
    return {"template": body, "content_type": ct, "encoding": enc, "framing": framing,
            "limits": limits}


if __name__ == "__main__":
    import sys
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    for i in range(int(sys.argv[2]) if len(sys.argv) > 2 else 5):
        c = case(seed, i)
        print("---- %d %r %s %s %r" % (i, c["content_type"], c["encoding"], c["framing"],
                                        c["limits"]))
        sys.stdout.write(c["template"].decode("utf-8", "replace")[:600] + "\n")
