#pragma once
// Character classes, number syntax and UTF-8 checks shared by the parser, the
// writers and the transforms. Internal to the exposition module.

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>
#include <system_error>

namespace cmp::exposition::detail {

enum char_class : std::uint8_t {
  metric_start = 1,  // [a-zA-Z_:]
  metric_char = 2,   // [a-zA-Z0-9_:]
  label_start = 4,   // [a-zA-Z_]
  label_char = 8,    // [a-zA-Z0-9_]
  blank = 16,        // [ \t]
};

inline constexpr std::array<std::uint8_t, 256> char_classes = [] {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    std::uint8_t v = 0;
    if (alpha || c == ':') v |= metric_start | metric_char;
    if (digit) v |= metric_char | label_char;
    if (alpha) v |= label_start | label_char;
    if (c == ' ' || c == '\t') v |= blank;
    t[static_cast<std::size_t>(c)] = v;
  }
  return t;
}();

inline bool is(char c, char_class k) {
  return (char_classes[static_cast<unsigned char>(c)] & k) != 0;
}

inline bool valid_metric_name(std::string_view s) {
  if (s.empty() || !is(s[0], metric_start)) return false;
  for (char c : s.substr(1))
    if (!is(c, metric_char)) return false;
  return true;
}

inline bool valid_label_name(std::string_view s) {
  if (s.empty() || !is(s[0], label_start)) return false;
  for (char c : s.substr(1))
    if (!is(c, label_char)) return false;
  return true;
}

// Full UTF-8 validation (no overlongs, no surrogates, <= U+10FFFF), as Go's
// utf8.Valid which Prometheus applies to label values and HELP text.
inline bool valid_utf8(const unsigned char* p, const unsigned char* end) {
  while (p < end) {
    const unsigned c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) <= n) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (std::size_t i = 2; i <= n; ++i)
      if (p[i] < 0x80 || p[i] > 0xBF) return false;
    p += n + 1;
  }
  return true;
}

inline bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  return valid_utf8(p, p + s.size());
}

enum class float_status { ok, syntax, overflow };

