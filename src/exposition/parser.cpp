#include "cmp/exposition/parser.hpp"

#include <bit>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lexical.hpp"
#include "series_set.hpp"

namespace cmp::exposition {

std::string parse_error::message() const {
  return "line " + std::to_string(line) + ", column " + std::to_string(column) + ": " + reason;
}

void throw_exception_from_error(const parse_error& e, const boost::source_location&) {
  throw std::runtime_error("invalid exposition: " + e.message());
}

namespace {

using detail::is;

// Unwinds to parse_text() from deep inside a line; a body is rejected at its
// first error, so the cost of an exception is paid at most once per parse.
struct failure {
  const char* at;
  std::string reason;
};

// Unwinds the strict pass when it meets a shape Prometheus tolerates (a
// re-appearing family, a second HELP, a repeated series, ...): the body is
// parsed again by the repairing pass. Thrown at most once per parse.
struct needs_repair {};

namespace kind = normalization_kind;

// Quotes a piece of input for an error message, shortened so that a hostile
// line cannot blow up a log line.
std::string quote(std::string_view s) {
  constexpr std::size_t max = 64;
  std::string q = "\"";
  for (char c : s.substr(0, max)) {
    if (c == '\n') {
      q += "\\n";
    } else if (c == '\r') {
      q += "\\r";
    } else if (c == '\t') {
      q += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      static constexpr char hex[] = "0123456789abcdef";
      q += "\\x";
      q += hex[(c >> 4) & 0xf];
      q += hex[c & 0xf];
    } else {
      if (c == '"' || c == '\\') q += '\\';
      q += c;
    }
  }
  if (s.size() > max) q += "...";
  q += '"';
  return q;
}

const char* skip_blanks(const char* p, const char* eol) {
  while (p < eol && is(*p, detail::blank)) ++p;
  return p;
}

// Skips label-value bytes that need no attention (not `"`, `\`, or >= 0x80)
// eight at a time; label values are most of a Cerebras body.
const char* skip_plain_value_bytes(const char* p, const char* eol) {
  static_assert(std::endian::native == std::endian::little, "byte order of the SWAR scan");
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  const auto has_zero_byte = [](std::uint64_t v) { return (v - ones) & ~v & highs; };
  while (eol - p >= 8) {
    std::uint64_t x;
    std::memcpy(&x, p, 8);
    // Flags are exact up to the first flagged byte, which is all we use.
    const std::uint64_t m =
        has_zero_byte(x ^ (ones * '"')) | has_zero_byte(x ^ (ones * '\\')) | (x & highs);
    if (m != 0) return p + (std::countr_zero(m) >> 3);
    p += 8;
  }
  return p;
}

// If the input at `p` is the already validated name `known`, followed by a
// byte that cannot continue a name, returns its end; otherwise `p`.
const char* skip_known_name(const char* p, const char* eol, std::string_view known,
                            detail::char_class continues) {
  const std::size_t n = known.size();
  if (n == 0 || static_cast<std::size_t>(eol - p) < n || std::memcmp(p, known.data(), n) != 0) {
    return p;
  }
  if (p + n < eol && is(p[n], continues)) return p;
  return p + n;
}

const char* skip_token(const char* p, const char* eol) {
  while (p < eol && !is(*p, detail::blank)) ++p;
  return p;
}

bool has_suffix(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// How a sample name relates to the family that is currently open.
enum class membership { none, own, bucket, sum, count, bare_histogram };

membership member_of(const family& f, std::string_view name) {
  const std::string_view fam = f.name;
  if (name.size() < fam.size() || name.substr(0, fam.size()) != fam) return membership::none;
  const std::string_view rest = name.substr(fam.size());
  switch (f.type) {
    case metric_type::histogram:
      if (rest.empty()) return membership::bare_histogram;
      if (rest == "_bucket") return membership::bucket;
      if (rest == "_sum") return membership::sum;
      if (rest == "_count") return membership::count;
      return membership::none;
    case metric_type::summary:
      if (rest.empty()) return membership::own;
      if (rest == "_sum") return membership::sum;
      if (rest == "_count") return membership::count;
      return membership::none;
    default:
      return rest.empty() ? membership::own : membership::none;
  }
}

struct raw_label {
  std::string_view name;
  std::string_view value;  // still escaped
  bool escaped = false;
};

// Family names with their types; open addressing over views into the body
// (which outlives the parse): a node-based map cost an allocation per
// family, a tenth of parsing a small body. Not thread-safe.
class family_names {
 public:
  // Adds `name` as untyped; false if it was already there.
  bool insert(std::string_view name) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    slot& e = locate(slots_, name);
    if (e.used) return false;
    e = slot{name, metric_type::untyped, true};
    ++size_;
    return true;
  }

  const metric_type* find(std::string_view name) const {
    if (slots_.empty()) return nullptr;
    const slot& e = locate(slots_, name);
    return e.used ? &e.type : nullptr;
  }

  // `name` must have been inserted.
  void set_type(std::string_view name, metric_type type) { locate(slots_, name).type = type; }

 private:
  struct slot {
    std::string_view name;
    metric_type type = metric_type::untyped;
    bool used = false;
  };

  template <class Slots>
  static auto locate(Slots& slots, std::string_view name) -> decltype(slots[0]) {
    const std::size_t mask = slots.size() - 1;
    for (std::size_t i = detail::hash_bytes(name) & mask;; i = (i + 1) & mask) {
      if (!slots[i].used || slots[i].name == name) return slots[i];
    }
  }

  void grow() {
    std::vector<slot> old(slots_.empty() ? 32 : slots_.size() * 2);
    old.swap(slots_);
    for (const slot& e : old)
      if (e.used) locate(slots_, e.name) = e;
  }

  std::vector<slot> slots_;
  std::size_t size_ = 0;
};

class text_parser {
 public:
  text_parser(std::string_view body, const parse_limits& limits, body_format format,
              bool repairing)
      : body_(body),
        limits_(limits),
        line_start_(body.data()),
        openmetrics_(format == body_format::openmetrics),
        repairing_(repairing) {}

