#include "cmp/upstream/poll_planner.hpp"

#include <algorithm>
#include <stdexcept>

namespace cmp::upstream {

namespace {
using std::chrono::duration_cast;
using std::chrono::milliseconds;

std::int64_t ms_since_epoch(poll_planner::time_point t) {
  return duration_cast<milliseconds>(t.time_since_epoch()).count();
}
poll_planner::time_point from_ms(std::int64_t ms) {
  return poll_planner::time_point(duration_cast<poll_planner::clock::duration>(milliseconds(ms)));
}
std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}
}  // namespace

poll_planner::poll_planner(policy p) : p_(p) {
  if (p_.interval.count() <= 0) throw std::invalid_argument("poll_planner: interval must be > 0");
  if (p_.offset.count() < 0 || p_.offset + p_.timeout > p_.interval)
    throw std::invalid_argument("poll_planner: offset + timeout must fit in the interval");
  if (p_.replicas == 0 || p_.replica_index >= p_.replicas)
    throw std::invalid_argument("poll_planner: replica_index must be less than replicas");
  // Slice i is [offset + i*w, offset + (i+1)*w) and the last one ends where
  // the span does, so the slices tile the span without overlapping: no
  // instant belongs to two replicas.
  const auto span = p_.interval - p_.timeout - p_.offset;
  const auto width = span / p_.replicas;
  if (p_.replicas > 1 && width < std::chrono::milliseconds(1))
    throw std::invalid_argument("poll_planner: the start span is too short for the replicas");
  slice_begin_ = p_.offset + width * p_.replica_index;
  slice_end_ = p_.replica_index + 1 == p_.replicas
                   ? p_.interval - p_.timeout
                   : slice_begin_ + width - std::chrono::milliseconds(1);
}

poll_planner::time_point poll_planner::window_end_for(time_point t) const noexcept {
  const auto i = p_.interval.count();
  return from_ms(floor_div(ms_since_epoch(t), i) * i);
}

poll_planner::time_point poll_planner::next_slot_after(time_point t) const noexcept {
  auto slot = window_end_for(t) + slice_begin_;
  if (slot <= t) slot += p_.interval;
  return slot;
}

poll_planner::time_point poll_planner::earliest_start_at_or_after(time_point t) const noexcept {
  const auto boundary = window_end_for(t);
  if (t >= boundary + slice_begin_ && t <= boundary + slice_end_) return t;
  return next_slot_after(t);
}

void poll_planner::start(time_point now, std::optional<time_point> last_window_end) {
  attempts_ = 0;
  due_ = earliest_start_at_or_after(now);
  if (last_window_end && *last_window_end >= window_end_for(due_)) due_ = next_slot_after(due_);
}

poll_planner::decision poll_planner::decide(time_point now, time_point budget_free_at) const {
  const auto t = earliest_start_at_or_after(std::max({due_, budget_free_at, now}));
  if (t <= now) return {true, now};
  return {false, t};
}

poll_planner::duration poll_planner::backoff(std::uint32_t attempt, double jitter01) const noexcept {
  // Full jitter over an exponentially growing ceiling: spreads retries
  // without a thundering herd after a shared outage.
  auto ceiling = p_.backoff_base;
  for (std::uint32_t i = 1; i < attempt && ceiling < p_.backoff_cap; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, p_.backoff_cap);
  jitter01 = std::clamp(jitter01, 0.0, 1.0);
  const auto floor = std::min<duration>(std::chrono::milliseconds(100), ceiling);
  return std::max(floor, duration(static_cast<duration::rep>(ceiling.count() * jitter01)));
}

void poll_planner::on_result(time_point now, const poll_outcome& o, double jitter01) {
  const auto next_slot = next_slot_after(now);
  switch (o.what) {
    case poll_outcome::kind::success:
      attempts_ = 0;
      due_ = next_slot;
      return;
    case poll_outcome::kind::retryable:
      ++attempts_;
      due_ = now + backoff(attempts_, jitter01);
      break;
    case poll_outcome::kind::rate_limited:
      ++attempts_;
      // Never before the upstream's own word; without one, the next window.
      if (!o.retry_allowed || !o.retry_after) {
        due_ = next_slot;
      } else {
        due_ = std::max(now + backoff(attempts_, jitter01), *o.retry_after);
      }
      break;
    case poll_outcome::kind::final_for_slot:
      ++attempts_;
      due_ = next_slot;
      break;
  }
  if (!o.retry_allowed) due_ = next_slot;
  // A retry that cannot start inside this window becomes the next scheduled poll.
  const auto start = earliest_start_at_or_after(due_);
  if (start != due_) due_ = start;
  if (window_end_for(due_) != window_end_for(now)) attempts_ = 0;
}

}  // namespace cmp::upstream
