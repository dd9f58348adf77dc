#include "cmp/upstream/outcome.hpp"

#include <cstdlib>
#include <ctime>

#include "cmp/config/config.hpp"
#include "cmp/upstream/fetch_result.hpp"

namespace cmp::upstream {

using wall_clock = std::chrono::system_clock;

namespace {

class fetch_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "cmp.upstream.fetch"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::timeout:
        return "the upstream request timed out";
      case errc::dns:
        return "the upstream host name did not resolve";
      case errc::connect:
        return "connecting to the upstream failed";
      case errc::tls:
        return "the TLS handshake failed";
      case errc::tls_untrusted:
        return "the upstream's certificate is not trusted";
      case errc::protocol:
        return "the upstream's response is not usable HTTP";
      case errc::body_too_large:
        return "the upstream's response body is over the limit";
    }
    return "unknown upstream fault";
  }
};

// Seconds as a non-negative decimal ("17", "1.5"), the whole string.
std::optional<wall_clock::time_point> after_seconds(std::string_view v, wall_clock::time_point now) {
  const std::string s(v);
  char* end = nullptr;
  const double seconds = std::strtod(s.c_str(), &end);
  if (s.empty() || end == s.c_str() || *end != '\0' || !(seconds >= 0) || seconds > 1e9) return std::nullopt;
  return now + std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

// The row of the fault table: which faults retrying in this slot cannot fix.
poll_outcome::kind outcome_of_fault(const boost::system::error_code& fault) {
  if (fault == errc::tls_untrusted || fault == errc::body_too_large) return poll_outcome::kind::final_for_slot;
  return poll_outcome::kind::retryable;
}

}  // namespace

const boost::system::error_category& fetch_category() noexcept {
  static const fetch_category_impl category;
  return category;
}

boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), fetch_category()};
}

std::string_view code_label(errc e) noexcept {
  switch (e) {
    case errc::timeout:
      return "timeout";
    case errc::dns:
      return "dns";
    case errc::connect:
      return "connect";
    case errc::tls:
    case errc::tls_untrusted:
      return "tls";
    case errc::protocol:
    case errc::body_too_large:
      return "protocol";
  }
  return "protocol";
}

std::optional<wall_clock::time_point> parse_retry_after(std::string_view value, wall_clock::time_point now) {
  if (auto t = after_seconds(value, now)) return t;
  const std::string s(value);
  std::tm tm{};
  if (const char* rest = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm); rest && *rest == '\0')
    return wall_clock::from_time_t(timegm(&tm));
  return std::nullopt;
}

std::optional<wall_clock::time_point> parse_ratelimit_reset(std::string_view value,
                                                            wall_clock::time_point now) {
  if (auto t = after_seconds(value, now)) return t;
  if (auto d = config::parse_duration(value)) return now + *d;
  return std::nullopt;
}

std::string request_code(const fetch_result& r) {
  if (r.fault) return std::string(code_label(static_cast<errc>(r.fault.value())));
  return std::to_string(r.status);
}

classification classify(const fetch_result& r, wall_clock::time_point now, bool key_from_file) {
  classification c;
  poll_outcome& o = c.outcome;
  o.retry_allowed = r.should_retry != "false";
  if (r.fault || r.status == 0) {
    o.what = outcome_of_fault(r.fault);
    c.report_kind = request_code(r);
    c.message = r.error;
    return c;
  }
  const std::string code = std::to_string(r.status);
  if (r.status == 200) {
    o.what = poll_outcome::kind::success;
    return c;
  }
  c.report_kind = code;
  if (r.status == 429) {
    o.what = poll_outcome::kind::rate_limited;
    o.retry_after = parse_retry_after(r.retry_after, now);
    if (!o.retry_after) o.retry_after = parse_ratelimit_reset(r.ratelimit_reset, now);
    c.message = "rate limited by the upstream (HTTP 429" +
                (r.retry_after.empty() ? std::string() : ", Retry-After " + r.retry_after) +
                "); waiting as told";
  } else if (r.status == 401) {
    o.what = poll_outcome::kind::final_for_slot;
    c.message = key_from_file ? "upstream rejected the API key (HTTP 401); api_key_file is read again: "
                                "with a new key the poll is retried once now, else at the next "
                                "scheduled poll"
                              : "upstream rejected the API key (HTTP 401); check api_key_env/"
                                "api_key_file; retrying at the next scheduled poll";
  } else if (r.status == 403) {
    o.what = poll_outcome::kind::final_for_slot;
    c.message = "upstream refused access (HTTP 403): the Metrics API is a private preview that may "
                "not be enabled for this organization, or the key lacks access; retrying at the "
                "next scheduled poll";
  } else if (r.status >= 500 || r.status == 408) {
    o.what = poll_outcome::kind::retryable;
    c.message = "upstream error: " + r.error;
  } else {
    o.what = poll_outcome::kind::final_for_slot;
    c.message = "upstream answered " + r.error;
  }
  return c;
}

}  // namespace cmp::upstream