  // nullopt: the strict pass met a shape that needs the repairing pass.
  std::optional<parse_body_result> run() {
    try {
      if (body_.size() > limits_.max_bytes) {
        throw failure{body_.data(), "body of " + std::to_string(body_.size()) +
                                        " bytes exceeds the limit of " +
                                        std::to_string(limits_.max_bytes) + " bytes"};
      }
      // Cerebras bodies carry 100-110 bytes per sample (HELP and TYPE lines
      // included); the set still grows if samples are denser.
      series_.reserve(std::min(body_.size() / 96, limits_.max_samples));
      const char* p = body_.data();
      const char* const end = p + body_.size();
      while (p < end) {
        const auto* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
        // Prometheus tolerates a missing newline after the last line.
        const char* const eol = nl ? nl : end;
        line_start_ = p;
        // OpenMetrics: not even a blank line may follow `# EOF`.
        if (eof_) fail(p, "unexpected data after # EOF");
        parse_line(p, eol);
        p = eol + 1;
        ++line_no_;
      }
      if (openmetrics_ && !eof_) {
        line_start_ = end;
        fail(end, "OpenMetrics body does not end with # EOF");
      }
      if (repairing_) {
        assemble();
      } else {
        close_current();
      }
    } catch (const failure& f) {
      return parse_error{line_no_, static_cast<std::size_t>(f.at - line_start_) + 1, f.reason};
    } catch (const needs_repair&) {
      return std::nullopt;
    }
    return parsed_body{std::move(families_), std::move(normalizations_)};
  }

 private:
  [[noreturn]] void fail(const char* at, std::string reason) {
    throw failure{at, std::move(reason)};
  }

  // A '\r' is never valid where tokens are expected; name it, since a CRLF
  // body otherwise produces a puzzling "invalid value" message.
  void reject_cr(const char* p, const char* token_end) {
    if (const void* cr = std::memchr(p, '\r', token_end - p)) {
      fail(static_cast<const char*>(cr),
           "carriage return in line (CRLF line endings are not supported)");
    }
  }

  void parse_line(const char* const begin, const char* eol) {
    const char* p = skip_blanks(begin, eol);
    if (p == eol) return;
    if (*p == '#') return parse_comment(p + 1, eol);
    if (p != begin) {
      fail(begin, "blank before the metric name of a sample (Prometheus reads it as part of "
                  "the name)");
    }
    parse_sample(p, eol);
  }

  const char* scan_metric_name(const char* p, const char* eol, const char* what) {
    if (p == eol) fail(p, std::string("expected metric name ") + what);
    if (!is(*p, detail::metric_start)) {
      reject_cr(p, p + 1);
      fail(p, std::string("invalid metric name ") + what + ", got " + quote({p, 1}));
    }
    const char* q = p + 1;
    while (q < eol && is(*q, detail::metric_char)) ++q;
    if (static_cast<std::size_t>(q - p) > limits_.max_name_length) {
      fail(p, "metric name longer than " + std::to_string(limits_.max_name_length) + " bytes");
    }
    return q;
  }

