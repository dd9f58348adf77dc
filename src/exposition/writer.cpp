#include "cmp/exposition/writer.hpp"

#include <cmath>
#include <cstring>
#include <string_view>
#include <unordered_set>

#include "lexical.hpp"

namespace cmp::exposition {
namespace {

// Enough for a value or a timestamp and their separators.
constexpr std::size_t number_room = 64;

// The writers size the output once per family from this upper bound and then
// write through a raw pointer: appending piecewise to std::string costs a
// capacity check per piece, which halves throughput.
std::size_t sample_bound(const sample& s) {
  std::size_t n = s.name().size() + 2 + 2 * number_room;
  for (const label_ref l : s.labels()) n += l.name.size() + 4 + 2 * l.value.size();
  return n;
}

char* put(char* w, std::string_view s) {
  std::memcpy(w, s.data(), s.size());
  return w + s.size();
}

// Escapes `\`, newline and, if `quote` is set, `"`; label values always
// escape `"`, HELP text does only in OpenMetrics.
// Runs without an escape are copied whole: most text has none, and a scan
// that only reads is several times faster than a copy byte by byte.
char* put_escaped(char* w, std::string_view s, bool quote) {
  const char* p = s.data();
  const char* const end = p + s.size();
  while (p != end) {
    const char* run = p;
    while (p != end && *p != '\\' && *p != '\n' && !(quote && *p == '"')) ++p;
    std::memcpy(w, run, static_cast<std::size_t>(p - run));
    w += p - run;
    if (p == end) break;
    *w++ = '\\';
    *w++ = *p == '\n' ? 'n' : *p;
    ++p;
  }
  return w;
}

char* put_int(char* w, std::int64_t v) { return std::to_chars(w, w + 24, v).ptr; }

// OpenMetrics timestamps are seconds; written as exact decimals of the
// millisecond value, without going through a double.
char* put_seconds(char* w, std::int64_t ms) {
  if (ms < 0) *w++ = '-';
  // Negate in unsigned arithmetic: INT64_MIN has no positive counterpart.
  const std::uint64_t mag = ms < 0 ? 0 - static_cast<std::uint64_t>(ms) : static_cast<std::uint64_t>(ms);
  w = std::to_chars(w, w + 24, mag / 1000).ptr;
  if (const std::uint64_t frac = mag % 1000; frac != 0) {
    *w++ = '.';
    *w++ = static_cast<char>('0' + frac / 100);
    *w++ = static_cast<char>('0' + frac / 10 % 10);
    *w++ = static_cast<char>('0' + frac % 10);
  }
  return w;
}

char* put_sample(char* w, const sample& s, format f) {
  w = put(w, s.name());
  if (const label_list labels = s.labels(); !labels.empty()) {
    *w++ = '{';
    bool first = true;
    for (const label_ref l : labels) {
      if (!first) *w++ = ',';
      first = false;
      w = put(w, l.name);
      *w++ = '=';
      *w++ = '"';
      w = put_escaped(w, l.value, true);
      *w++ = '"';
    }
    *w++ = '}';
  }
  *w++ = ' ';
  w = detail::format_float(w, s.value);
  if (s.timestamp_ms) {
    *w++ = ' ';
    w = f == format::text ? put_int(w, *s.timestamp_ms) : put_seconds(w, *s.timestamp_ms);
  }
  *w++ = '\n';
  return w;
}

}  // namespace

std::string_view type_word(metric_type t, format f) noexcept {
  switch (t) {
    case metric_type::counter:
      return "counter";
    case metric_type::gauge:
      return "gauge";
    case metric_type::histogram:
      return "histogram";
    case metric_type::summary:
      return "summary";
    case metric_type::untyped:
      break;
  }
  return f == format::text ? "untyped" : "unknown";
}

void write_header(std::string& out, std::string_view name, metric_type type,
                  const std::string_view* escaped_help, format f) {
  if (escaped_help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += *escaped_help;
    out += '\n';
  }
  out += "# TYPE ";
  out += name;
  out += ' ';
  out += type_word(type, f);
  out += '\n';
}

void write_family(const family& fam, std::string_view name, metric_type type, format f,
                  std::string& out) {
  if (fam.samples.empty()) return;
  std::size_t bound = 2 * (name.size() + 16) + 32;
  if (fam.help) bound += 2 * fam.help->size();
  for (const sample& s : fam.samples) bound += sample_bound(s);
  const std::size_t start = out.size();
  out.resize(start + bound);
  char* const base = out.data();
  char* w = base + start;
  if (fam.help) {
    w = put(w, "# HELP ");
    w = put(w, name);
    *w++ = ' ';
    w = put_escaped(w, *fam.help, f == format::openmetrics);
    *w++ = '\n';
  }
  w = put(w, "# TYPE ");
  w = put(w, name);
  *w++ = ' ';
  w = put(w, type_word(type, f));
  *w++ = '\n';
  for (const sample& s : fam.samples) w = put_sample(w, s, f);
  out.resize(static_cast<std::size_t>(w - base));
}

namespace {

constexpr std::string_view total_suffix = "_total";

bool has_total_suffix(std::string_view name) {
  return name.size() > total_suffix.size() &&
         name.substr(name.size() - total_suffix.size()) == total_suffix;
}


}  // namespace

void family_stream::header(std::string_view name, metric_type type, std::string_view help) {
  if (format_ == format::openmetrics && type == metric_type::counter && has_total_suffix(name))
    name.remove_suffix(total_suffix.size());
  const std::size_t start = out_.size();
  out_.resize(start + 2 * (name.size() + 16) + 2 * help.size() + 32);
  char* w = out_.data() + start;
  w = put(w, "# HELP ");
  w = put(w, name);
  *w++ = ' ';
  w = put_escaped(w, help, format_ == format::openmetrics);
  w = put(w, "\n# TYPE ");
  w = put(w, name);
  *w++ = ' ';
  w = put(w, type_word(type, format_));
  *w++ = '\n';
  out_.resize(static_cast<std::size_t>(w - out_.data()));
}

void family_stream::labels(std::initializer_list<label_ref> labels) {
  if (labels.size() == 0) return;
  std::size_t bound = 2;
  for (const label_ref& l : labels) bound += l.name.size() + 4 + 2 * l.value.size();
  const std::size_t start = out_.size();
  out_.resize(start + bound);
  char* w = out_.data() + start;
  *w++ = '{';
  bool first = true;
  for (const label_ref& l : labels) {
    if (!first) *w++ = ',';
    first = false;
    w = put(w, l.name);
    *w++ = '=';
    *w++ = '"';
    w = put_escaped(w, l.value, true);
    *w++ = '"';
  }
  *w++ = '}';
  out_.resize(static_cast<std::size_t>(w - out_.data()));
}

void family_stream::sample(std::string_view name, std::initializer_list<label_ref> l, double value) {
  out_ += name;
  labels(l);
  char buf[number_room];
  char* w = buf;
  *w++ = ' ';
  w = detail::format_float(w, value);
  *w++ = '\n';
  out_.append(buf, w);
}

void family_stream::sample(std::string_view name, std::initializer_list<label_ref> l, std::uint64_t value) {
  out_ += name;
  labels(l);
  char buf[number_room];
  char* w = buf;
  *w++ = ' ';
  w = std::to_chars(w, w + 24, value).ptr;
  *w++ = '\n';
  out_.append(buf, w);
}

std::string_view le_text(double bound, char (&buf)[32]) {
  char* w = detail::format_float(buf, bound);
  const std::string_view digits(buf, static_cast<std::size_t>(w - buf));
  // An integral bound gets its `.0`: OpenMetrics's canonical `le` form.
  if (std::isfinite(bound) && digits.find_first_of(".e") == std::string_view::npos) {
    *w++ = '.';
    *w++ = '0';
  }
  return {buf, static_cast<std::size_t>(w - buf)};
}

void write_text(const family_list& families, std::string& out) {
  for (const family& fam : families) {
    if (fam.samples.empty()) continue;
    write_family(fam, fam.name, fam.type, format::text, out);
  }
}

bool om_counter_samples_ok(const family& f) noexcept {
  if (!has_total_suffix(f.name)) return false;
  for (const sample& s : f.samples) {
    if (s.name() != f.name || !(s.value >= 0)) return false;
  }
  return true;
}

std::pair<std::string_view, metric_type> om_counter_names::announce(std::string_view name, bool samples_ok) {
  if (!samples_ok) return {name, metric_type::untyped};
  const std::string_view stem = name.substr(0, name.size() - total_suffix.size());
  if (!built_) {
    all_names_(names_);
    built_ = true;
  }
  if (names_.count(stem) != 0) return {name, metric_type::untyped};
  return {stem, metric_type::counter};
}

void write_openmetrics(const family_list& families, std::string& out) {
  om_counter_names counters([&](std::unordered_set<std::string_view>& names) {
    for (const family& other : families) names.insert(other.name);
  });
  for (const family& fam : families) {
    if (fam.samples.empty()) continue;
    if (fam.type != metric_type::counter) {
      write_family(fam, fam.name, fam.type, format::openmetrics, out);
      continue;
    }
    const auto [name, type] = counters.announce(fam.name, om_counter_samples_ok(fam));
    write_family(fam, name, type, format::openmetrics, out);
  }
}

}  // namespace cmp::exposition
