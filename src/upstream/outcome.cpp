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
      case errc::proxy_auth:
        return "the proxy refused the credentials";
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
  if (fault == errc::tls_untrusted || fault == errc::body_too_large || fault == errc::proxy_auth)
    return poll_outcome::kind::final_for_slot;
  return poll_outcome::kind::retryable;
}

// The length of the well-formed UTF-8 character at s[i] (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF), 0 if there is none.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = at(i);
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
  else return 0;
  if (i + n > s.size() || at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (at(i + k) < 0x80 || at(i + k) > 0xBF) return 0;
  return n;
}

// One byte that is not printable text, as an escape.
std::string escaped(unsigned char c) {
  switch (c) {
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: {
      static constexpr char hex[] = "0123456789abcdef";
      return {'\\', 'x', hex[c >> 4], hex[c & 15]};
    }
  }
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
    case errc::proxy_auth:
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

std::optional<wall_clock::time_point> parse_http_date(std::string_view value) {
  // strptime's %a and %b read English names in the C locale, which the
  // daemon never leaves.
  static constexpr const char* forms[] = {
      "%a, %d %b %Y %H:%M:%S GMT",  // IMF-fixdate
      "%A, %d-%b-%y %H:%M:%S GMT",  // RFC 850 (two-digit year: 69-99 -> 19xx, as POSIX says)
      "%a %b %e %H:%M:%S %Y",       // asctime
  };
  const std::string s(value);
  for (const char* form : forms) {
    std::tm tm{};
    if (const char* rest = strptime(s.c_str(), form, &tm); rest && *rest == '\0')
      return wall_clock::from_time_t(timegm(&tm));
  }
  return std::nullopt;
}

std::optional<wall_clock::time_point> parse_retry_after(std::string_view value, wall_clock::time_point now) {
  if (auto t = after_seconds(value, now)) return t;
  return parse_http_date(value);
}

std::optional<wall_clock::time_point> parse_ratelimit_reset(std::string_view value,
                                                            wall_clock::time_point now) {
  if (auto t = after_seconds(value, now)) return t;
  if (auto d = config::parse_duration(value)) return now + *d;
  return std::nullopt;
}

std::string quote_api_message(std::string_view body, std::string_view api_key) {
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!body.empty() && space(body.front())) body.remove_prefix(1);
  // The key replaced, as far as the quote can reach: every byte becomes at
  // least one byte of the quote, so limit + 1 bytes show that it is cut.
  // Only the text between occurrences is ever cut, never a key.
  std::string text;
  bool whole = true;
  for (std::size_t pos = 0; pos < body.size();) {
    if (text.size() > api_message_limit) {
      whole = false;
      break;
    }
    const auto at = api_key.empty() ? std::string_view::npos : body.find(api_key, pos);
    const auto plain = body.substr(pos, at == std::string_view::npos ? std::string_view::npos : at - pos);
    const auto room = api_message_limit + 1 - text.size();
    text.append(plain.substr(0, room));
    if (plain.size() > room) {
      whole = false;
      break;
    }
    if (at == std::string_view::npos) {
      pos += plain.size();
    } else {
      text.append(config::secret::redacted());
      pos = at + api_key.size();
    }
  }
  if (whole)
    while (!text.empty() && space(text.back())) text.pop_back();
  const std::string_view rest(text);

  // Escaped piece by piece, remembering where the last piece ended that
  // leaves room for "...": the cut goes there if the whole does not fit.
  constexpr std::string_view ellipsis = "...";
  std::string out;
  std::size_t cut = 0;
  for (std::size_t i = 0; i < rest.size() && out.size() <= api_message_limit;) {
    const auto c = static_cast<unsigned char>(rest[i]);
    std::size_t n = 1;
    if (c >= 0x20 && c < 0x7f) out += rest[i];
    else if (c >= 0x80 && (n = utf8_length(rest, i)) != 0) out += rest.substr(i, n);
    else out += escaped(c), n = 1;
    i += n;
    if (out.size() <= api_message_limit - ellipsis.size()) cut = out.size();
  }
  if (out.size() > api_message_limit) {
    out.resize(cut);
    out += ellipsis;
  }
  return out;
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
    c.report_kind = r.fault ? r.fault.message() : request_code(r);
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
  } else if (r.status == 404) {
    o.what = poll_outcome::kind::final_for_slot;
    c.message = "upstream answered HTTP 404: check the organization id at the end of url "
                "(https://cloud.cerebras.ai/api/v1/metrics/organizations/<org-id>); retrying at the "
                "next scheduled poll";
  } else if (r.status >= 500 || r.status == 408) {
    o.what = poll_outcome::kind::retryable;
    c.message = "upstream error: " + r.error;
  } else {
    o.what = poll_outcome::kind::final_for_slot;
    c.message = "upstream answered " + r.error;
  }
  // The API's own words name the problem best (a wrong organization, a
  // disabled feature): kept for the log and the status page.
  if (!r.api_message.empty()) c.message += "; the API says: " + r.api_message;
  return c;
}

}  // namespace cmp::upstream