  void parse_comment(const char* p, const char* eol) {
    if (openmetrics_ && eol - p == 4 && std::memcmp(p, " EOF", 4) == 0) {
      eof_ = true;
      return;
    }
    // Only "# HELP " and "# TYPE " are metadata; "#HELP", "# HELPER" and a
    // bare "# HELP" are plain comments, as in Prometheus.
    if (p == eol || !is(*p, detail::blank)) return;
    p = skip_blanks(p, eol);
    if (eol - p < 5) return;
    const bool help = std::memcmp(p, "HELP", 4) == 0;
    const bool unit = openmetrics_ && std::memcmp(p, "UNIT", 4) == 0;
    if (!help && !unit && std::memcmp(p, "TYPE", 4) != 0) return;
    if (!is(p[4], detail::blank)) return;
    const char* const keyword = help ? "HELP" : unit ? "UNIT" : "TYPE";
    p = skip_blanks(p + 4, eol);
    const char* const name_begin = p;
    const char* q = scan_metric_name(p, eol, std::string("in ").append(keyword).append(" line").c_str());
    if (q < eol && !is(*q, detail::blank)) {
      reject_cr(q, q + 1);
      fail(q, "invalid character " + quote({q, 1}) + " in metric name");
    }
    const std::string_view name(name_begin, static_cast<std::size_t>(q - name_begin));
    // The model has no unit; the name is checked above like Prometheus does.
    if (unit) return;

    if (help) {
      std::string text;
      if (q < eol) parse_help_text(q + 1, eol, text);
      if (repairing_) {
        meta_entry& m = meta_[std::string(name)];
        if (m.help) {
          note(kind::duplicate_help, line_no_);
        } else {
          m.help = std::move(text);
        }
        return;
      }
      family& f = open_family(name, name_begin);
      if (f.help) throw needs_repair{};
      f.help = std::move(text);
      return;
    }

    // Prometheus takes everything after the one blank that ends the name as
    // the type word: a second blank or a trailing one makes it invalid.
    if (q == eol) fail(q, "missing metric type in TYPE line");
    const char* const type_begin = q + 1;
    q = eol;
    const std::string_view word(type_begin, static_cast<std::size_t>(q - type_begin));
    if (word.empty()) fail(type_begin, "missing metric type in TYPE line");
    std::optional<metric_type> type;
    bool om_counter = false;
    if (word == "counter") {
      type = metric_type::counter;
      om_counter = openmetrics_;
    } else if (word == "gauge") {
      type = metric_type::gauge;
    } else if (word == "histogram") {
      type = metric_type::histogram;
    } else if (word == "summary") {
      type = metric_type::summary;
    } else if (word == (openmetrics_ ? "unknown" : "untyped")) {
      type = metric_type::untyped;
    } else if (openmetrics_ &&
               (word == "gaugehistogram" || word == "stateset" || word == "info")) {
      // Stored by Prometheus as plain series: their samples become untyped
      // families of their own names.
      type = std::nullopt;
    } else {
      reject_cr(type_begin, q);
      fail(type_begin, "unknown metric type " + quote(word));
    }
    if (repairing_) {
      // An OpenMetrics counter `c` names its samples `c_total`: that is the
      // family the text model (and Prometheus's storage) knows.
      std::string key(name);
      if (om_counter) key += "_total";
      meta_entry& m = meta_[std::move(key)];
      if (m.typed) {
        note(kind::duplicate_type, line_no_);
      } else {
        m.typed = true;
        m.type = type;
        m.type_line = line_no_;
      }
      return;
    }
    if (!type) throw needs_repair{};
    family& f = open_family(name, name_begin);
    if (current_typed_ || !pending_.empty()) throw needs_repair{};
    f.type = *type;
    current_typed_ = true;
    seen_.set_type(name, *type);
  }

  void parse_help_text(const char* p, const char* eol, std::string& out) {
    const char* const begin = p;
    const auto* bs = static_cast<const char*>(std::memchr(p, '\\', eol - p));
    if (!bs) {
      out.assign(p, eol);
    } else {
      out.reserve(static_cast<std::size_t>(eol - p));
      out.assign(p, bs);
      for (p = bs; p < eol; ++p) {
        if (*p != '\\') {
          out += *p;
          continue;
        }
        // Prometheus replaces only the escapes it knows and keeps any other
        // backslash, a trailing one included.
        const char e = p + 1 < eol ? p[1] : '\0';
        if (e == '\\') {
          out += '\\';
        } else if (e == 'n') {
          out += '\n';
        } else if (e == '"' && openmetrics_) {
          out += '"';
        } else {
          out += '\\';
          continue;
        }
        ++p;
      }
    }
    if (out.size() > limits_.max_help_length) {
      fail(begin, "HELP text longer than " + std::to_string(limits_.max_help_length) + " bytes");
    }
    if (!detail::valid_utf8(out)) fail(begin, "HELP text is not valid UTF-8");
  }

