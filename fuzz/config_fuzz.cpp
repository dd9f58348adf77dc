// libFuzzer target: parse_config on arbitrary bytes. The only exception
// allowed out is config_error; anything else (yaml-cpp internals, bad_alloc
// from a runaway, std::out_of_range from a slicing bug) is a finding.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cmp/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const cmp::config::config c = cmp::config::parse_config(text, "fuzz.yml");
    // A config that passed must summarize and round-trip its durations.
    (void)cmp::config::summarize(c);
    for (const auto& u : c.upstreams) {
      if (cmp::config::parse_duration(cmp::config::format_duration(u.timeout)) != u.timeout) {
        __builtin_trap();
      }
    }
  } catch (const cmp::config::config_error&) {
  }
  // Durations on their own: parse, then format must parse back to the same.
  if (size <= 64) {
    if (const auto d = cmp::config::parse_duration(text)) {
      if (cmp::config::parse_duration(cmp::config::format_duration(*d)) != d) __builtin_trap();
    }
  }
  return 0;
}
