#pragma once
// The hard request budget for one Cerebras organization: never more than
// `requests` sends in ANY sliding window of `window`.
//
// Why a ring of the last N send times and not a token bucket: a bucket of
// capacity C refilled at N/W lets C + N requests through one window. With the
// ring, request i+N may only go once request i is older than the window, so
// no window can ever hold N+1 sends.
//
// The upstream counts arrivals with its own clock, so the ledger pretends the
// window is longer by a safety margin (see `safety_margin`); a config of 6 per
// 60 s then still never draws a 429 from clock skew or network delay.
//
// Times are wall-clock (system_clock) because the ledger is persisted and
// must mean the same after a restart. An entry dated in the future (the
// clock stepped back) is clamped to `now`, which only ever delays requests.
//
// Pure and not thread-safe: one poller owns it; `now` is always passed in.

#include <chrono>
#include <cstdint>
#include <vector>

namespace cmp::upstream {

class budget_ledger {
 public:
  using clock = std::chrono::system_clock;
  using time_point = clock::time_point;
  using duration = std::chrono::milliseconds;

  // max(1 s, 2 % of the window): covers clock skew between us and the
  // upstream and the request's own transit time.
  [[nodiscard]] static duration safety_margin(duration window) noexcept;

  budget_ledger(std::uint32_t requests, duration window);

  // Earliest time >= now at which one more request keeps the bound.
  [[nodiscard]] time_point next_allowed(time_point now) const noexcept;
  // Requests that could still be sent at `now` without waiting.
  [[nodiscard]] std::uint32_t remaining(time_point now) const noexcept;
  // Records a send at `now` if the bound allows it.
  [[nodiscard]] bool try_acquire(time_point now);

  // The retained send times, oldest first (at most `requests` of them).
  [[nodiscard]] const std::vector<time_point>& history() const noexcept { return sent_; }
  // Replaces the history (from the state file). Unsorted input and future
  // times are tolerated: sorted, clamped to `now`, only the newest kept.
  void restore(std::vector<time_point> sent, time_point now);
  // Conservative fallback when the persisted history is unreadable: behave
  // as if the whole budget had been spent at `now`.
  void assume_spent(time_point now);

  [[nodiscard]] std::uint32_t limit() const noexcept { return requests_; }
  [[nodiscard]] duration effective_window() const noexcept { return window_; }

 private:
  std::uint32_t requests_;
  duration window_;  // configured window + safety margin
  std::vector<time_point> sent_;  // sorted, size <= requests_
};

}  // namespace cmp::upstream