  // Returns the open family of that name, opening one if needed.
  family& open_family(std::string_view name, const char* at) {
    if (has_current_ && families_.back().name == name) return families_.back();
    (void)at;
    if (!seen_.insert(name)) throw needs_repair{};
    close_current();
    families_.emplace_back().name = name;
    has_current_ = true;
    current_typed_ = false;
    return families_.back();
  }

  void close_current() {
    // Prometheus drops metadata that no sample followed.
    if (!has_current_) return;
    if (pending_.empty()) {
      families_.pop_back();
    } else {
      std::vector<sample>& samples = families_.back().samples;
      samples.reserve(pending_.size());
      std::move(pending_.begin(), pending_.end(), std::back_inserter(samples));
      pending_.clear();
    }
    has_current_ = false;
  }

  // A sample whose own family is closed, e.g. `h_sum` after histogram `h`
  // and another family: the repairing pass merges it back.
  void repair_if_reappearing(std::string_view name) {
    const auto stem_of = [&](std::string_view suffix, bool histogram_only) {
      if (!has_suffix(name, suffix)) return;
      const std::string_view stem = name.substr(0, name.size() - suffix.size());
      const metric_type* type = seen_.find(stem);
      if (!type) return;
      if (*type == metric_type::histogram ||
          (!histogram_only && *type == metric_type::summary)) {
        throw needs_repair{};
      }
    };
    stem_of("_bucket", true);
    stem_of("_sum", false);
    stem_of("_count", false);
  }

  const char* parse_labels(const char* q, const char* eol) {
    for (;;) {
      q = skip_blanks(q, eol);
      if (q == eol) fail(q, "unterminated label set, expected '}'");
      if (*q == '}') return q + 1;
      if (!is(*q, detail::label_start)) {
        reject_cr(q, q + 1);
        fail(q, "invalid label name, got " + quote({q, 1}));
      }
      const char* const name_begin = q;
      // The previous line's label at this position is usually the same name:
      // comparing with it is cheaper than classifying every byte.
      const std::string_view hint = label_count_ < labels_.size() ? labels_[label_count_].name
                                                                  : std::string_view{};
      q = skip_known_name(q, eol, hint, detail::label_char);
      if (q == name_begin) {
        ++q;
        while (q < eol && is(*q, detail::label_char)) ++q;
      }
      const std::string_view name(name_begin, static_cast<std::size_t>(q - name_begin));
      if (name.size() > limits_.max_name_length) {
        fail(name_begin,
             "label name longer than " + std::to_string(limits_.max_name_length) + " bytes");
      }
      q = skip_blanks(q, eol);
      if (q == eol || *q != '=') {
        if (q < eol) reject_cr(q, q + 1);
        fail(q, "expected '=' after label name " + quote(name));
      }
      q = skip_blanks(q + 1, eol);
      if (q == eol || *q != '"') fail(q, "expected '\"' to start the value of label " + quote(name));
      const char* const value_begin = ++q;
      bool escaped = false;
      unsigned high = 0;
      for (;;) {
        q = skip_plain_value_bytes(q, eol);
        if (q == eol) fail(q, "unterminated value of label " + quote(name));
        const char c = *q;
        if (c == '"') break;
        if (c == '\\') {
          if (q + 1 == eol) fail(q + 1, "unterminated value of label " + quote(name));
          // Any escaped byte is taken; only \\, \" and \n mean something
          // (unescape_to), as in Prometheus.
          escaped = true;
          high |= static_cast<unsigned char>(q[1]);
          q += 2;
          continue;
        }
        high |= static_cast<unsigned char>(c);
        ++q;
      }
      const std::string_view raw(value_begin, static_cast<std::size_t>(q - value_begin));
      // Escapes are ASCII, so the raw bytes are valid UTF-8 exactly when the
      // unescaped ones are.
      if ((high & 0x80) != 0 && !detail::valid_utf8(raw)) {
        fail(value_begin, "value of label " + quote(name) + " is not valid UTF-8");
      }
      if (raw.size() > limits_.max_label_value_length) {
        // Escapes only shrink a value; measure exactly only when it matters.
        if (!escaped || unescape(raw).size() > limits_.max_label_value_length) {
          fail(value_begin, "value of label " + quote(name) + " longer than " +
                                std::to_string(limits_.max_label_value_length) + " bytes");
        }
      }
      for (const raw_label& l : current_labels()) {
        if (l.name == name) fail(name_begin, "duplicate label name " + quote(name));
      }
      if (label_count_ == limits_.max_labels_per_sample) {
        fail(name_begin, "more than " + std::to_string(limits_.max_labels_per_sample) +
                             " labels in one sample");
      }
      if (label_count_ < labels_.size()) {
        labels_[label_count_] = raw_label{name, raw, escaped};
      } else {
        labels_.push_back(raw_label{name, raw, escaped});
      }
      ++label_count_;
      q = skip_blanks(q + 1, eol);
      if (q < eol && *q == ',') {
        ++q;
        continue;
      }
      if (q < eol && *q == '}') return q + 1;
      if (q < eol) reject_cr(q, q + 1);
      fail(q, "expected ',' or '}' after value of label " + quote(name));
    }
  }

