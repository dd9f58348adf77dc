#pragma once
// One upstream as the status page and /-/ready see it. Its poller writes it
// into the snapshot_store after every attempt (snapshot_store::set_status),
// the server reads it from there (statuses()): it lives here, below both, so
// that upstream and server stay peers over snapshot.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace cmp::snapshot {

struct upstream_status {
  std::string name;
  std::string url;  // carries the organization id, never the key
  bool up = false;
  std::optional<std::chrono::system_clock::time_point> last_success;
  // Filled in by snapshot_store::statuses() from the snapshot it keeps.
  std::optional<std::chrono::system_clock::time_point> snapshot_fetched_at;
  std::chrono::milliseconds max_staleness{};
  // The budget left changes as the sliding window moves, without an attempt:
  // statuses(now) asks the poller's ledger through budget_left_at.
  std::uint32_t budget_left = 0;
  std::uint32_t budget_limit = 0;
  std::function<std::uint32_t(std::chrono::system_clock::time_point)> budget_left_at;
  std::string last_error;  // empty when the last attempt succeeded
};

}  // namespace cmp::snapshot
