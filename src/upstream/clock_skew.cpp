#include "cmp/upstream/clock_skew.hpp"

#include "cmp/upstream/outcome.hpp"

namespace cmp::upstream {

using std::chrono::milliseconds;

std::optional<milliseconds> clock_skew(std::string_view date, std::chrono::system_clock::time_point sent,
                                       std::chrono::system_clock::time_point received) {
  const auto api = parse_http_date(date);
  if (!api || received < sent) return std::nullopt;
  // The API's second [api, api + 1 s) overlapped our [sent, received].
  const auto low = std::chrono::duration_cast<milliseconds>(*api - received);
  const auto high = std::chrono::duration_cast<milliseconds>(*api + std::chrono::seconds(1) - sent);
  if (low > milliseconds::zero()) return low;
  if (high < milliseconds::zero()) return high;
  return milliseconds::zero();
}

skew_watch::event skew_watch::observe(milliseconds skew) {
  const auto size = skew < milliseconds::zero() ? -skew : skew;
  if (!skewed_ && size > warn_above) {
    skewed_ = true;
    return event::began;
  }
  if (skewed_ && size <= clear_at) {
    skewed_ = false;
    return event::ended;
  }
  return event::none;
}

}  // namespace cmp::upstream
