#pragma once
// Prometheus-style durations ("500ms", "10s", "1m30s", "1h") or plain seconds
// ("2", "2.5"), as every duration flag and control parameter accepts them.

#include <chrono>
#include <string_view>

namespace cmp::mock {

// Throws std::invalid_argument naming the bad text.
std::chrono::milliseconds parse_duration(std::string_view text);

// Throws std::invalid_argument unless `text` is a whole decimal number <= max.
unsigned long long parse_unsigned(std::string_view text, unsigned long long max);

}  // namespace cmp::mock
