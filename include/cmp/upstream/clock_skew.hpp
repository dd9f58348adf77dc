#pragma once
// The API's clock against ours, from the Date header of its answers.
//
// The schedule (poll at boundary + poll_offset) and `timestamps: window`
// both read the local clock, while the API turns its minutes by its own: a
// host clock a few seconds fast polls before the API has published the new
// minute, and with `timestamps: window` stamps every value a minute off.
// Neither shows anywhere else, so each answer's Date is compared with the
// local clock and the result exported and warned about.
//
// Pure: times are passed in. Thread-safety: clock_skew() is a pure
// function; a skew_watch belongs to one poller (not thread-safe).

#include <chrono>
#include <optional>
#include <string_view>

namespace cmp::upstream {

// The API's clock minus ours (positive: the API is ahead), as far as one
// answer can tell. The API wrote `date` (whole seconds, rounded down) at some
// moment between `sent` (our clock when the request began to leave) and
// `received` (when the answer's head had arrived); so its clock minus ours
// lies in [date - received, date + 1 s - sent]. The result is the value of
// that interval nearest to zero: 0 when a correct clock could explain the
// header, whatever the second's fraction and the request's latency were, and
// otherwise the smallest skew that must exist (a lower bound of its size).
// nullopt when `date` is not an HTTP-date or received < sent.
[[nodiscard]] std::optional<std::chrono::milliseconds> clock_skew(std::string_view date,
                                                                  std::chrono::system_clock::time_point sent,
                                                                  std::chrono::system_clock::time_point received);

// Warns once per episode of skew: an episode begins when |skew| exceeds
// `warn_above` (2 s, well under the default poll_offset of 5 s, so it is
// told before it moves a poll into the previous minute) and ends when
// |skew| is back at or below `clear_at` (1 s). The gap between the two keeps
// a skew near the threshold from warning at every poll.
class skew_watch {
 public:
  static constexpr std::chrono::milliseconds warn_above{2000};
  static constexpr std::chrono::milliseconds clear_at{1000};

  enum class event { none, began, ended };
  [[nodiscard]] event observe(std::chrono::milliseconds skew);
  [[nodiscard]] bool skewed() const noexcept { return skewed_; }

 private:
  bool skewed_ = false;
};

}  // namespace cmp::upstream
