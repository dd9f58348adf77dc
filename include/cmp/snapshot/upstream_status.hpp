#pragma once
// One upstream as the status page and /-/ready see it. The poller fills it,
// the server reads it: it lives here, below both, so that upstream and server
// stay peers over snapshot. A plain value.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace cmp::snapshot {

struct upstream_status {
  std::string name;
  std::string url;  // carries the organization id, never the key
  bool up = false;
  std::optional<std::chrono::system_clock::time_point> last_success;
  std::optional<std::chrono::system_clock::time_point> snapshot_fetched_at;
  std::chrono::milliseconds max_staleness{};
  std::uint32_t budget_left = 0;
  std::uint32_t budget_limit = 0;
  std::string last_error;  // empty when the last attempt succeeded
};

}  // namespace cmp::snapshot