  // Writes the unescaped value (never longer than `raw`) at `out`; returns
  // its length.
  static std::size_t unescape_to(char* out, std::string_view raw) {
    char* w = out;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      char c = raw[i];
      if (c == '\\') {
        c = raw[++i];
        if (c == 'n') {
          c = '\n';
        } else if (c != '\\' && c != '"') {
          *w++ = '\\';  // an escape Prometheus does not know stays as written
        }
      }
      *w++ = c;
    }
    return static_cast<std::size_t>(w - out);
  }

  static std::string unescape(std::string_view raw) {
    std::string out(raw.size(), '\0');
    out.resize(unescape_to(out.data(), raw));
    return out;
  }

  const raw_label* find_label(std::string_view name) const {
    for (const raw_label& l : current_labels())
      if (l.name == name) return &l;
    return nullptr;
  }

  void parse_sample(const char* p, const char* eol) {
    const char* const name_begin = p;
    const char* q = skip_known_name(p, eol, previous_name_, detail::metric_char);
    if (q == p) q = scan_metric_name(p, eol, "at start of sample line");
    const std::string_view name(name_begin, static_cast<std::size_t>(q - name_begin));
    previous_name_ = name;
    const char* t = q;
    q = skip_blanks(q, eol);
    label_count_ = 0;
    const char* series_end = t;
    if (q < eol && *q == '{') {
      q = parse_labels(q + 1, eol);
      series_end = q;
      t = q;
      q = skip_blanks(q, eol);
    }
    if (q == eol) fail(q, "expected value after " + quote({name_begin, series_end}));
    if (q == t) {
      reject_cr(q, q + 1);
      fail(q, series_end == name.data() + name.size()
                  ? "invalid character " + quote({q, 1}) + " in metric name"
                  : "expected blank between labels and value");
    }

    const char* const value_begin = q;
    q = skip_token(q, eol);
    reject_cr(value_begin, q);
    const std::string_view value_text(value_begin, static_cast<std::size_t>(q - value_begin));
    double value = 0;
    switch (detail::parse_float(value_text, value)) {
      case detail::float_status::ok:
        break;
      case detail::float_status::overflow:
        fail(value_begin, "value " + quote(value_text) + " out of range");
      case detail::float_status::syntax:
        fail(value_begin, "invalid value " + quote(value_text));
    }

    std::optional<std::int64_t> timestamp;
    q = skip_blanks(q, eol);
    if (q < eol && !(openmetrics_ && *q == '#')) {
      const char* const ts_begin = q;
      q = skip_token(q, eol);
      reject_cr(ts_begin, q);
      timestamp = openmetrics_ ? parse_seconds({ts_begin, static_cast<std::size_t>(q - ts_begin)})
                               : parse_millis({ts_begin, static_cast<std::size_t>(q - ts_begin)});
      q = skip_blanks(q, eol);
    }
    if (q < eol && openmetrics_ && *q == '#') {
      skip_exemplar(q, eol);
      note(kind::exemplar_dropped, line_no_);
      q = eol;
    }
    if (q != eol) {
      reject_cr(q, eol);
      fail(q, timestamp ? "unexpected text after timestamp" : "unexpected text after value");
    }

    if (++sample_count_ > limits_.max_samples) {
      fail(name_begin, "more than " + std::to_string(limits_.max_samples) + " samples");
    }
    if (openmetrics_ && timestamp && *timestamp < 0) {
      // Prometheus drops such a sample as out of bounds and keeps the rest;
      // the text format the daemon also serves cannot carry it at all.
      note(kind::negative_timestamp_dropped, line_no_);
      return;
    }
    if (repairing_) return keep_sample(name, value, timestamp);

    // Find the sample's family.
    membership m = membership::none;
    if (has_current_) m = member_of(families_.back(), name);
    if (m == membership::bare_histogram) throw needs_repair{};
    if (m == membership::none) {
      repair_if_reappearing(name);
      open_family(name, name_begin);
      m = membership::own;
    }
    family& f = families_.back();
    if (m == membership::bucket && !has_float_label("le")) throw needs_repair{};
    if (m == membership::own && f.type == metric_type::summary && !has_float_label("quantile")) {
      throw needs_repair{};
    }

    pending_.push_back(build_sample(name, value, timestamp));
    if (!series_.insert(series_hash(name), static_cast<std::uint32_t>(families_.size() - 1),
                        static_cast<std::uint32_t>(pending_.size() - 1))) {
      throw needs_repair{};
    }
  }

