#pragma once
// Serializers for the two formats /metrics serves. Both append to `out`, so a
// caller renders several family lists (every upstream, then the daemon's own
// metrics) into one buffer without copies. Pure functions, safe to call
// concurrently on distinct output strings.
//
// Common rules:
//  * The model is trusted: names are written as they are (the parser and the
//    transforms only produce valid ones). Families without samples are
//    skipped. Label values and HELP text are escaped here and nowhere else.
//  * Values: shortest text that parses back to the same double; integral
//    values below 2^53 as plain integers (`5`, not `5.0` or `5e+00`); `NaN`,
//    `+Inf`, `-Inf`.

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "cmp/exposition/model.hpp"

namespace cmp::exposition {

// The two formats /metrics serves; the one name for them in every module
// (writers, negotiation, snapshot views, self-metrics).
enum class format : unsigned char { text, openmetrics };

// Content-Type values of what the writers produce.
inline constexpr const char* text_content_type = "text/plain; version=0.0.4; charset=utf-8";
inline constexpr const char* openmetrics_content_type =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

// Prometheus text format 0.0.4: `# HELP` (if present), `# TYPE` (always,
// `untyped` included), then the samples; timestamps in integer milliseconds.
// The output is accepted by parse_text() and by `promtool check metrics`.
void write_text(const family_list& families, std::string& out);

// OpenMetrics 1.0.0, WITHOUT the final `# EOF` line: the caller appends
// `# EOF\n` once after the last part. Mapping from the text-format model:
//  * untyped -> `unknown`.
//  * A counter named `x_total` is written as family `x` (HELP/TYPE) with its
//    samples still named `x_total`, as OpenMetrics requires. A counter that
//    cannot be a valid OpenMetrics counter keeps its name and is typed
//    `unknown` (what client_golang's expfmt does for counters without
//    `_total`): its name lacks `_total`, a sample has another name, a value is
//    negative or NaN, or `x` is also the name of another family in the list.
//  * Gauges whose names end in `_total` (the Cerebras API sends such) stay
//    gauges under their full name; OpenMetrics reserves `_total` only for
//    counter samples, and Prometheus's and the reference (Python) OpenMetrics
//    parsers accept them.
//  * Timestamps become seconds: `1700000000` or `1700000000.123` (exact
//    decimal; whole-second timestamps are exactly representable for
//    Prometheus's float conversion, millisecond fractions may be off by one
//    millisecond there).
//  * Histogram and summary families are written as they are; that they are
//    well-formed for OpenMetrics (a `+Inf` bucket, `_count` present) is the
//    producer's responsibility.
//  * Name clashes with families rendered by other calls into the same output
//    are not detected.
void write_openmetrics(const family_list& families, std::string& out);

// One family as write_text/write_openmetrics write it (HELP if present,
// TYPE, the samples), announced under `name` and `type` (a counter's stem
// and `counter`, or its own name and `unknown`, in OpenMetrics): for callers
// that render family by family and record where each one lies (the
// snapshots). Writes nothing for a family without samples.
void write_family(const family& fam, std::string_view name, metric_type type, format f, std::string& out);

// Writes families a sample at a time, without building a model: the daemon's
// own metrics, rendered at every scrape. Same rules as the writers above
// (escaping, numbers, `untyped`/`unknown`, OpenMetrics counter family names),
// so the self-metrics can never drift from the upstream series' format.
// The caller writes each family's samples right after its header(), with
// names and label names that are valid; a counter announced in OpenMetrics
// must be named `x_total`. Appends to `out`; one stream per buffer, not
// thread-safe.
class family_stream {
 public:
  family_stream(std::string& out, format f) noexcept : out_(out), format_(f) {}

  // `# HELP` and `# TYPE`. In OpenMetrics a counter `x_total` is announced
  // as family `x`.
  void header(std::string_view name, metric_type type, std::string_view help);
  void sample(std::string_view name, std::initializer_list<label_ref> labels, double value);
  // Counts: exact beyond 2^53, where a double would round.
  void sample(std::string_view name, std::initializer_list<label_ref> labels, std::uint64_t value);

 private:
  void labels(std::initializer_list<label_ref> labels);

  std::string& out_;
  format format_;
};

// The OpenMetrics counter rule of write_openmetrics() (above), for callers
// that assemble OpenMetrics bodies from pieces (the snapshot views), so the
// rule exists once. A counter `x_total` is announced as counter `x` when its
// own samples allow it (om_counter_samples_ok) and no family of the same
// output is named `x`; otherwise as `unknown` under its own name.
[[nodiscard]] bool om_counter_samples_ok(const family& f) noexcept;
class om_counter_names {
 public:
  // `all_names` lists every family name of the output; called at most once,
  // the first time a stem must be checked.
  explicit om_counter_names(std::function<void(std::unordered_set<std::string_view>&)> all_names)
      : all_names_(std::move(all_names)) {}
  // The name and type to announce the counter family `name` with.
  [[nodiscard]] std::pair<std::string_view, metric_type> announce(std::string_view name, bool samples_ok);

 private:
  std::function<void(std::unordered_set<std::string_view>&)> all_names_;
  std::unordered_set<std::string_view> names_;
  bool built_ = false;
};

// The TYPE word of `type` in `f`: `untyped` is `unknown` in OpenMetrics.
[[nodiscard]] std::string_view type_word(metric_type type, format f) noexcept;

// A family's `# HELP` (when `escaped_help` is set: text already escaped for
// `f`, e.g. cut from a body these writers wrote) and `# TYPE` lines, for
// callers that assemble families from pieces of rendered bodies. `name` is
// the family name as it should appear (a counter's stem in OpenMetrics).
void write_header(std::string& out, std::string_view name, metric_type type,
                  const std::string_view* escaped_help, format f);

// The `le` label value of a histogram bound, in the form OpenMetrics
// requires and Prometheus writes: `1.0`, `0.25`, `+Inf`. Returns a view
// into `buf`.
[[nodiscard]] std::string_view le_text(double bound, char (&buf)[32]);

}  // namespace cmp::exposition
