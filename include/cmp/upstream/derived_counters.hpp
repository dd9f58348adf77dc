#pragma once
// True counters derived from Cerebras's per-window gauges.
//
// The upstream's `*_total` families are gauges holding one window's count
// (requests in the last minute), so `rate()` over them is meaningless. This
// keeps, per series, the running sum of those per-window values, each window
// added once (a window is identified by its end time), and serves it as
// `cerebras_proxy_cumulative_<name>`, a monotonic counter that `rate()` and
// `increase()` handle correctly. Windows the daemon missed (faults) are not
// in the sum: the counter undercounts rather than invents.
//
// The `cerebras_proxy_` prefix cannot clash with upstream names. Pure; not
// thread-safe.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cmp/exposition/model.hpp"

namespace cmp::upstream {

class derived_counters {
 public:
  static constexpr std::string_view prefix = "cerebras_proxy_cumulative_";

  // Adds every finite sample of the snapshot's `*_total` gauge/untyped
  // families, unless a window ending at or after `window_end_ms` was
  // already added. Returns whether it added.
  bool add_window(const exposition::family_list& families, std::int64_t window_end_ms);

  // The counters as families (type counter), sorted by name and labels.
  [[nodiscard]] exposition::family_list families() const;

  // Persistence: Prometheus text with a header line; parse() returns
  // nullopt for anything it does not recognise.
  [[nodiscard]] std::string serialize() const;
  [[nodiscard]] static std::optional<derived_counters> parse(std::string_view text);

  [[nodiscard]] std::optional<std::int64_t> last_window_ms() const noexcept { return last_window_ms_; }

 private:
  using series_key = std::vector<exposition::label>;
  struct label_less {
    bool operator()(const series_key& a, const series_key& b) const;
  };
  std::optional<std::int64_t> last_window_ms_;
  std::map<std::string, std::map<series_key, double, label_less>> sums_;  // by source family
};

}  // namespace cmp::upstream
