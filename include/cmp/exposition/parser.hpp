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
//    Content-Type's media type is application/openmetrics-text, the text
//    parser otherwise (format_for_content_type).
//  * Lines end in `\n`. A missing final newline is accepted (Prometheus appends
//    one before lexing). `\r` is rejected wherever it is not plain text (so a
//    CRLF body fails at its first sample or TYPE line, as in Prometheus).
//  * Blank lines, lines of spaces/tabs, and trailing blanks are accepted;
//    leading blanks only before a `#` (Prometheus makes them part of a
//    sample's metric name, which is then invalid). Blanks are also accepted around `{`, `=`, `,` and `}`, and one
//    trailing comma in a label set.
//  * `# HELP name text`: exactly one blank separates name and text, the rest
//    of the line is the text; `\\` and `\n` are unescaped, any other
//    backslash stays as it is (Prometheus's replacer). `# TYPE name type` with
//    type counter|gauge|histogram|summary|untyped (lower case, exactly one
//    blank before it, nothing after). `# HELP`/`# TYPE` followed directly by
//    the end of the line, and every other `#` line, is a comment.
//  * Metadata is per line, as in Prometheus: HELP and TYPE may repeat (the
//    first wins), come after the family's samples, or name a family without
//    samples (dropped). A family's lines need not be contiguous: blocks of
//    the same family are merged in order of first appearance.
//  * A sample line is `name[{labels}] value [timestamp]` with at least one
//    blank before the value and before the timestamp. Label values unescape
//    `\\`, `\"` and `\n`; any other escape stays as written. Label values
//    and HELP text must be UTF-8. Duplicate label names in a sample are an
//    error (the scrape loop rejects them). A repeated series (same name and
//    label set, in any label order) keeps its first sample, as the scrape
//    loop does (the later ones fail as duplicates for the timestamp).
//  * Values use Go's strconv.ParseFloat decimal syntax as Prometheus does:
//    `1`, `-0`, `1.`, `.5`, `+1e-3`, `NaN`, `Inf`, `+Inf`, `-Inf`, `infinity`
//    (special words case-insensitive). Hexadecimal floats and `_` separators
//    are rejected (Prometheus rejects any `p` or `_` in a value, which rules
//    out Go's hex floats). Overflow (`1e400`) is an error; underflow rounds to
//    zero, as in Go.
//  * Timestamps: text, base-10 int64 milliseconds, digits only (Prometheus's
//    lexer takes no sign); OpenMetrics, float seconds, truncated to
//    milliseconds as Prometheus does.
//  * Family membership: typed histogram `h` takes `h_bucket` (with a numeric
//    `le`), `h_sum`, `h_count`; summary `s` takes `s` (with a numeric
//    `quantile`), `s_sum`, `s_count`; other types take only their own name;
//    every other sample name is its own untyped family. Prometheus stores
//    samples whatever the TYPE says, so a histogram or summary whose samples
//    do not fit (a bare `h`, a bucket without `le`) loses its type and its
//    samples become untyped families of their own names.
//  * OpenMetrics: `# EOF` must end the body and nothing may follow it;
//    `# UNIT` lines are metadata the model does not keep; exemplars are
//    dropped, and so is a sample with a negative timestamp (Prometheus drops
//    it as out of bounds; the text format cannot carry it); a counter `c` becomes the counter family `c_total` and
//    `c_created` its own untyped family (the text model Prometheus stores);
//    gaugehistogram, stateset, info and unknown families become untyped.
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

// Hard bounds on one parse, so a hostile or broken upstream cannot make the
// daemon allocate without limit. Exceeding any of them is a parse error.
// A plain value; thread-safe to share read-only.
struct parse_limits {
  // Whole body. Matches the 16 MiB upstream body limit in the interface spec.
  std::size_t max_bytes = 16u * 1024 * 1024;
  // Labels on one sample line.
  std::size_t max_labels_per_sample = 64;
  // Metric and label names, in bytes.
  std::size_t max_name_length = 1024;
  // One label value after unescaping, in bytes.
  std::size_t max_label_value_length = 16u * 1024;
  // One HELP text after unescaping, in bytes.
  std::size_t max_help_length = 64u * 1024;
  // Samples in the whole body (a 16 MiB body holds at most ~1.4 M of them).
  std::size_t max_samples = 2'000'000;
};

// Where and why a body was rejected. `line` and `column` are 1-based; the
// column counts bytes. A plain value; thread-safe to share read-only.
struct parse_error {
  std::size_t line = 0;
  std::size_t column = 0;
  std::string reason;

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

// What Prometheus 2.x picks for a response's Content-Type: OpenMetrics for
// media type application/openmetrics-text (any parameters, any case),
// protobuf for application/vnd.google.protobuf, text for everything else, a
// missing or malformed header included.
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
