#include "cmp/server/send_plan.hpp"

#include <algorithm>

namespace cmp::server {

bool send_plan::uses_sendfile() const noexcept {
  for (std::size_t i = 0; i < parts_.size(); ++i)
    if (by_sendfile(i)) return true;
  return false;
}

send_plan::step send_plan::next(std::span<boost::asio::const_buffer> iov) const noexcept {
  step s;
  if (done()) return s;
  if (by_sendfile(part_)) {
    const auto& f = files_[part_];
    s.fd = f.fd;
    s.offset = f.offset + at_;
    s.size = std::min(parts_[part_].size() - at_, max_step);
    s.more = at_ + s.size < parts_[part_].size() || part_ + 1 < parts_.size();
    return s;
  }
  std::size_t i = part_, from = at_, total = 0;
  while (i < parts_.size() && s.count < iov.size() && total < max_step && !by_sendfile(i)) {
    const auto n = std::min(parts_[i].size() - from, max_step - total);
    if (n > 0) iov[s.count++] = boost::asio::const_buffer(parts_[i].data() + from, n);
    total += n;
    if (from + n < parts_[i].size()) break;  // cut by max_step
    ++i;
    from = 0;
  }
  s.size = total;
  // More follows unless this write takes everything that is left.
  std::size_t left = 0;
  for (std::size_t j = part_; j < parts_.size() && left <= total; ++j)
    left += parts_[j].size() - (j == part_ ? at_ : 0);
  s.more = left > total;
  return s;
}

void send_plan::advance(std::size_t n) noexcept {
  while (n > 0 && !done()) {
    const auto k = std::min(n, parts_[part_].size() - at_);
    at_ += k;
    n -= k;
    skip_empty();
  }
}

}  // namespace cmp::server
