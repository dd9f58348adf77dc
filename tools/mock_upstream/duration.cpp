#include "duration.hpp"

#include "cmp/config/config.hpp"

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
  // Otherwise Prometheus notation, as the daemon's config reads it.
  const auto d = config::parse_duration(text);
  if (!d) throw bad();
  return *d;
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
