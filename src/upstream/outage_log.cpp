#include "cmp/upstream/outage_log.hpp"

#include <fmt/format.h>

namespace cmp::upstream {

namespace {

std::string describe(const snapshot_counts& c) {
  return fmt::format("{} families, {} series, {} endpoints", c.families, c.series, c.endpoints);
}

// "45s", "3m12s", "2h5m": how long an outage lasted, to the second.
std::string span(std::chrono::system_clock::duration d) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  if (s < 60) return fmt::format("{}s", std::max<long long>(s, 0));
  if (s < 3600) return fmt::format("{}m{}s", s / 60, s % 60);
  return fmt::format("{}h{}m", s / 3600, s % 3600 / 60);
}

}  // namespace

outage_log::line outage_log::on_failure(std::string_view kind, std::string_view message,
                                        std::chrono::system_clock::time_point now) {
  ++failures_;
  if (!down_since_) down_since_ = now;
  if (told_.contains(kind)) return {level::debug, std::string(message)};
  const bool first = told_.empty();
  told_.emplace(kind);
  return {level::warn, first ? std::string(message) : "still failing, now: " + std::string(message)};
}

outage_log::line outage_log::on_success(const snapshot_counts& counts,
                                        std::chrono::system_clock::time_point now) {
  line out{level::debug, "snapshot: " + describe(counts)};
  if (!had_snapshot_) {
    out = {level::info, (failures_ ? fmt::format("first snapshot after {} failed polls: ", failures_)
                                   : std::string("first snapshot: ")) +
                            describe(counts)};
  } else if (failures_) {
    out = {level::info, fmt::format("upstream recovered after {} failed polls in {}: {}", failures_,
                                    span(now - *down_since_), describe(counts))};
  }
  had_snapshot_ = true;
  failures_ = 0;
  down_since_.reset();
  told_.clear();
  return out;
}

}  // namespace cmp::upstream