  [[gnu::always_inline]] sample build_sample(std::string_view name, double value, std::optional<std::int64_t> ts) {
    std::size_t room = 0;
    for (const raw_label& l : current_labels()) room += l.name.size() + l.value.size();
    sample::builder b(name, label_count_, room);
    for (const raw_label& l : current_labels()) {
      if (l.escaped) {
        b.value_written(unescape_to(b.value_room(l.name, l.value.size()), l.value));
      } else {
        b.add(l.name, l.value);
      }
    }
    return b.finish(value, ts);
  }

  // Hashed from the input while it is still in cache. Label names get a
  // cheap hash: they rarely tell series apart, the values do.
  [[gnu::always_inline]] std::uint64_t series_hash(std::string_view name) const {
    std::uint64_t hash = detail::mix64(detail::hash_bytes(name));
    for (const raw_label& l : current_labels()) {
      std::uint64_t head = 0;
      std::memcpy(&head, l.name.data(), std::min<std::size_t>(l.name.size(), 8));
      // One value has several escaped spellings (`\q` and `\\q` both mean
      // backslash-q): hash what it means, or a repeated series goes unseen.
      const std::uint64_t value_hash =
          l.escaped ? detail::hash_bytes(unescape(l.value)) : detail::hash_bytes(l.value);
      hash += detail::mix64((head + l.name.size()) * 0x9e3779b97f4a7c15ULL ^ value_hash);
    }
    return hash;
  }

  std::int64_t parse_millis(std::string_view text) {
    const char* const b = text.data();
    const char* const e = b + text.size();
    // Prometheus's lexer takes only digits here (no sign), then ParseInt.
    std::int64_t ts = 0;
    const auto r = std::from_chars(b, e, ts);
    if (!(*b >= '0' && *b <= '9') || r.ptr != e) {
      fail(b, "invalid timestamp " + quote(text) + " (integer milliseconds expected)");
    }
    if (r.ec != std::errc{}) fail(b, "timestamp " + quote(text) + " out of range");
    return ts;
  }

  // OpenMetrics timestamps are seconds; Prometheus multiplies by 1000 and
  // truncates to int64.
  [[gnu::cold, gnu::noinline]] std::int64_t parse_seconds(std::string_view text) {
    double v = 0;
    if (detail::parse_float(text, v) != detail::float_status::ok || !std::isfinite(v)) {
      fail(text.data(), "invalid timestamp " + quote(text) + " (seconds expected)");
    }
    const double ms = v * 1000;
    if (!(ms > -9.2e18 && ms < 9.2e18)) fail(text.data(), "timestamp " + quote(text) + " out of range");
    return static_cast<std::int64_t>(ms);
  }

  // `# {labels} value [timestamp]` after an OpenMetrics sample: checked for
  // shape (Prometheus refuses a malformed exemplar), then dropped: the model
  // and the text format have no place for it.
  [[gnu::cold, gnu::noinline]] void skip_exemplar(const char* q, const char* eol) {
    ++q;
    if (q == eol || *q != ' ') fail(q, "expected ' ' after '#' of an exemplar");
    q = skip_blanks(q, eol);
    if (q == eol || *q != '{') fail(q, "expected '{' to start the labels of an exemplar");
    // The exemplar's labels go through the same lexer, in the buffer that
    // still holds the sample's own: keep those (exemplars are rare).
    const std::vector<raw_label> sample_labels(labels_.begin(), labels_.begin() + label_count_);
    label_count_ = 0;
    q = parse_labels(q + 1, eol);
    std::copy(sample_labels.begin(), sample_labels.end(), labels_.begin());
    label_count_ = sample_labels.size();
    const char* t = skip_blanks(q, eol);
    if (t == q || t == eol) fail(t, "expected value of an exemplar");
    const char* v = t;
    t = skip_token(t, eol);
    double ignored = 0;
    if (detail::parse_float({v, static_cast<std::size_t>(t - v)}, ignored) !=
        detail::float_status::ok) {
      fail(v, "invalid exemplar value " + quote({v, static_cast<std::size_t>(t - v)}));
    }
    t = skip_blanks(t, eol);
    if (t < eol) {
      const char* ts = t;
      t = skip_token(t, eol);
      parse_seconds({ts, static_cast<std::size_t>(t - ts)});
      t = skip_blanks(t, eol);
      if (t != eol) fail(t, "unexpected text after exemplar");
    }
  }

