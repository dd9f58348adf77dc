#include "request_budget.hpp"

namespace cmp::mock {

void request_budget::expire(clock::time_point now) {
  while (!arrivals_.empty() && arrivals_.front() + window_ <= now) arrivals_.pop_front();
}

std::size_t request_budget::used(clock::time_point now) {
  expire(now);
  return arrivals_.size();
}

request_budget::decision request_budget::admit(clock::time_point now) {
  decision d;
  if (limit_ == 0) {
    d.admitted = true;
    return d;
  }
  expire(now);
  if (arrivals_.size() < limit_) {
    arrivals_.push_back(now);
    d.admitted = true;
  }
  d.remaining = limit_ - arrivals_.size();
  d.reset = std::chrono::ceil<std::chrono::milliseconds>(arrivals_.front() + window_ - now);
  return d;
}

}  // namespace cmp::mock
