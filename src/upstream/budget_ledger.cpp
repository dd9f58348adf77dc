#include "cmp/upstream/budget_ledger.hpp"

#include <algorithm>
#include <stdexcept>

namespace cmp::upstream {

budget_ledger::duration budget_ledger::safety_margin(duration window) noexcept {
  return std::max<duration>(std::chrono::seconds(1), window / 50);
}

budget_ledger::budget_ledger(std::uint32_t requests, duration window)
    : requests_(requests), window_(window + safety_margin(window)) {
  if (requests_ == 0) throw std::invalid_argument("budget_ledger: requests must be >= 1");
  sent_.reserve(requests_);
}

budget_ledger::time_point budget_ledger::next_allowed(time_point now) const noexcept {
  if (sent_.size() < requests_) return now;
  // The oldest of the last N sends must have left the window.
  return std::max(now, sent_.front() + window_);
}

std::uint32_t budget_ledger::remaining(time_point now) const noexcept {
  const auto in_window = std::count_if(sent_.begin(), sent_.end(),
                                       [&](time_point t) { return t + window_ > now; });
  return requests_ - static_cast<std::uint32_t>(in_window);
}

bool budget_ledger::try_acquire(time_point now) {
  if (next_allowed(now) > now) return false;
  // Stored at the state file's millisecond resolution, rounded up (later is
  // the safe side), so a restored copy of this send is the same entry.
  now = std::chrono::ceil<std::chrono::milliseconds>(now);
  if (!sent_.empty() && now < sent_.back()) now = sent_.back();  // keep it sorted
  if (sent_.size() == requests_) sent_.erase(sent_.begin());
  sent_.push_back(now);
  return true;
}

void budget_ledger::restore(std::vector<time_point> sent, time_point now) {
  for (auto& t : sent) t = std::min(t, now);
  std::sort(sent.begin(), sent.end());
  // The same send may come from the file and from memory (after a reload).
  sent.erase(std::unique(sent.begin(), sent.end()), sent.end());
  if (sent.size() > requests_) sent.erase(sent.begin(), sent.end() - requests_);
  sent_ = std::move(sent);
}

void budget_ledger::assume_spent(time_point now) { sent_.assign(requests_, now); }

}  // namespace cmp::upstream
