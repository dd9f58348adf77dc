// --replica.index: the replica index given on the command line instead of in
// the file, so that all pods of a StatefulSet can share one ConfigMap.

#include <charconv>

#include <fmt/format.h>

#include "cmp/config/config.hpp"

namespace cmp::config {

namespace {

std::optional<std::uint32_t> parse_number(std::string_view digits) {
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  std::uint32_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

}  // namespace

std::optional<std::uint32_t> parse_replica_index(std::string_view text) {
  if (auto n = parse_number(text)) return n;
  // A StatefulSet names its pods <statefulset>-<ordinal>; the name part is
  // never empty, so "-3" is a negative number, not a pod name.
  const auto dash = text.rfind('-');
  if (dash == std::string_view::npos || dash == 0) return std::nullopt;
  return parse_number(text.substr(dash + 1));
}

void set_replica_index(config& c, std::uint32_t index) {
  std::vector<std::string> errors;
  for (std::size_t i = 0; i < c.upstreams.size(); ++i) {
    auto& u = c.upstreams[i];
    u.replicas.index = index;
    // The rules again, as for any override; the warnings were given when
    // the file was read and do not depend on the index.
    for (const auto& p : validate(u)) {
      if (p.warning) continue;
      errors.push_back(fmt::format(
          "{}: upstreams[{}].{}: {} (upstream {}, --replica.index={}: every replica of a shared "
          "configuration polls every upstream in it)",
          c.source, i, p.key, p.reason, u.name, index));
    }
  }
  if (!errors.empty()) throw config_error(std::move(errors));
}

}  // namespace cmp::config
