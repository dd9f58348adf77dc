#include "duration.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string>

namespace cmp::mock {

std::chrono::milliseconds parse_duration(std::string_view text) {
  auto bad = [&] { return std::invalid_argument("invalid duration '" + std::string(text) + "'"); };
  if (text.empty()) throw bad();
  // Plain number: seconds, fractions allowed.
  if (text.find_first_not_of("0123456789.") == std::string_view::npos) {
    double secs = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), secs);
    if (ec != std::errc{} || p != text.data() + text.size() || !(secs >= 0) || secs > 1e9) {
      throw bad();
    }
    return std::chrono::milliseconds(static_cast<long long>(std::llround(secs * 1000.0)));
  }
  long long total_ms = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == start || i - start > 12) throw bad();
    long long n = std::stoll(std::string(text.substr(start, i - start)));
    std::size_t unit_start = i;
    while (i < text.size() && (text[i] < '0' || text[i] > '9')) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    long long mult = 0;
    if (unit == "ms") mult = 1;
    else if (unit == "s") mult = 1000;
    else if (unit == "m") mult = 60'000;
    else if (unit == "h") mult = 3'600'000;
    else if (unit == "d") mult = 86'400'000;
    else if (unit == "w") mult = 7 * 86'400'000LL;
    else throw bad();
    total_ms += n * mult;
    if (total_ms > 1'000'000'000'000LL) throw bad();
  }
  return std::chrono::milliseconds(total_ms);
}

unsigned long long parse_unsigned(std::string_view text, unsigned long long max) {
  unsigned long long v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || p != text.data() + text.size() || v > max) {
    throw std::invalid_argument("invalid number '" + std::string(text) + "' (0.." +
                                std::to_string(max) + ")");
  }
  return v;
}

}  // namespace cmp::mock