  // ---- repairing pass: samples in body order, metadata per name, then
  // assemble() groups them into families.

  [[gnu::cold, gnu::noinline]] void note(std::string_view k, std::size_t line) {
    for (normalization& n : normalizations_) {
      if (n.kind == k) {
        ++n.count;
        return;
      }
    }
    normalizations_.push_back({k, line, 1});
  }

  [[gnu::cold, gnu::noinline]] void keep_sample(std::string_view name, double value, std::optional<std::int64_t> timestamp) {
    all_.push_back(build_sample(name, value, timestamp));
    if (!flat_series_.insert(series_hash(name), 0, static_cast<std::uint32_t>(all_.size() - 1))) {
      // Prometheus's scrape loop keeps the first sample of a series: the
      // later ones fail as duplicates for the same timestamp.
      all_.pop_back();
      note(kind::duplicate_series_dropped, line_no_);
      return;
    }
    all_lines_.push_back(static_cast<std::uint32_t>(line_no_));
  }

  struct meta_entry {
    bool typed = false;
    std::optional<metric_type> type;  // nullopt: typed, but as nothing the model keeps
    std::size_t type_line = 0;
    std::optional<std::string> help;
  };

  const meta_entry* meta(std::string_view name) const {
    const auto it = meta_.find(std::string(name));
    return it == meta_.end() ? nullptr : &it->second;
  }

  std::optional<metric_type> declared(std::string_view name) const {
    const meta_entry* m = meta(name);
    return m && m->typed ? m->type : std::nullopt;
  }

  static bool float_label(const sample& s, std::string_view label) {
    const auto v = s.labels().find(label);
    double ignored;
    return v && detail::parse_float(*v, ignored) == detail::float_status::ok;
  }

  // The family `s` belongs to, given the declared types minus `dropped`;
  // `fits` is false when the declared type cannot hold it.
  std::string_view home_of(const sample& s, const std::vector<std::string_view>& dropped,
                           bool& fits) const {
    fits = true;
    const std::string_view n = s.name();
    const auto typed_as = [&](std::string_view stem) -> std::optional<metric_type> {
      if (std::find(dropped.begin(), dropped.end(), stem) != dropped.end()) return std::nullopt;
      return declared(stem);
    };
    const auto stem_for = [&](std::string_view suffix) -> std::string_view {
      return has_suffix(n, suffix) ? n.substr(0, n.size() - suffix.size()) : std::string_view{};
    };
    if (auto stem = stem_for("_bucket"); !stem.empty() && typed_as(stem) == metric_type::histogram) {
      fits = float_label(s, "le");
      return stem;
    }
    for (std::string_view suffix : {std::string_view("_sum"), std::string_view("_count")}) {
      if (auto stem = stem_for(suffix); !stem.empty()) {
        const auto t = typed_as(stem);
        if (t == metric_type::histogram || t == metric_type::summary) return stem;
      }
    }
    const auto own = typed_as(n);
    if (own == metric_type::summary) fits = float_label(s, "quantile");
    if (own == metric_type::histogram) fits = false;
    return n;
  }

