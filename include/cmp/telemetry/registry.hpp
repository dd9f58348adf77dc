#pragma once
// The daemon's own metrics (names fixed by the contract) and their text.
//
// Values are plain fields updated by the pollers and the server, all on the
// one io_context thread: no atomics, no locks. Not thread-safe.
// Label values here are upstream names ([a-zA-Z0-9_-]), status codes and
// the version, none needing escapes.

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

#include "cmp/exposition/writer.hpp"
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

// What changes on events lives in a `versioned` value: it can be read
// freely, but the only way to change it is edit(), which moves the
// registry's generation. So a new mutator cannot forget to invalidate the
// prepared self-metrics (server::self_metrics): that stale-metric bug
// cannot be written. A mutator whose call changes nothing returns
// before edit(), so that the cache is not rebuilt for nothing.
template <class T>
class versioned {
 public:
  explicit versioned(std::uint64_t& generation) noexcept : generation_(&generation) {}
  [[nodiscard]] const T& operator*() const noexcept { return value_; }
  [[nodiscard]] const T* operator->() const noexcept { return &value_; }
  [[nodiscard]] T& edit() noexcept {
    ++*generation_;
    return value_;
  }

 private:
  std::uint64_t* generation_;
  T value_{};
};

// One upstream's metrics. The public fields are read when the self-metrics
// are rendered (they change with time); everything else is versioned,
// changed through the methods.
class upstream_metrics {
 public:
  upstream_metrics(std::string n, std::uint64_t& generation) : name(std::move(n)), stable_(generation) {}

  const std::string name;
  std::optional<wall_clock::time_point> snapshot_fetched_at;  // of the snapshot being kept
  std::function<std::uint32_t(wall_clock::time_point)> rate_limit_remaining;

  // One finished request: its code ("200", "timeout", ...) and duration.
  void count_request(std::string_view code, double seconds);
  void count_parse_error();
  void count_schema_change();
  // A rotated api_key_file was read and its new key put to use.
  void count_api_key_reload();
  // `count` repairs of one kind (exposition::normalization_kind) in a body
  // that was taken. True the first time this kind is counted for this
  // upstream: the caller logs it then, not at every poll.
  bool count_normalizations(std::string_view kind, std::uint64_t count);
  // The outcome of an attempt; a success also sets the last-success time.
  void set_up(bool up, wall_clock::time_point now);
  // false once the snapshot is older than max_staleness.
  void set_snapshot_served(bool served);
  // The API's clock minus ours, from the last answer with a Date header.
  void set_clock_skew(double seconds);

  [[nodiscard]] const std::map<std::string, std::uint64_t, std::less<>>& requests_by_code() const {
    return stable_->requests_by_code;
  }
  [[nodiscard]] const histogram& request_duration() const { return stable_->request_duration; }
  [[nodiscard]] std::uint64_t parse_errors() const { return stable_->parse_errors; }
  [[nodiscard]] std::uint64_t schema_changes() const { return stable_->schema_changes; }
  [[nodiscard]] std::uint64_t api_key_reloads() const { return stable_->api_key_reloads; }
  [[nodiscard]] const std::map<std::string, std::uint64_t, std::less<>>& normalizations() const {
    return stable_->normalizations;
  }
  [[nodiscard]] bool up() const { return stable_->up; }
  [[nodiscard]] std::optional<wall_clock::time_point> last_success() const { return stable_->last_success; }
  [[nodiscard]] bool snapshot_served() const { return stable_->snapshot_served; }
  [[nodiscard]] std::optional<double> clock_skew() const { return stable_->clock_skew; }

 private:
  struct stable_values {
    std::map<std::string, std::uint64_t, std::less<>> requests_by_code;
    histogram request_duration;
    std::uint64_t parse_errors = 0;
    std::uint64_t schema_changes = 0;
    std::uint64_t api_key_reloads = 0;
    std::map<std::string, std::uint64_t, std::less<>> normalizations;  // by kind
    bool up = false;
    std::optional<wall_clock::time_point> last_success;
    bool snapshot_served = false;
    std::optional<double> clock_skew;  // seconds; none before the first Date header
  };
  versioned<stable_values> stable_;
};

class registry {
 public:
  explicit registry(wall_clock::time_point started = wall_clock::now());
  // Upstream metrics point back at generation_: the registry stays put.
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  // Finds or creates the upstream's metrics. References stay valid until
  // retain_upstreams() drops that upstream.
  upstream_metrics& upstream(std::string_view name);
  [[nodiscard]] const upstream_metrics* find_upstream(std::string_view name) const;
  // Drops upstreams no longer configured (after a reload).
  void retain_upstreams(const std::vector<std::string>& names);
  [[nodiscard]] const std::vector<std::unique_ptr<upstream_metrics>>& upstreams() const {
    return *upstreams_;
  }

  void count_scrape(unsigned status);
  void set_reload_result(bool ok, wall_clock::time_point when);
  void count_connection_refused() { ++connections_refused_; }
  void set_open_connections(std::uint64_t n) { open_connections_ = n; }
  // How late the I/O thread ran a periodic timer. Exported as the longest
  // lateness of the last 30 to 60 s (a max gauge: one long stall is what
  // delays scrapes, and an average would hide it).
  void observe_event_loop_lag(double seconds, std::chrono::steady_clock::time_point now);

  // Appends the self-metrics in text 0.0.4 or OpenMetrics form (the latter
  // without `# EOF`). The server renders them at most once per second, and
  // again when stable_generation() moved: it changes whenever a value that
  // changes on events (a poll, a reload) does, so those are never served
  // old; the values that change with time or with the scrapes themselves
  // (ages, remaining budget, scrape and connection counts, process_*) may be
  // up to a second old.
  void render(std::string& out, exposition::format f, wall_clock::time_point now);
  [[nodiscard]] std::uint64_t stable_generation() const noexcept { return generation_; }

 private:
  // The families of values that change on events (versioned), then those
  // that change with time or with the scrapes themselves.
  void render_events(exposition::family_stream& w) const;
  void render_time(exposition::family_stream& w, wall_clock::time_point now);

  struct reload_values {
    bool ok = true;
    wall_clock::time_point at;
  };
  // Declared first: the versioned members below point at it.
  std::uint64_t generation_ = 0;
  versioned<std::vector<std::unique_ptr<upstream_metrics>>> upstreams_{generation_};
  versioned<reload_values> reload_{generation_};
  std::map<unsigned, std::uint64_t> scrapes_;
  std::uint64_t connections_refused_ = 0;
  std::uint64_t open_connections_ = 0;
  // Two 30 s buckets of the loop lag's maximum, the current one starting at lag_bucket_start_.
  double lag_max_current_ = 0;
  double lag_max_previous_ = 0;
  std::chrono::steady_clock::time_point lag_bucket_start_{};
  process_metrics process_;
};

}  // namespace cmp::telemetry
