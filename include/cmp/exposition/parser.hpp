#pragma once
// Strict parser for the Prometheus text exposition format 0.0.4.
//
// Sans-I/O: a complete body goes in, a family_list or the first error comes
// out. "Strict" means any malformed input is an error (the caller keeps its
// previous snapshot), never a silently skipped line. The grammar follows what
// the Prometheus server's own scrape parser (model/textparse/promparse.go)
// accepts, narrowed where that parser is looser than the format's
// documentation. Decisions that matter to callers:
//
//  * Lines end in `\n`. A missing final newline is accepted (Prometheus appends
//    one before lexing). `\r` is rejected wherever it is not plain text (so a
//    CRLF body fails at its first sample or TYPE line, as in Prometheus).
//  * Blank lines, lines of spaces/tabs, leading blanks and trailing blanks are
//    accepted. Blanks are also accepted around `{`, `=`, `,` and `}`, and one
//    trailing comma in a label set.
//  * `# HELP name text`: exactly one blank separates name and text, the rest
//    of the line is the text; only `\\` and `\n` escapes are allowed.
//    `# TYPE name type` with type counter|gauge|histogram|summary|untyped
//    (lower case). `# HELP`/`# TYPE` followed directly by the end of the line,
//    and every other `#` line, is a comment and ignored.
//  * A family's HELP and TYPE appear at most once, TYPE before its first
//    sample; a family's lines are contiguous (a family that re-appears after
//    another one started is an error); families with no samples are dropped.
//  * A sample line is `name[{labels}] value [timestamp]` with at least one
//    blank before the value and before the timestamp. Label values allow only
//    the escapes `\\`, `\"` and `\n`, and must be UTF-8 (so must HELP text).
//    Duplicate label names in a sample and duplicate series (same name and
//    label set, in any label order) are errors.
//  * Values use Go's strconv.ParseFloat decimal syntax as Prometheus does:
//    `1`, `-0`, `1.`, `.5`, `+1e-3`, `NaN`, `Inf`, `+Inf`, `-Inf`, `infinity`
//    (special words case-insensitive). Hexadecimal floats and `_` separators
//    are rejected (Prometheus rejects any `p` or `_` in a value, which rules
//    out Go's hex floats). Overflow (`1e400`) is an error; underflow rounds to
//    zero, as in Go.
//  * Timestamps are optional base-10 int64 milliseconds; a leading `-` is
//    accepted (the Prometheus scrape parser itself only takes digits).
//  * Without a TYPE line every distinct sample name is its own untyped family.
//    Typed histogram `h` takes samples `h_bucket` (needs `le`), `h_sum`,
//    `h_count`; summary `s` takes `s` (needs `quantile`), `s_sum`, `s_count`;
//    other types take only their own name.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

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

// Parses one complete exposition body. Pure function: no I/O, no global state,
// safe to call from any number of threads at once.
parse_result parse_text(std::string_view body, const parse_limits& limits = {});

}  // namespace cmp::exposition