  [[gnu::cold, gnu::noinline]] void assemble() {
    // A histogram or summary whose samples do not fit loses its type: the
    // samples are stored by Prometheus all the same.
    std::vector<std::string_view> dropped;
    for (std::size_t i = 0; i < all_.size(); ++i) {
      bool fits = true;
      const std::string_view home = home_of(all_[i], dropped, fits);
      if (!fits && std::find(dropped.begin(), dropped.end(), home) == dropped.end()) {
        dropped.push_back(home);
        note(kind::type_dropped, all_lines_[i]);
        i = static_cast<std::size_t>(-1);  // earlier homes may change: start over
      }
    }
    std::unordered_map<std::string_view, std::size_t> index;
    std::vector<std::uint32_t> family_of(all_.size());
    std::vector<std::size_t> sizes;
    std::size_t previous = static_cast<std::size_t>(-1);
    for (std::size_t i = 0; i < all_.size(); ++i) {
      bool fits = true;
      const std::string_view home = home_of(all_[i], dropped, fits);
      auto [it, added] = index.try_emplace(home, families_.size());
      if (added) {
        family& f = families_.emplace_back();
        f.name = home;
        const bool type_dropped = std::find(dropped.begin(), dropped.end(), home) != dropped.end();
        if (const meta_entry* m = meta(home)) {
          if (m->typed && m->type && !type_dropped) {
            f.type = *m->type;
            if (m->type_line > all_lines_[i]) note(kind::type_after_samples, m->type_line);
          }
          f.help = m->help;
        }
        // OpenMetrics documents counter `c` once; its family here is `c_total`.
        if (!f.help && openmetrics_ && has_suffix(home, "_total")) {
          if (const meta_entry* m = meta(home.substr(0, home.size() - 6))) f.help = m->help;
        }
        sizes.push_back(0);
      } else if (it->second != previous) {
        note(kind::family_merged, all_lines_[i]);
      }
      previous = it->second;
      family_of[i] = static_cast<std::uint32_t>(it->second);
      ++sizes[it->second];
    }
    for (std::size_t f = 0; f < families_.size(); ++f) families_[f].samples.reserve(sizes[f]);
    for (std::size_t i = 0; i < all_.size(); ++i) {
      families_[family_of[i]].samples.push_back(std::move(all_[i]));
    }
    // family_merged is found while grouping, after kinds noted while
    // lexing: report kinds in the order of their first line.
    std::stable_sort(normalizations_.begin(), normalizations_.end(),
                     [](const normalization& a, const normalization& b) {
                       return a.first_line < b.first_line;
                     });
  }

  bool has_float_label(std::string_view label_name) const {
    const raw_label* l = find_label(label_name);
    if (!l) return false;
    double ignored;
    const std::string value = l->escaped ? unescape(l->value) : std::string(l->value);
    return detail::parse_float(value, ignored) == detail::float_status::ok;
  }

  std::string_view body_;
  const parse_limits& limits_;
  const char* line_start_;
  std::size_t line_no_ = 1;
  family_list families_;
  // Samples of the open family; moved into it, exactly sized, when it closes
  // (growing each family's vector in place cost a malloc_consolidate per
  // doubling and left up to half of it unused in the snapshot).
  std::vector<sample> pending_;
  struct resolver {
    const text_parser* p;
    const sample& operator()(std::uint32_t f, std::uint32_t i) const {
      return p->has_current_ && f + 1 == p->families_.size() ? p->pending_[i]
                                                               : p->families_[f].samples[i];
    }
  };
  detail::series_set<resolver> series_{resolver{this}};
  // Every family name opened so far, with its type, to notice re-appearing
  // families.
  family_names seen_;
  bool has_current_ = false;  // families_.back() is open
  bool current_typed_ = false;
  std::size_t sample_count_ = 0;
  // Labels of the current sample line (the first label_count_), then of
  // earlier lines, which serve as name hints; views into the body.
  std::vector<raw_label> labels_;
  std::size_t label_count_ = 0;
  std::string_view previous_name_;  // of the previous sample line

  const bool openmetrics_;
  const bool repairing_;
  bool eof_ = false;  // `# EOF` seen (OpenMetrics)
  std::vector<normalization> normalizations_;
  // Repairing pass: every kept sample in body order, with its line.
  std::vector<sample> all_;
  std::vector<std::uint32_t> all_lines_;
  struct flat_resolver {
    const text_parser* p;
    const sample& operator()(std::uint32_t, std::uint32_t i) const { return p->all_[i]; }
  };
  detail::series_set<flat_resolver> flat_series_{flat_resolver{this}};
  std::unordered_map<std::string, meta_entry> meta_;

  std::span<const raw_label> current_labels() const { return {labels_.data(), label_count_}; }
};

}  // namespace

body_format format_for_content_type(std::string_view content_type) {
  // Go's mime.ParseMediaType: the media type is what precedes `;`, trimmed,
  // compared case-insensitively.
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  if (detail::iequals_ascii(media, "application/openmetrics-text")) return body_format::openmetrics;
  if (detail::iequals_ascii(media, "application/vnd.google.protobuf")) return body_format::protobuf;
  return body_format::text;
}

parse_body_result parse_body(std::string_view body, body_format format,
                             const parse_limits& limits) {
  // OpenMetrics bodies always take the repairing pass: their counters and
  // exemplars need it, and they are rare.
  if (format == body_format::protobuf) {
    return parse_error{1, 1, "protobuf exposition (application/vnd.google.protobuf) is not supported"};
  }
  if (format == body_format::text) {
    if (auto r = text_parser(body, limits, format, false).run()) return std::move(*r);
  }
  return *text_parser(body, limits, format, true).run();
}

parse_result parse_text(std::string_view body, const parse_limits& limits) {
  auto r = parse_body(body, body_format::text, limits);
  if (!r) return r.error();
  return std::move(r->families);
}

}  // namespace cmp::exposition
