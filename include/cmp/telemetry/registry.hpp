#pragma once
// The daemon's own metrics (names fixed by the contract) and their text.
//
// Values are plain fields updated by the pollers and the server, all on the
// one io_context thread: no atomics, no locks. Not thread-safe.
// Rendering writes straight into a caller-owned buffer, so a scrape costs no
// allocation once the buffer has grown; label values here are upstream names
// ([a-zA-Z0-9_-]), status codes and the version, none needing escapes.

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cmp/telemetry/process_metrics.hpp"

namespace cmp::telemetry {

using wall_clock = std::chrono::system_clock;

// Prometheus-style cumulative histogram with fixed bounds.
class histogram {
 public:
  static constexpr std::array<double, 11> bounds = {0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                                    5,    10,  15,   30,  60};
  void observe(double seconds) noexcept;
  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  [[nodiscard]] double sum() const noexcept { return sum_; }
  [[nodiscard]] std::uint64_t bucket(std::size_t i) const noexcept { return counts_[i]; }

 private:
  std::array<std::uint64_t, bounds.size()> counts_{};  // cumulative
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

struct upstream_metrics {
  explicit upstream_metrics(std::string n) : name(std::move(n)) {}
  std::string name;
  std::map<std::string, std::uint64_t, std::less<>> requests_by_code;  // "200", "timeout", ...
  histogram request_duration;
  std::uint64_t parse_errors = 0;
  std::uint64_t schema_changes = 0;
  bool up = false;
  std::optional<wall_clock::time_point> last_success;
  std::optional<wall_clock::time_point> snapshot_fetched_at;  // of the snapshot being kept
  bool snapshot_served = false;  // false once older than max_staleness
  std::function<std::uint32_t(wall_clock::time_point)> rate_limit_remaining;

  void count_request(std::string_view code);
};

class registry {
 public:
  explicit registry(wall_clock::time_point started = wall_clock::now());

  // Finds or creates the upstream's metrics. References stay valid until
  // retain_upstreams() drops that upstream.
  upstream_metrics& upstream(std::string_view name);
  [[nodiscard]] const upstream_metrics* find_upstream(std::string_view name) const;
  // Drops upstreams no longer configured (after a reload).
  void retain_upstreams(const std::vector<std::string>& names);
  [[nodiscard]] const std::vector<std::unique_ptr<upstream_metrics>>& upstreams() const {
    return upstreams_;
  }

  void count_scrape(unsigned status);
  void set_reload_result(bool ok, wall_clock::time_point when);
  void count_connection_refused() { ++connections_refused_; }
  void set_open_connections(std::uint64_t n) { open_connections_ = n; }

  // Appends the self-metrics in text 0.0.4 or OpenMetrics form (the latter
  // without `# EOF`).
  void render(std::string& out, bool openmetrics, wall_clock::time_point now);

 private:
  std::vector<std::unique_ptr<upstream_metrics>> upstreams_;
  std::map<unsigned, std::uint64_t> scrapes_;
  bool reload_ok_ = true;
  wall_clock::time_point reload_at_;
  std::uint64_t connections_refused_ = 0;
  std::uint64_t open_connections_ = 0;
  process_metrics process_;
};

}  // namespace cmp::telemetry
