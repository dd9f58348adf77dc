// libFuzzer target: parse_web_config on arbitrary bytes. Only config_error
// may escape; any other exception or crash is a finding.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cmp/config/web_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    (void)cmp::config::parse_web_config(text, "fuzz-web.yml");
  } catch (const cmp::config::config_error&) {
  }
  return 0;
}
