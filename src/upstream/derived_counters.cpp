#include "cmp/upstream/derived_counters.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <tuple>

#include "cmp/exposition/parser.hpp"
#include "cmp/exposition/writer.hpp"

namespace cmp::upstream {

namespace {
constexpr std::string_view header = "# cmp-derived-counters v1 window_end_ms=";
}

bool derived_counters::label_less::operator()(const series_key& a, const series_key& b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                      [](const exposition::label& x, const exposition::label& y) {
                                        return std::tie(x.name, x.value) < std::tie(y.name, y.value);
                                      });
}

bool derived_counters::add_window(const exposition::family_list& families, std::int64_t window_end_ms) {
  if (last_window_ms_ && window_end_ms <= *last_window_ms_) return false;
  last_window_ms_ = window_end_ms;
  for (const auto& f : families) {
    if (!f.name.ends_with("_total")) continue;
    if (f.type != exposition::metric_type::gauge && f.type != exposition::metric_type::untyped) continue;
    auto& series = sums_[f.name];
    for (const auto& s : f.samples) {
      if (s.name() != f.name || !std::isfinite(s.value) || s.value < 0) continue;
      auto key = s.labels().to_labels();
      std::sort(key.begin(), key.end(),
                [](const auto& x, const auto& y) { return x.name < y.name; });
      series[key] += s.value;
    }
  }
  return true;
}

exposition::family_list derived_counters::families() const {
  exposition::family_list out;
  for (const auto& [name, series] : sums_) {
    exposition::family f;
    f.name = std::string(prefix) + name;
    f.type = exposition::metric_type::counter;
    f.help = "Running sum of the upstream's per-window " + name + " gauge, each window added once.";
    for (const auto& [labels, value] : series) f.samples.push_back({f.name, labels, value, std::nullopt});
    out.push_back(std::move(f));
  }
  return out;
}

std::string derived_counters::serialize() const {
  std::string out(header);
  out += std::to_string(last_window_ms_.value_or(0));
  out += '\n';
  exposition::write_text(families(), out);
  return out;
}

std::optional<derived_counters> derived_counters::parse(std::string_view text) {
  if (!text.starts_with(header)) return std::nullopt;
  const auto eol = text.find('\n');
  if (eol == std::string_view::npos) return std::nullopt;
  const auto number = text.substr(header.size(), eol - header.size());
  std::int64_t window = 0;
  auto [p, ec] = std::from_chars(number.data(), number.data() + number.size(), window);
  if (ec != std::errc{} || p != number.data() + number.size()) return std::nullopt;
  auto parsed = exposition::parse_text(text.substr(eol + 1));
  if (!parsed) return std::nullopt;
  derived_counters d;
  d.last_window_ms_ = window;
  for (const auto& f : *parsed) {
    if (!f.name.starts_with(prefix)) return std::nullopt;
    auto& series = d.sums_[f.name.substr(prefix.size())];
    for (const auto& s : f.samples) series[s.labels().to_labels()] = s.value;
  }
  return d;
}

}  // namespace cmp::upstream
