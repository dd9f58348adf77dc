#pragma once
// Parser for the Prometheus text exposition format 0.0.4 and OpenMetrics 1.0.
//
// Sans-I/O: a complete body goes in, a family_list (and the repairs it
// needed) or the first error comes out. The contract is Prometheus 2.x's own
// scrape path (model/textparse/promparse.go, openmetricsparse.go and the
// scrape loop): a body is taken exactly when Prometheus would ingest it, with
// the same series, values and timestamps, because a proxy stricter than its
// client turns a harmless quirk of the upstream into an outage. What
// Prometheus refuses is an error with a position; nothing is silently
// skipped that Prometheus would not skip too. Decisions that matter:
//
//  * Which grammar: Prometheus uses the OpenMetrics parser only when the
//    Content-Type parses (Go's mime.ParseMediaType) with media type
//    application/openmetrics-text, the text parser otherwise, a missing or
//    unparseable header included (format_for_content_type).
//  * Text (promlex.l): lines end in `\n`; a missing final newline is
//    accepted (Prometheus appends one). `\r` is no blank (a CRLF body fails
//    at its first sample or TYPE line). Blank lines, lines of blanks,
//    trailing blanks, blanks around `{`, `=`, `,` and `}` are accepted;
//    leading blanks only before a `#` (Prometheus makes them part of a
//    sample's metric name, which is then invalid). A NUL where a line's
//    first token would start, or in a comment that starts `#` + non-blank,
//    ends the input: what came before it is the body.
//  * Text `# HELP name text` / `# TYPE name type`: the name ends at the
//    first byte that cannot continue it, and the one byte after it (a blank
//    or not: `# TYPE a-counter` types `a`) is dropped; the rest of the line
//    is the text, or the type word (counter|gauge|histogram|summary|untyped,
//    nothing around it). HELP unescapes `\\` and `\n` only. `# HELP` or
//    `# TYPE` with nothing after it, and every other `#` line, is a comment.
//  * Metadata is per line, as in Prometheus: HELP and TYPE may repeat (the
//    first wins), come after the family's samples, or name a family without
//    samples (dropped). A family's lines need not be contiguous: blocks of
//    the same family are merged in order of first appearance.
//  * A text sample is `name[{labels}] value [timestamp]`; the value may
//    follow the name or `}` with no blank (`a-1`, `a{b="c"}2`). Labels:
//    commas between them optional, one trailing comma; a value may hold a
//    raw newline. Label values unescape `\\`, `\"` and `\n`; any other
//    escape stays as written; values and HELP text must be UTF-8.
//  * Label sets as the scrape loop stores them: a label whose name has an
//    empty value anywhere in the set is dropped (Prometheus stores no empty
//    label), then a name left twice is an error, and so is a `__name__`
//    label; but, as in the head, a repeated name on a sample that
//    Prometheus drops as out of bounds first is no error: that sample is
//    dropped (out_of_bounds_dropped; needs parse_limits::scrape_time_ms).
//  * Several samples of one series (same name and label set, in any label
//    order) are all kept, in body order, each at its own timestamp:
//    Prometheus stores every point (which ones it drops as out of order or
//    out of bounds depends on its clock, so it decides that when it scrapes
//    the daemon). Only a true duplicate is dropped, as the scrape drops it:
//    the same explicit timestamp again, or a second sample without one
//    (normalization duplicate_series_dropped; the first sample stays).
//  * Values use Go's strconv.ParseFloat decimal syntax as Prometheus does:
//    `1`, `-0`, `1.`, `.5`, `+1e-3`, `NaN`, `Inf`, `+Inf`, `-Inf`, `infinity`
//    (special words case-insensitive). Hexadecimal floats and `_` separators
//    are rejected (Prometheus rejects any `p` or `_` in a value, which rules
//    out Go's hex floats). Overflow (`1e400`) is an error; underflow rounds to
//    zero, as in Go.
//  * Timestamps: text, base-10 int64 milliseconds, digits only (Prometheus's
//    lexer takes no sign); OpenMetrics, float seconds times 1000 converted
//    as Go converts on amd64 (truncated; out of int64 range: INT64_MIN).
//  * Family membership: typed histogram `h` takes `h_bucket` (with a numeric
//    `le`), `h_sum`, `h_count`; summary `s` takes `s` (with a numeric
//    `quantile`), `s_sum`, `s_count`; other types take only their own name;
//    every other sample name is its own untyped family. Prometheus stores
//    samples whatever the TYPE says, so a histogram or summary whose samples
//    do not fit (a bare `h`, a bucket without `le`) loses its type and its
//    samples become untyped families of their own names.
//  * OpenMetrics (openmetricslex.l, strict): no blank lines, no comments but
//    `# HELP`, `# TYPE`, `# UNIT` and `# EOF`, exactly one space between
//    tokens and none inside a label set, commas between labels and no
//    trailing one. `# EOF` ends the body (one newline may follow it,
//    nothing else). A UNIT must be a `_`-separated suffix of the name; the
//    model keeps no unit. Exemplars (` # {labels} value [timestamp]`, only
//    on `_total` and `_bucket` samples) are checked, then dropped, and so is
//    a sample with a negative timestamp (Prometheus drops it as out of
//    bounds; the text format cannot carry it). A counter `c` becomes the
//    counter family `c_total` and `c_created` its own untyped family (the
//    text model Prometheus stores); gaugehistogram, stateset, info and
//    unknown families become untyped.
//  * Every repair that a strict text-format parser would have refused is
//    reported as a normalization (kind, first line, count).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include "cmp/exposition/model.hpp"

