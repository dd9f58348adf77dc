#pragma once
// When to poll one upstream: a pure state machine. The poller coroutine asks
// `decide(now, budget)` what to do, carries it out, and reports back with
// `on_sent` / `on_result`. No clock is read here, jitter is passed in.
//
// The schedule: Cerebras publishes each minute's aggregate shortly after the
// minute turns, so polls happen at wall-clock multiples of `interval` plus
// `offset`. A poll may only START inside [boundary + offset,
// boundary + interval - timeout] of a window: then the whole request, bounded
// by `timeout`, ends inside the window it started in and the data it gets
// describes exactly the window that ended at `boundary` (what
// `timestamps: window` stamps it with). A retry that would start outside that
// span waits for the next scheduled poll instead.
//
// Replicas (several daemons on one organization, see config::replica_set):
// the start span is cut into `replicas` equal slices and replica `index`
// starts polls and retries only inside its own slice. Slices are disjoint,
// so two replicas never start a request at the same moment, and each slice
// lies inside the span, so every replica fetches the same window. With one
// replica the slice is the whole span.
//
// Not thread-safe; owned by one poller.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>

namespace cmp::upstream {

// What became of one attempt, reduced to what scheduling needs.
struct poll_outcome {
  enum class kind : std::uint8_t {
    success,        // a valid snapshot was published
    retryable,      // 5xx, timeout, connection/DNS error, truncated or invalid body
    rate_limited,   // 429
    final_for_slot  // 401/403, redirect, TLS verification, oversized body: retrying won't help
  };
  kind what = kind::success;
  // For rate_limited: earliest time the upstream said it may be asked again
  // (Retry-After or x-ratelimit-reset), if it said so.
  std::optional<std::chrono::system_clock::time_point> retry_after;
  // `x-should-retry: false` from the upstream.
  bool retry_allowed = true;
};

class poll_planner {
 public:
  using clock = std::chrono::system_clock;
  using time_point = clock::time_point;
  using duration = std::chrono::milliseconds;

  struct policy {
    duration interval{std::chrono::seconds(60)};
    duration offset{std::chrono::seconds(5)};
    duration timeout{std::chrono::seconds(10)};
    duration backoff_base{std::chrono::seconds(1)};
    duration backoff_cap{std::chrono::seconds(15)};
    std::uint32_t replicas = 1;       // daemons sharing the organization
    std::uint32_t replica_index = 0;  // this one, < replicas
  };

  struct decision {
    bool fetch_now = false;
    time_point wait_until{};  // when !fetch_now

    // How long to sleep before deciding again: until wait_until, but at most
    // 30 s, so that a step of the wall clock is noticed.
    [[nodiscard]] std::chrono::steady_clock::duration sleep_from(time_point now) const noexcept {
      return std::clamp<std::chrono::steady_clock::duration>(wait_until - now, std::chrono::steady_clock::duration::zero(),
                                                             std::chrono::seconds(30));
    }
  };

  explicit poll_planner(policy p);

  // `last_window_end`: the window end of a snapshot restored from state_dir.
  // If it already covers the window a poll now would fetch, the first poll is
  // the next scheduled one; otherwise poll as soon as allowed.
  void start(time_point now, std::optional<time_point> last_window_end);

  // `budget_free_at`: the ledger's next_allowed(now).
  [[nodiscard]] decision decide(time_point now, time_point budget_free_at) const;

  void on_result(time_point now, const poll_outcome& outcome, double jitter01);

  // End of the window whose data a request started at `t` receives
  // (the last interval boundary at or before t).
  [[nodiscard]] time_point window_end_for(time_point t) const noexcept;
  // The scheduled poll time (boundary + slice_begin(); with one replica,
  // boundary + offset) strictly after t.
  [[nodiscard]] time_point next_slot_after(time_point t) const noexcept;
  // t itself if a request may start then, else the next scheduled poll.
  [[nodiscard]] time_point earliest_start_at_or_after(time_point t) const noexcept;
  // This replica's slice of the start span, as offsets from the boundary:
  // a request may start at boundary + d for slice_begin() <= d <= slice_end().
  [[nodiscard]] duration slice_begin() const noexcept { return slice_begin_; }
  [[nodiscard]] duration slice_end() const noexcept { return slice_end_; }

  [[nodiscard]] std::uint32_t failed_attempts() const noexcept { return attempts_; }
  [[nodiscard]] time_point due() const noexcept { return due_; }

 private:
  [[nodiscard]] duration backoff(std::uint32_t attempt, double jitter01) const noexcept;

  policy p_;
  duration slice_begin_{};
  duration slice_end_{};  // inclusive
  time_point due_{};
  std::uint32_t attempts_ = 0;  // failures since the last success, this window
};

}  // namespace cmp::upstream
