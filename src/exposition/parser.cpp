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
  std::string_view limit;  // the limit refused for, if any (static storage)
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

// Go's bytes.HasSuffix: `s` may be the suffix itself.
bool has_suffix_or_is(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
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
        label_limits_((limits.label_limit | limits.label_name_length_limit | limits.label_value_length_limit) != 0),
        line_start_(body.data()),
        openmetrics_(format == body_format::openmetrics),
        repairing_(repairing) {}

  // nullopt: the strict pass met a shape that needs the repairing pass.
  std::optional<parse_body_result> run() {
    try {
      if (body_.size() > limits_.max_bytes) {
        throw failure{body_.data(), "body of " + std::to_string(body_.size()) +
                                        " bytes exceeds the limit of " +
                                        std::to_string(limits_.max_bytes) + " bytes", {}};
      }
      // Cerebras bodies carry 100-110 bytes per sample (HELP and TYPE lines
      // included); the set still grows if samples are denser.
      series_.reserve(body_.size() / 96);
      const char* p = body_.data();
      const char* const end = end_;
      while (p < end) {
        // Prometheus tolerates a missing newline after the last line.
        const char* const eol = line_end(p);
        line_start_ = p;
        // OpenMetrics: not even a blank line may follow `# EOF`.
        if (eof_) fail(p, "unexpected data after # EOF");
        p = parse_line(p, eol) + 1;
        if (stop_) break;
        ++line_no_;
      }
      if (openmetrics_ && !eof_) {
        line_start_ = end;
        fail(end, "OpenMetrics body does not end with # EOF");
      }
      // Prometheus reads on past the limit and refuses the scrape at the
      // end, unless the body fails to parse first.
      if (limits_.sample_limit != 0 && sample_count_ > limits_.sample_limit) {
        line_start_ = end;
        fail(end, "sample_limit exceeded: " + std::to_string(sample_count_) + " samples, limit " +
                      std::to_string(limits_.sample_limit), "sample_limit");
      }
      if (repairing_) {
        assemble();
      } else {
        close_current();
      }
    } catch (const failure& f) {
      // A label value that spans lines may put the error before line_start_.
      const std::size_t column = f.at >= line_start_ ? static_cast<std::size_t>(f.at - line_start_) + 1 : 1;
      return parse_error{line_no_, column, f.reason, f.limit};
    } catch (const needs_repair&) {
      return std::nullopt;
    }
    return parsed_body{std::move(families_), std::move(normalizations_)};
  }

 private:
  [[noreturn]] void fail(const char* at, std::string reason, std::string_view limit = {}) {
    throw failure{at, std::move(reason), limit};
  }

  // A '\r' is never valid where tokens are expected; name it, since a CRLF
  // body otherwise produces a puzzling "invalid value" message.
  void reject_cr(const char* p, const char* token_end) {
    if (const void* cr = std::memchr(p, '\r', token_end - p)) {
      fail(static_cast<const char*>(cr),
           "carriage return in line (CRLF line endings are not supported)");
    }
  }

  // Parses the line [begin, eol) and returns where it ends: later than eol
  // when a text-format label value holds a raw newline (promlex takes any
  // byte but `"` and `\` in a label value, `\n` included).
  const char* parse_line(const char* const begin, const char* eol) {
    if (openmetrics_) {
      if (begin == eol) fail(begin, "blank line (OpenMetrics has none)");
      if (*begin == '#') {
        parse_om_comment(begin, eol);
        return eol;
      }
      return parse_sample<true>(begin, eol);
    }
    const char* p = skip_blanks(begin, eol);
    if (p == eol) return eol;
    // promlex: a NUL where a token of a new line would start is the end of
    // the input; Prometheus takes what came before it.
    if (*p == '\0') {
      stop_ = true;
      return eol;
    }
    if (*p == '#') {
      parse_comment(p + 1, eol);
      return eol;
    }
    if (p != begin) {
      fail(begin, "blank before the metric name of a sample (Prometheus reads it as part of "
                  "the name)");
    }
    return parse_sample<false>(p, eol);
  }

  const char* scan_metric_name(const char* p, const char* eol, const char* what) {
    if (p == eol) fail(p, std::string("expected metric name ") + what);
    if (!is(*p, detail::metric_start)) {
      reject_cr(p, p + 1);
      fail(p, std::string("invalid metric name ") + what + ", got " + quote({p, 1}));
    }
    const char* q = p + 1;
    while (q < eol && is(*q, detail::metric_char)) ++q;
    return q;
  }

  // Text format, after the `#`.
  void parse_comment(const char* p, const char* eol) {
    if (p == eol) return;
    if (!is(*p, detail::blank)) {
      // A plain comment ("#HELP ..." included). promlex reads it up to the
      // newline byte by byte, and a NUL there ends the input.
      if (std::memchr(p, '\0', static_cast<std::size_t>(eol - p))) stop_ = true;
      return;
    }
    p = skip_blanks(p, eol);
    if (p < eol && *p == '\0') {
      stop_ = true;
      return;
    }
    // Only "# HELP " and "# TYPE " are metadata; "# HELPER" and a bare
    // "# HELP" are plain comments, as in Prometheus.
    // promlex reads the keyword and the blanks after it skipping NULs.
    const bool help = eol - p >= 1 && *p == 'H';
    p = skip_keyword(p, eol, help ? "HELP" : "TYPE");
    if (p == nullptr) return;
    const char* const name_begin = p;
    const char* q = scan_metric_name(p, eol, help ? "in HELP line" : "in TYPE line");
    const std::string_view name(name_begin, static_cast<std::size_t>(q - name_begin));
    // promlex ends the name at the first byte that cannot continue it and
    // drops one byte, whatever it is (`# TYPE a-counter` types `a`), before
    // the text; blanks alone are no text. A NUL there ends the input before
    // the line does: an error.
    const char* text = q;
    if (q < eol) {
      if (*q == '\0') fail(q, "NUL after the metric name of a " + std::string(help ? "HELP" : "TYPE") + " line");
      text = skip_blanks(q, eol) == eol ? eol : q + 1;
    }
    if (help) return on_help(name, name_begin, text, eol);
    if (text == eol) fail(text, "missing metric type in TYPE line");
    on_type(name, name_begin, text, eol);
  }

  // After `# `: `keyword` and at least one blank, NULs anywhere in them
  // ignored; returns where the name starts, nullptr if it is no keyword line.
  static const char* skip_keyword(const char* p, const char* eol, std::string_view keyword) {
    for (const char k : keyword) {
      if (p == eol || *p != k) return nullptr;
      ++p;
      while (p < eol && *p == '\0') ++p;
    }
    if (p == eol || !is(*p, detail::blank)) return nullptr;
    return skip_blanks_and_nuls(p, eol);
  }

  static const char* skip_blanks_and_nuls(const char* p, const char* eol) {
    while (p < eol && (is(*p, detail::blank) || *p == '\0')) ++p;
    return p;
  }

  // OpenMetrics, from the `#`: `# HELP`, `# TYPE`, `# UNIT` or `# EOF`, one
  // space between tokens (openmetricslex has no other comment and no other
  // blank).
  void parse_om_comment(const char* p, const char* eol) {
    const char* const hash = p;
    if (eol - p < 2 || p[1] != ' ') fail(hash, "expected `# ` (OpenMetrics has no other comment)");
    p += 2;
    if (eol - p >= 3 && std::memcmp(p, "EOF", 3) == 0) {
      if (p + 3 != eol) fail(p + 3, "unexpected data after # EOF");
      eof_ = true;
      return;
    }
    if (eol - p < 5 || p[4] != ' ') fail(p, "expected HELP, TYPE, UNIT or EOF after `# `");
    const std::string_view keyword(p, 4);
    if (keyword != "HELP" && keyword != "TYPE" && keyword != "UNIT") {
      fail(p, "expected HELP, TYPE, UNIT or EOF after `# `");
    }
    p += 5;
    const char* const name_begin = p;
    const char* q = scan_metric_name(p, eol, "in a metadata line");
    const std::string_view name(name_begin, static_cast<std::size_t>(q - name_begin));
    if (q == eol || *q != ' ') fail(q, "expected ' ' and text after the metric name");
    const char* const text = q + 1;
    if (keyword == "HELP") return on_help(name, name_begin, text, eol);
    if (keyword == "TYPE") return on_type(name, name_begin, text, eol);
    // The model has no unit. Prometheus checks that a unit is the name's suffix.
    const std::string_view unit(text, static_cast<std::size_t>(eol - text));
    if (!unit.empty() && !(name.size() > unit.size() && name.substr(name.size() - unit.size()) == unit &&
                           name[name.size() - unit.size() - 1] == '_')) {
      fail(text, "unit " + quote(unit) + " is not a suffix of metric " + quote(name));
    }
  }

  void on_help(std::string_view name, const char* name_begin, const char* text_begin, const char* eol) {
    std::string text;
    // A text of blanks only (`# HELP a-  `) is kept empty: written back as
    // `# HELP a   ` it would read as empty (promlex), so the canonical body
    // says what it means.
    if (skip_blanks(text_begin, eol) < eol) parse_help_text(text_begin, eol, text);
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
  }

  // Everything after the separator is the type word: a second blank or a
  // trailing one makes it invalid, as in Prometheus.
  void on_type(std::string_view name, const char* name_begin, const char* type_begin, const char* eol) {
    const std::string_view word(type_begin, static_cast<std::size_t>(eol - type_begin));
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
      reject_cr(type_begin, eol);
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

  // Parses a label set after its `{`; returns the position after its `}`.
  // Text: blanks around tokens, commas optional between labels, one
  // trailing comma, and a label value may hold a raw newline (`eol` then
  // moves to the end of the line the value ends on). OpenMetrics: none of
  // these. Then, as Prometheus's scrape loop: a label whose name has an
  // empty value anywhere in the set is dropped (labels.Builder), and what
  // is left must have unique names (the head refuses the sample otherwise).
  // `series` is false for an exemplar's labels, which Prometheus stores
  // apart and never refuses a scrape for.
  template <bool om>
  const char* parse_labels(const char* q, const char*& line_end_out, bool series = true) {
    // A local copy: through the reference, every store the loop makes could
    // alias it, and it would be reloaded at every byte.
    const char* eol = line_end_out;
    bool empty_value = false;
    bool hinted = true;  // every name is the previous label set's at its place
    bool after_comma = false;
    for (;;) {
      if (!om) q = skip_blanks(q, eol);
      if (q == eol) fail(q, "unterminated label set, expected '}'");
      if (*q == '}') {
        if (om && after_comma) fail(q, "expected label name after ','");
        ++q;
        break;
      }
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
        hinted = false;
        ++q;
        while (q < eol && is(*q, detail::label_char)) ++q;
      }
      const std::string_view name(name_begin, static_cast<std::size_t>(q - name_begin));
      if (!om) q = skip_blanks(q, eol);
      if (q == eol || *q != '=') {
        if (q < eol) reject_cr(q, q + 1);
        fail(q, "expected '=' after label name " + quote(name));
      }
      ++q;
      // The lexers skip NULs while they read a label value's tokens: inside
      // the blanks before it (text) and right after its closing quote.
      if (!om && q < eol && is(*q, detail::blank)) q = skip_blanks_and_nuls(q, eol);
      if (q == eol || *q != '"') fail(q, "expected '\"' to start the value of label " + quote(name));
      bool escaped = false;
      const std::string_view raw = scan_label_value(++q, eol, om, name, escaped);
      if (series && name[0] == '_' && name == "__name__") check_name_label(name_begin, raw, escaped);
      empty_value |= raw.empty();
      // Field by field: a whole raw_label built on the stack and copied in
      // stalled on store forwarding (a third of this function's time).
      if (label_count_ == labels_.size()) labels_.emplace_back();
      raw_label& stored = labels_[label_count_];
      stored.name = name;
      stored.value = raw;
      stored.escaped = escaped;
      ++label_count_;
      ++q;
      if (!om) q = skip_blanks(q, eol);
      after_comma = q < eol && *q == ',';
      if (after_comma) {
        ++q;
        continue;
      }
      // Text: the loop takes `}`, or a label name with no comma before it.
      if (om && (q == eol || *q != '}')) {
        fail(q, "expected ',' or '}' after value of label " + quote(name));
      }
    }
    line_end_out = eol;
    if (!series) {
      unique_count_ = 0;  // the exemplar's labels overwrote the hints
      return q;
    }
    if (empty_value) drop_empty_labels();
    // The names of the previous label set, in the same places and as many,
    // were unique: these are too (the usual body repeats one set of names).
    if (label_count_ > 1 && !(hinted && !empty_value && label_count_ == unique_count_)) {
      reject_duplicate_labels();
    }
    unique_count_ = duplicate_at_ ? 0 : label_count_;
    return q;
  }

  // A label value from after its opening quote: returns its raw (escaped)
  // bytes, checked to be UTF-8, with `q` on the last byte of its token (the
  // closing quote, or the NULs the lexer skips after it); `eol` moves on
  // when a text value spans lines.
  [[gnu::always_inline]] std::string_view scan_label_value(const char*& q, const char*& eol, bool om,
                                                           std::string_view name, bool& escaped) {
    const char* const value_begin = q;
    unsigned high = 0;
    for (;;) {
      q = skip_plain_value_bytes(q, eol);
      if (q == eol) {
        if (om || eol == end_) fail(q, "unterminated value of label " + quote(name));
        q = next_physical_line(eol);
        eol = line_end(q);
        continue;
      }
      const char c = *q;
      if (c == '"') break;
      if (c == '\\') {
        // A backslash escapes any byte but a newline; only \\, \" and \n
        // mean something (unescape_to), as in Prometheus.
        if (q + 1 == eol) fail(q + 1, "unterminated value of label " + quote(name));
        escaped = true;
        high |= static_cast<unsigned char>(q[1]);
        q += 2;
        continue;
      }
      high |= static_cast<unsigned char>(c);
      ++q;
    }
    // NULs right after the closing quote are skipped by the lexer, which
    // then cuts the value one byte before where it stopped: the value is
    // what is quoted, the quote, and all but one of the NULs.
    const char* value_end = q;
    while (q + 1 < eol && q[1] == '\0') ++q;
    if (q != value_end) value_end = q;
    const std::string_view raw(value_begin, static_cast<std::size_t>(value_end - value_begin));
    // Escapes are ASCII, so the raw bytes are valid UTF-8 exactly when the
    // unescaped ones are.
    if ((high & 0x80) != 0 && !detail::valid_utf8(raw)) {
      fail(value_begin, "value of label " + quote(name) + " is not valid UTF-8");
    }
    return raw;
  }

  const char* next_physical_line(const char* eol) {
    ++line_no_;
    line_start_ = eol + 1;
    return eol + 1;
  }

  const char* line_end(const char* p) const {
    const auto* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end_ - p)));
    return nl ? nl : end_;
  }

  // Prometheus stores no empty label: labels.Builder deletes every label of
  // a name that has an empty value, duplicates of that name included.
  [[gnu::cold, gnu::noinline]] void drop_empty_labels() {
    std::vector<std::string_view> names;
    for (const raw_label& l : current_labels())
      if (l.value.empty()) names.push_back(l.name);
    std::sort(names.begin(), names.end());
    std::size_t kept = 0;
    for (std::size_t i = 0; i < label_count_; ++i) {
      if (!std::binary_search(names.begin(), names.end(), labels_[i].name)) labels_[kept++] = labels_[i];
    }
    label_count_ = kept;
  }

  // A `__name__` label: an empty one deletes the sample's name (the label
  // builder drops empty labels by name), an invalid one fails Prometheus's
  // label check; either refuses the scrape. A valid one is a second name,
  // a duplicate label (defer_duplicate).
  [[gnu::cold, gnu::noinline]] void check_name_label(const char* at, std::string_view raw, bool escaped) {
    const std::string value = escaped ? unescape(raw) : std::string(raw);
    if (value.empty()) fail(at, "empty __name__ label (Prometheus drops the metric name with it)");
    if (!detail::valid_metric_name(value)) fail(at, "label __name__ is not a valid metric name");
    defer_duplicate(at, "label __name__ names the metric a second time");
  }

  // The head refuses a sample whose label names repeat, but only once it
  // is in bounds: one that Prometheus drops as out of bounds first (see
  // out_of_bounds) is no error. Decided in parse_sample, after the timestamp.
  void defer_duplicate(const char* at, std::string reason) {
    if (duplicate_at_) return;
    duplicate_at_ = at;
    duplicate_reason_ = std::move(reason);
  }

  void reject_duplicate_labels() {
    const auto dup = [this](std::string_view name) {
      defer_duplicate(name.data(), "duplicate label name " + quote(name));
    };
    if (label_count_ <= 16) {
      for (std::size_t i = 1; i < label_count_; ++i)
        for (std::size_t j = 0; j < i; ++j)
          if (labels_[i].name == labels_[j].name) return dup(labels_[i].name);
      return;
    }
    // Many labels (there is no default limit): sorting keeps it n log n.
    std::vector<std::string_view> names;
    names.reserve(label_count_);
    for (const raw_label& l : current_labels()) names.push_back(l.name);
    std::sort(names.begin(), names.end());
    const auto it = std::adjacent_find(names.begin(), names.end());
    if (it != names.end()) dup(*it);
  }

  // The per-upstream limits, as Prometheus's verifyLabelLimits counts them:
  // the metric name is the label `__name__`.
  [[gnu::cold, gnu::noinline]] void check_label_limits(const char* at, std::string_view name) {
    if (limits_.label_limit != 0 && label_count_ + 1 > limits_.label_limit) {
      fail(at, "label_limit exceeded: " + std::to_string(label_count_ + 1) + " labels (the name included), limit " +
                   std::to_string(limits_.label_limit), "label_limit");
    }
    if (const std::size_t max = limits_.label_name_length_limit; max != 0) {
      if (std::string_view("__name__").size() > max) {
        fail(at, "label_name_length_limit exceeded: __name__ is longer than " + std::to_string(max), "label_name_length_limit");
      }
      for (const raw_label& l : current_labels()) {
        if (l.name.size() > max) {
          fail(l.name.data(), "label_name_length_limit exceeded: label name " + quote(l.name) + " is longer than " +
                                  std::to_string(max), "label_name_length_limit");
        }
      }
    }
    if (const std::size_t max = limits_.label_value_length_limit; max != 0) {
      if (name.size() > max) {
        fail(at, "label_value_length_limit exceeded: the metric name is longer than " + std::to_string(max),
             "label_value_length_limit");
      }
      for (const raw_label& l : current_labels()) {
        if (l.value.size() > max && (!l.escaped || unescape(l.value).size() > max)) {
          fail(l.value.data(), "label_value_length_limit exceeded: value of label " + quote(l.name) +
                                   " is longer than " + std::to_string(max), "label_value_length_limit");
        }
      }
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

  // Returns the end of the line (later than `eol` if a label value spans lines).
  // One instance per grammar: the text one carries no OpenMetrics branch.
  template <bool om>
  const char* parse_sample(const char* p, const char* eol) {
    const char* const name_begin = p;
    const char* q = skip_known_name(p, eol, previous_name_, detail::metric_char);
    if (q == p) q = scan_metric_name(p, eol, "at start of sample line");
    const std::string_view name(name_begin, static_cast<std::size_t>(q - name_begin));
    previous_name_ = name;
    label_count_ = 0;
    duplicate_at_ = nullptr;
    const char* series_end = q;
    if constexpr (om) {
      if (q < eol && *q == '{') series_end = q = parse_labels<om>(q + 1, eol);
      if (q == eol || *q != ' ') fail(q, "expected ' ' and a value after " + quote({name_begin, series_end}));
      ++q;
      if (q == eol || *q == ' ') fail(q, "expected value after " + quote({name_begin, series_end}));
    } else {
      const char* t = skip_blanks(q, eol);
      if (t < eol && *t == '{') {
        series_end = q = parse_labels<om>(t + 1, eol);
        t = skip_blanks(q, eol);
      }
      // promlex: the value may follow the name or the `}` with no blank
      // (`a-1`, `a{b="c"}2`): the name ends where a name byte cannot follow.
      if (t == eol) fail(t, "expected value after " + quote({name_begin, series_end}));
      if (*t == '{') fail(t, "expected value after " + quote({name_begin, series_end}) + ", got '{'");
      q = t;
    }

    const char* const value_begin = q;
    if constexpr (om) {
      q = skip_om_token(q, eol);
    } else {
      q = skip_token(q, eol);
    }
    reject_cr(value_begin, q);
    const double value = parse_value({value_begin, static_cast<std::size_t>(q - value_begin)});

    std::optional<std::int64_t> timestamp;
    if constexpr (om) {
      q = parse_om_tail(name, q, eol, timestamp);
    } else {
      q = skip_blanks(q, eol);
      if (q < eol) {
        const char* const ts_begin = q;
        q = skip_token(q, eol);
        reject_cr(ts_begin, q);
        timestamp = parse_millis({ts_begin, static_cast<std::size_t>(q - ts_begin)});
        q = skip_blanks(q, eol);
      }
      if (q != eol) {
        reject_cr(q, eol);
        fail(q, timestamp ? "unexpected text after timestamp" : "unexpected text after value");
      }
    }

    if (label_limits_) check_label_limits(name_begin, name);
    ++sample_count_;
    if (duplicate_at_) {
      if (!timestamp || !out_of_bounds(*timestamp)) fail(duplicate_at_, std::move(duplicate_reason_));
      note(kind::out_of_bounds_dropped, line_no_);
      return eol;
    }
    if (om && timestamp && *timestamp < 0) {
      // Prometheus drops such a sample as out of bounds and keeps the rest;
      // the text format the daemon also serves cannot carry it at all.
      note(kind::negative_timestamp_dropped, line_no_);
      return eol;
    }
    if (repairing_) {
      keep_sample(name, value, timestamp);
    } else {
      place_sample(name, name_begin, value, timestamp);
    }
    return eol;
  }

  // The strict pass: the sample into the open family, or a new one.
  [[gnu::always_inline]] void place_sample(std::string_view name, const char* name_begin, double value,
                                           std::optional<std::int64_t> timestamp) {
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
      // Another sample of a series seen before: a duplicate, or a later
      // point of it (explicit timestamps); the repairing pass tells which.
      throw needs_repair{};
    }
  }

  // Whether Prometheus, scraping at limits_.scrape_time_ms, drops a sample
  // with this timestamp as out of bounds: more than 10 minutes ahead
  // (scrape.go's maxAheadTime) or older than its head takes (its max time
  // minus half the 2 h block: an hour before a live head's newest sample).
  // False without a scrape time: the sample is then taken to be in bounds.
  bool out_of_bounds(std::int64_t ts) const {
    const std::int64_t now = limits_.scrape_time_ms;
    if (now <= 0) return false;
    constexpr std::int64_t ahead = 10 * 60 * 1000, behind = 60 * 60 * 1000;
    return ts > now + ahead || ts < now - behind;
  }

  [[gnu::always_inline]] double parse_value(std::string_view text) {
    double value = 0;
    switch (detail::parse_float(text, value)) {
      case detail::float_status::ok:
        break;
      case detail::float_status::overflow:
        fail(text.data(), "value " + quote(text) + " out of range");
      case detail::float_status::syntax:
        fail(text.data(), "invalid value " + quote(text));
    }
    return value;
  }

  // openmetricslex's tokens after a blank: anything up to a space or the newline.
  static const char* skip_om_token(const char* p, const char* eol) {
    const auto* sp = static_cast<const char*>(std::memchr(p, ' ', static_cast<std::size_t>(eol - p)));
    return sp ? sp : eol;
  }

  static bool at_exemplar(const char* q, const char* eol) {
    return eol - q >= 4 && std::memcmp(q, " # {", 4) == 0;
  }

  // After an OpenMetrics sample's value: ` timestamp`, ` # {exemplar}`,
  // both, or nothing, exactly one space before each.
  [[gnu::cold, gnu::noinline]] const char* parse_om_tail(std::string_view name, const char* q, const char* eol,
                                                         std::optional<std::int64_t>& timestamp) {
    if (q < eol && !at_exemplar(q, eol)) {
      ++q;  // the space skip_om_token stopped at
      if (q == eol || *q == ' ') fail(q, "expected timestamp after ' '");
      const char* const ts_begin = q;
      q = skip_om_token(q, eol);
      timestamp = parse_seconds({ts_begin, static_cast<std::size_t>(q - ts_begin)});
    }
    if (q < eol) {
      if (!at_exemplar(q, eol)) fail(q, timestamp ? "unexpected text after timestamp" : "unexpected text after value");
      parse_exemplar(name, q + 4, eol);
      note(kind::exemplar_dropped, line_no_);
    }
    return eol;
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
  // converts to int64 as Go does on amd64: a value out of range becomes
  // INT64_MIN, a sample out of bounds that the scrape drops, not an error.
  [[gnu::cold, gnu::noinline]] std::int64_t parse_seconds(std::string_view text) {
    double v = 0;
    if (detail::parse_float(text, v) != detail::float_status::ok || !std::isfinite(v)) {
      fail(text.data(), "invalid timestamp " + quote(text) + " (seconds expected)");
    }
    const double ms = v * 1000;
    if (!(ms >= -9223372036854775808.0 && ms < 9223372036854775808.0)) {
      return std::numeric_limits<std::int64_t>::min();
    }
    return static_cast<std::int64_t>(ms);
  }

  // `{labels} value[ timestamp]` of an exemplar, after its ` # {`: checked
  // for shape as Prometheus checks it (only `_total` and `_bucket` samples
  // may have one), then dropped: the model and the text format have no
  // place for it.
  [[gnu::cold, gnu::noinline]] void parse_exemplar(std::string_view name, const char* q, const char* eol) {
    if (!has_suffix_or_is(name, "_total") && !has_suffix_or_is(name, "_bucket")) {
      fail(q, "metric " + quote(name) + " does not support exemplars");
    }
    // The exemplar's labels go through the same lexer, in the buffer that
    // still holds the sample's own: keep those (exemplars are rare).
    const std::vector<raw_label> sample_labels(labels_.begin(), labels_.begin() + label_count_);
    label_count_ = 0;
    q = parse_labels<true>(q, eol, false);
    std::copy(sample_labels.begin(), sample_labels.end(), labels_.begin());
    label_count_ = sample_labels.size();
    if (q == eol || *q != ' ' || q + 1 == eol || q[1] == ' ') fail(q, "expected ' ' and the value of an exemplar");
    const char* v = q + 1;
    q = skip_om_token(v, eol);
    parse_value({v, static_cast<std::size_t>(q - v)});
    if (q < eol) {
      if (q + 1 == eol || q[1] == ' ') fail(q, "expected exemplar timestamp after ' '");
      const char* const ts = q + 1;
      q = skip_om_token(ts, eol);
      parse_seconds({ts, static_cast<std::size_t>(q - ts)});
      if (q != eol) fail(q, "unexpected text after exemplar");
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
    const auto index = static_cast<std::uint32_t>(all_.size() - 1);
    const std::uint32_t first = flat_series_.insert_or_find(series_hash(name), 0, index).second;
    if (first != index && !later_point(first, timestamp)) {
      // The scrape keeps the first sample of a series for one timestamp.
      all_.pop_back();
      note(kind::duplicate_series_dropped, line_no_);
      return;
    }
    all_lines_.push_back(static_cast<std::uint32_t>(line_no_));
  }

  // Whether another sample of the series whose first sample is all_[first]
  // is kept (detail::series_points) rather than dropped as a duplicate.
  bool later_point(std::uint32_t first, std::optional<std::int64_t> timestamp) {
    return points_.try_emplace(first, all_[first].timestamp_ms).first->second.keep(timestamp);
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
  const char* const end_ = body_.data() + body_.size();
  const parse_limits& limits_;
  const bool label_limits_;  // any of the three label limits set
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
  bool stop_ = false;  // text: a NUL ended the input (promlex's tEOF)
  // A repeated label name in the current sample (defer_duplicate).
  const char* duplicate_at_ = nullptr;
  // How many labels the last label set had, its names checked unique; 0:
  // unknown. Names that repeat it place by place need no check.
  std::size_t unique_count_ = 0;
  std::string duplicate_reason_;
  std::vector<normalization> normalizations_;
  // Repairing pass: every kept sample in body order, with its line.
  std::vector<sample> all_;
  std::vector<std::uint32_t> all_lines_;
  struct flat_resolver {
    const text_parser* p;
    const sample& operator()(std::uint32_t, std::uint32_t i) const { return p->all_[i]; }
  };
  detail::series_set<flat_resolver> flat_series_{flat_resolver{this}};
  // Series with more than one sample, by the index of their first in all_.
  std::unordered_map<std::uint32_t, detail::series_points> points_;
  std::unordered_map<std::string, meta_entry> meta_;

  std::span<const raw_label> current_labels() const { return {labels_.data(), label_count_}; }
};

}  // namespace

namespace {

// Go's mime.ParseMediaType, as far as deciding whether it fails goes (then
// Prometheus falls back to the text parser) and which media type it returns.

// Length of the unicode.IsSpace rune at the start of `s`, 0 if none.
std::size_t go_space(std::string_view s) {
  if (s.empty()) return 0;
  const auto b = [&](std::size_t i) { return i < s.size() ? static_cast<unsigned char>(s[i]) : 0u; };
  const unsigned c = b(0);
  if (c == ' ' || (c >= '\t' && c <= '\r')) return 1;
  if (c == 0xc2 && (b(1) == 0x85 || b(1) == 0xa0)) return 2;               // U+0085, U+00A0
  if (c == 0xe1 && b(1) == 0x9a && b(2) == 0x80) return 3;                 // U+1680
  if (c == 0xe2 && b(1) == 0x80 && (b(2) <= 0x8a || b(2) == 0xa8 || b(2) == 0xa9 || b(2) == 0xaf) &&
      b(2) >= 0x80) {
    return 3;                                                              // U+2000-200A, 2028, 2029, 202F
  }
  if (c == 0xe2 && b(1) == 0x81 && b(2) == 0x9f) return 3;                 // U+205F
  if (c == 0xe3 && b(1) == 0x80 && b(2) == 0x80) return 3;                 // U+3000
  return 0;
}

std::string_view trim_left_space(std::string_view s) {
  while (const std::size_t n = go_space(s)) s.remove_prefix(n);
  return s;
}

std::string_view trim_space(std::string_view s) {
  s = trim_left_space(s);
  for (bool more = true; more && !s.empty();) {
    more = false;
    for (std::size_t n = 1; n <= 3 && n <= s.size(); ++n) {
      if (go_space(s.substr(s.size() - n)) == n) {
        s.remove_suffix(n);
        more = true;
        break;
      }
    }
  }
  return s;
}

bool is_token_char(char c) {
  return c > 0x20 && c < 0x7f && std::string_view(R"(()<>@,;:\"/[]?=)").find(c) == std::string_view::npos;
}

// consumeToken: the longest prefix of token characters, and the rest.
std::pair<std::string_view, std::string_view> consume_token(std::string_view v) {
  std::size_t n = 0;
  while (n < v.size() && is_token_char(v[n])) ++n;
  return {v.substr(0, n), v.substr(n)};
}

// consumeValue: a token or a quoted string; nullopt where Go returns ("", v).
std::optional<std::pair<std::string, std::string_view>> consume_value(std::string_view v) {
  if (v.empty()) return std::nullopt;
  if (v[0] != '"') {
    const auto [token, rest] = consume_token(v);
    if (token.empty()) return std::nullopt;
    return std::pair{std::string(token), rest};
  }
  std::string value;
  for (std::size_t i = 1; i < v.size(); ++i) {
    const char c = v[i];
    if (c == '"') return std::pair{std::move(value), v.substr(i + 1)};
    if (c == '\\' && i + 1 < v.size() && std::string_view(R"(()<>@,;:\"/[]?=)").find(v[i + 1]) != std::string_view::npos) {
      value += v[++i];
      continue;
    }
    if (c == '\r' || c == '\n') return std::nullopt;
    value += c;
  }
  return std::nullopt;  // no closing quote
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// The media type, or nullopt where mime.ParseMediaType returns an error.
std::optional<std::string> parse_media_type(std::string_view v) {
  const std::string_view base = v.substr(0, v.find(';'));
  const std::string media(trim_space(ascii_lower(base)));
  // checkMediaTypeDisposition: token, or token/token.
  auto [type, rest] = consume_token(media);
  if (type.empty()) return std::nullopt;
  if (!rest.empty()) {
    if (rest[0] != '/') return std::nullopt;
    const auto [subtype, after] = consume_token(rest.substr(1));
    if (subtype.empty() || !after.empty()) return std::nullopt;
  }
  std::unordered_map<std::string, std::string> params;
  v.remove_prefix(base.size());
  while (!v.empty()) {
    v = trim_left_space(v);
    if (v.empty()) break;
    // consumeMediaParam
    std::string_view r = v;
    bool ok = !r.empty() && r[0] == ';';
    std::string key;
    std::optional<std::pair<std::string, std::string_view>> value;
    if (ok) {
      r = trim_left_space(r.substr(1));
      const auto [k, after_key] = consume_token(r);
      key = ascii_lower(k);
      r = trim_left_space(after_key);
      ok = !key.empty() && !r.empty() && r[0] == '=';
      if (ok) {
        value = consume_value(trim_left_space(r.substr(1)));
        ok = value.has_value();
      }
    }
    if (!ok) {
      if (trim_space(v) == ";") break;  // a trailing semicolon is fine
      return std::nullopt;
    }
    const auto [it, added] = params.try_emplace(key, value->first);
    if (!added && it->second != value->first) return std::nullopt;  // a repeated parameter
    v = value->second;
  }
  return media;
}

}  // namespace

body_format format_for_content_type(std::string_view content_type) {
  const auto media = parse_media_type(content_type);
  if (!media) return body_format::text;
  if (*media == "application/openmetrics-text") return body_format::openmetrics;
  if (*media == "application/vnd.google.protobuf") return body_format::protobuf;
  return body_format::text;
}

parse_body_result parse_body(std::string_view body, body_format format,
                             const parse_limits& limits) {
  // OpenMetrics bodies always take the repairing pass: their counters and
  // exemplars need it, and they are rare.
  if (format == body_format::protobuf) {
    return parse_error{1, 1, "protobuf exposition (application/vnd.google.protobuf) is not supported", {}};
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