inline bool iequals_ascii(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

// Go strconv.ParseFloat decimal syntax minus what Prometheus forbids (`p`,
// `_`, hence hex): [+-]?(digits[.digits*]|.digits)([eE][+-]?digits)?, or NaN,
// [+-]?Inf, [+-]?Infinity, case-insensitive.
inline float_status parse_float(std::string_view s, double& out) {
  if (s.empty()) return float_status::syntax;
  const char* p = s.data();
  const char* const end = p + s.size();
  bool negative = false;
  if (*p == '+' || *p == '-') {
    negative = *p == '-';
    ++p;
  }
  if (p == end) return float_status::syntax;
  if (!(*p >= '0' && *p <= '9') && *p != '.') {
    const std::string_view word(p, static_cast<std::size_t>(end - p));
    if (iequals_ascii(word, "inf") || iequals_ascii(word, "infinity")) {
      out = negative ? -HUGE_VAL : HUGE_VAL;
      return float_status::ok;
    }
    // Go accepts no sign on NaN.
    if (p == s.data() && iequals_ascii(word, "nan")) {
      out = std::numeric_limits<double>::quiet_NaN();
      return float_status::ok;
    }
    return float_status::syntax;
  }
  // Fast path for what exporters write (`1.0`, `0.8894`, `3862085.0`): at
  // most 15 digits and no exponent; the mantissa is then an exact integer
  // and one IEEE division by an exact power of ten rounds correctly.
  static constexpr double powers_of_ten[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                             1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                             1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  {
    const char* q = p;
    std::uint64_t m = 0;
    int n = 0, frac = 0;
    while (q < end && static_cast<unsigned>(*q - '0') < 10) {
      m = m * 10 + static_cast<unsigned>(*q++ - '0');
      ++n;
    }
    if (q < end && *q == '.') {
      ++q;
      while (q < end && static_cast<unsigned>(*q - '0') < 10) {
        m = m * 10 + static_cast<unsigned>(*q++ - '0');
        ++n;
        ++frac;
      }
    }
    if (q == end && n > 0 && n <= 15) {
      const double v = static_cast<double>(m) / powers_of_ten[frac];
      out = negative ? -v : v;
      return float_status::ok;
    }
  }
  const char* const mantissa = p;
  // Digits before the first non-zero digit do not count towards magnitude.
  std::int64_t int_digits = 0;  // significant integer digits
  std::int64_t frac_zeros = 0;  // zeros after '.' before the first non-zero digit
  std::int64_t frac_digits = 0;
  std::uint64_t digits = 0;     // the mantissa as an integer, while it fits
  int significant = 0;
  bool seen_nonzero = false, any_digit = false;
  while (p < end && *p >= '0' && *p <= '9') {
    if (*p != '0') seen_nonzero = true;
    if (seen_nonzero) {
      ++int_digits;
      ++significant;
    }
    if (significant <= 19) digits = digits * 10 + static_cast<unsigned>(*p - '0');
    any_digit = true;
    ++p;
  }
  if (p < end && *p == '.') {
    ++p;
    while (p < end && *p >= '0' && *p <= '9') {
      if (*p != '0') seen_nonzero = true;
      if (seen_nonzero) ++significant;
      if (!seen_nonzero) ++frac_zeros;
      if (significant <= 19) digits = digits * 10 + static_cast<unsigned>(*p - '0');
      ++frac_digits;
      any_digit = true;
      ++p;
    }
  }
  if (!any_digit) return float_status::syntax;
  std::int64_t exponent = 0;
  if (p < end && (*p == 'e' || *p == 'E')) {
    ++p;
    bool exp_negative = false;
    if (p < end && (*p == '+' || *p == '-')) {
      exp_negative = *p == '-';
      ++p;
    }
    if (p == end) return float_status::syntax;
    while (p < end && *p >= '0' && *p <= '9') {
      if (exponent < 1'000'000'000) exponent = exponent * 10 + (*p - '0');
      ++p;
    }
    if (exp_negative) exponent = -exponent;
  }
  if (p != end) return float_status::syntax;
  // Clinger's fast path again, now with an exponent.
  const std::int64_t scale = exponent - frac_digits;
  if (significant <= 15 && scale >= -22 && scale <= 22) {
    double v = static_cast<double>(digits);
    v = scale < 0 ? v / powers_of_ten[-scale] : v * powers_of_ten[scale];
    out = negative ? -v : v;
    return float_status::ok;
  }
  const char* const first = negative ? mantissa - 1 : mantissa;
  double v = 0;
  const auto r = std::from_chars(first, end, v, std::chars_format::general);
  if (r.ec == std::errc::result_out_of_range) {
    // from_chars reports both directions; Go (and Prometheus) fail only on
    // overflow and round underflow to zero.
    const std::int64_t magnitude = int_digits > 0 ? int_digits - 1 + exponent
                                                  : exponent - frac_zeros - 1;
    if (magnitude > 0) return float_status::overflow;
    out = negative ? -0.0 : 0.0;
    return float_status::ok;
  }
  if (r.ec != std::errc{} || r.ptr != end) return float_status::syntax;
  out = v;
  return float_status::ok;
}

// Shortest text that parses back to the same double. Integers below 2^53 are
// written as plain integers (std::to_chars alone would write 100000 as
// "1e+05"). NaN, +Inf and -Inf use the spelling both formats require.
// Needs 32 bytes at `w`; returns the end of what was written.
inline char* format_float(char* w, double v) {
  if (std::isnan(v)) {
    std::memcpy(w, "NaN", 3);
    return w + 3;
  }
  if (std::isinf(v)) {
    std::memcpy(w, v > 0 ? "+Inf" : "-Inf", 4);
    return w + 4;
  }
  if (v == 0) {
    if (std::signbit(v)) {
      std::memcpy(w, "-0", 2);
      return w + 2;
    }
    *w = '0';
    return w + 1;
  }
  if (v >= -9007199254740992.0 && v <= 9007199254740992.0) {
    const auto i = static_cast<std::int64_t>(v);
    if (static_cast<double>(i) == v) return std::to_chars(w, w + 32, i).ptr;
  }
  return std::to_chars(w, w + 32, v).ptr;
}

}  // namespace cmp::exposition::detail
