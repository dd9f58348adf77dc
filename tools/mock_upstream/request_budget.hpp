#pragma once
// The upstream's own view of the per-organization request budget: at most
// `limit` admitted requests in any sliding `window`, counted on arrival with
// the mock's clock (as the real API counts them, not as the client does).
// Rejected (429) requests are not recorded: they did not consume budget.
//
// Pure: time is passed in. Not thread-safe (one io_context thread owns it).

#include <chrono>
#include <cstddef>
#include <deque>

namespace cmp::mock {

class request_budget {
 public:
  using clock = std::chrono::steady_clock;

  struct decision {
    bool admitted = false;
    std::size_t remaining = 0;           // after this request
    std::chrono::milliseconds reset{0};  // until the oldest counted request leaves the window
  };

  // limit == 0 disables the budget.
  request_budget(std::size_t limit, std::chrono::milliseconds window)
      : limit_(limit), window_(window) {}

  decision admit(clock::time_point now);
  std::size_t used(clock::time_point now);
  std::size_t limit() const { return limit_; }
  std::chrono::milliseconds window() const { return window_; }
  void clear() { arrivals_.clear(); }

 private:
  void expire(clock::time_point now);

  std::size_t limit_;
  std::chrono::milliseconds window_;
  std::deque<clock::time_point> arrivals_;
};

}  // namespace cmp::mock
