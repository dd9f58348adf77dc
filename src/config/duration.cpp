// Prometheus duration notation, as prometheus/common model.ParseDuration reads
// it: `[Ny][Nw][Nd][Nh][Nm][Ns][Nms]`, units in that order, each at most once,
// a year being 365d and a week 7d; `0` alone is zero. Unlike old Prometheus
// releases, the empty string and values that overflow are rejected.

#include <array>
#include <cstdint>
#include <limits>

#include "cmp/config/config.hpp"

namespace cmp::config {

namespace {

struct unit {
  std::string_view suffix;
  std::int64_t ms;
};

// Descending: the order in which units must appear and are formatted.
constexpr std::array<unit, 7> units{{
    {"y", 365LL * 24 * 60 * 60 * 1000},
    {"w", 7LL * 24 * 60 * 60 * 1000},
    {"d", 24LL * 60 * 60 * 1000},
    {"h", 60LL * 60 * 1000},
    {"m", 60LL * 1000},
    {"s", 1000},
    {"ms", 1},
}};

}  // namespace

std::optional<duration> parse_duration(std::string_view text) {
  if (text == "0") return duration::zero();
  if (text.empty()) return std::nullopt;
  constexpr std::int64_t max = std::numeric_limits<duration::rep>::max();
  std::int64_t total = 0;
  std::size_t next_unit = 0;  // index into `units` the next component may use
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t digits_begin = i;
    std::int64_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      const int digit = text[i] - '0';
      if (n > (max - digit) / 10) return std::nullopt;
      n = n * 10 + digit;
      ++i;
    }
    if (i == digits_begin) return std::nullopt;
    // Longest suffix first so that `ms` is not read as `m` followed by `s`.
    std::string_view suffix;
    if (text.substr(i, 2) == "ms") {
      suffix = "ms";
    } else if (i < text.size()) {
      suffix = text.substr(i, 1);
    } else {
      return std::nullopt;  // a number without a unit
    }
    std::size_t u = next_unit;
    while (u < units.size() && units[u].suffix != suffix) ++u;
    if (u == units.size()) return std::nullopt;  // unknown, repeated or out of order
    if (n > (max - total) / units[u].ms) return std::nullopt;
    total += n * units[u].ms;
    next_unit = u + 1;
    i += suffix.size();
  }
  return duration(total);
}

std::string format_duration(duration d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out += '-';
    // -(min) does not fit; no configuration value comes anywhere near it.
    if (ms == std::numeric_limits<std::int64_t>::min()) ++ms;
    ms = -ms;
  }
  for (const unit& u : units) {
    if (const std::int64_t v = ms / u.ms; v > 0) {
      out += std::to_string(v);
      out += u.suffix;
      ms -= v * u.ms;
    }
  }
  return out;
}

}  // namespace cmp::config