namespace cmp::exposition {

// Bounds on one parse. The body cap, with parsing linear in the body (no
// step is quadratic in labels or lines), bounds the time and memory a
// hostile or broken upstream can cost; the rest are Prometheus's own opt-in
// per-scrape-config limits, 0 meaning none as in Prometheus, counted as its
// scrape loop counts them. A body over any of them is refused (parse_error
// with `limit` set). A plain value; thread-safe to share read-only.
struct parse_limits {
  // Whole body. Matches the 16 MiB upstream body limit in the interface spec.
  std::size_t max_bytes = 16u * 1024 * 1024;
  // Labels of one series, the metric name (`__name__`) included.
  std::size_t label_limit = 0;
  // Bytes of one label name; `__name__` counts (8).
  std::size_t label_name_length_limit = 0;
  // Bytes of one label value after unescaping; the metric name counts.
  std::size_t label_value_length_limit = 0;
  // Sample lines in the body, kept or not (Prometheus counts every append).
  std::size_t sample_limit = 0;
  // When the body is scraped (ms since the epoch; 0: unknown). Prometheus
  // drops a sample out of bounds (over 10 minutes ahead, or over an hour
  // old) before its head would refuse the scrape for a repeated label name:
  // such a sample is dropped, not an error, when this is known.
  std::int64_t scrape_time_ms = 0;
};

// Where and why a body was rejected. `line` and `column` are 1-based; the
// column counts bytes. A plain value; thread-safe to share read-only.
struct parse_error {
  std::size_t line = 0;
  std::size_t column = 0;
  std::string reason;
  // Set when the body is refused for a parse_limits limit: its config key
  // (label_limit, label_name_length_limit, label_value_length_limit,
  // sample_limit; static storage). Empty for a body Prometheus cannot parse.
  std::string_view limit;

  // "line 3, column 14: reason"
  std::string message() const;

  friend bool operator==(const parse_error&, const parse_error&) = default;
};

// Lets boost::system::result<..., parse_error>::value() throw on an error:
// it throws std::runtime_error carrying message().
[[noreturn]] void throw_exception_from_error(const parse_error& e,
                                             const boost::source_location& loc);

using parse_result = boost::system::result<family_list, parse_error>;

// The grammar of a body. protobuf is recognised only to be refused: the
// daemon never asks for it, and Prometheus would parse nothing else from it.
enum class body_format : std::uint8_t { text, openmetrics, protobuf };

// What Prometheus 2.x picks for a response's Content-Type (textparse.New):
// OpenMetrics for media type application/openmetrics-text, protobuf for
// application/vnd.google.protobuf (any case, any valid parameters), text for
// everything else, a missing header and one that Go's mime.ParseMediaType
// refuses (a parameter without `=`, a repeated one, ...) included.
body_format format_for_content_type(std::string_view content_type);

// Kinds of normalization, the `kind` label of
// cerebras_proxy_upstream_normalizations_total.
namespace normalization_kind {
inline constexpr std::string_view family_merged = "family_merged";
inline constexpr std::string_view duplicate_series_dropped = "duplicate_series_dropped";
inline constexpr std::string_view duplicate_help = "duplicate_help";
inline constexpr std::string_view duplicate_type = "duplicate_type";
inline constexpr std::string_view type_after_samples = "type_after_samples";
inline constexpr std::string_view type_dropped = "type_dropped";
inline constexpr std::string_view exemplar_dropped = "exemplar_dropped";
inline constexpr std::string_view negative_timestamp_dropped = "negative_timestamp_dropped";
inline constexpr std::string_view out_of_bounds_dropped = "out_of_bounds_dropped";
}  // namespace normalization_kind

// One kind of repair in one body: how often, and the first line it happened
// on (1-based). `kind` is one of normalization_kind (static storage).
struct normalization {
  std::string_view kind;
  std::size_t first_line = 0;
  std::size_t count = 0;
  friend bool operator==(const normalization&, const normalization&) = default;
};

struct parsed_body {
  family_list families;
  std::vector<normalization> normalizations;  // in order of first occurrence
};

using parse_body_result = boost::system::result<parsed_body, parse_error>;

// Parses one complete exposition body. Pure function: no I/O, no global state,
// safe to call from any number of threads at once. A body that needs no
// repair costs what a strict parse costs; the repairing pass runs only when
// the strict one meets something Prometheus tolerates.
parse_body_result parse_body(std::string_view body, body_format format,
                             const parse_limits& limits = {});

// parse_body() of a text-format body, without the repair report.
parse_result parse_text(std::string_view body, const parse_limits& limits = {});

}  // namespace cmp::exposition
