#pragma once
// What one fetch means for the poller: the fault taxonomy of a request that
// got no usable response (a project error enum with its error_category), the
// `code` label it is counted under, and classify(), the pure decision from a
// fetch_result to a poll_outcome plus what to report. No I/O, no logging, no
// clock: `now` is passed in. Thread-safe (pure functions).
//
// Adding a fault kind: one enumerator in `errc`, its row in the category's
// message and in code_label(), its row in outcome_of_fault(), and its row in
// tests/unit/upstream/outcome_test.cpp.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include <boost/system/error_code.hpp>

#include "cmp/upstream/poll_planner.hpp"

namespace cmp::upstream {

// Why a fetch produced no usable response. Zero is not a fault.
enum class errc : int {
  timeout = 1,       // the request's deadline passed (resolve to last byte)
  dns,               // the host name did not resolve
  connect,           // TCP connect, or the proxy's CONNECT, failed
  tls,               // the TLS handshake failed
  tls_untrusted,     // the peer's certificate or host name is not trusted
  protocol,          // broken HTTP, unsupported encoding, corrupt gzip
  body_too_large,    // the body (raw or decoded) is over the limit
  proxy_auth,        // the proxy wants (other) credentials: HTTP 407 to CONNECT
};

[[nodiscard]] const boost::system::error_category& fetch_category() noexcept;
[[nodiscard]] boost::system::error_code make_error_code(errc e) noexcept;

// The `code` label of cerebras_proxy_upstream_requests_total for a fault
// (the contract's timeout, connect, tls, dns, protocol).
[[nodiscard]] std::string_view code_label(errc e) noexcept;

// An HTTP-date (RFC 9110 5.6.7): the IMF-fixdate servers send
// ("Sun, 06 Nov 1994 08:49:37 GMT"), and the obsolete RFC 850 and asctime
// forms a recipient must also accept. Whole seconds, as the format has.
[[nodiscard]] std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view value);

// Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3).
[[nodiscard]] std::optional<std::chrono::system_clock::time_point> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);
// x-ratelimit-reset-*: seconds ("17", "1.5") or a Go-style duration ("6m0s").
[[nodiscard]] std::optional<std::chrono::system_clock::time_point> parse_ratelimit_reset(
    std::string_view value, std::chrono::system_clock::time_point now);

// The API's own error text (the body of a non-2xx answer, e.g. its JSON
// `{"message":"Organization 'x' not found",...}`) as the log and the status
// page show it: surrounding whitespace trimmed, every occurrence of
// `api_key` replaced by <redacted> (before cutting, so no piece of it can
// remain), control characters and bytes that are not UTF-8 escaped (\n, \t,
// \xNN), at most `api_message_limit` bytes, ending in "..." when cut (never
// inside an escape or a character). Empty for an empty body.
inline constexpr std::size_t api_message_limit = 200;
[[nodiscard]] std::string quote_api_message(std::string_view body, std::string_view api_key);

struct fetch_result;

// What a fetch means. `report_kind` names the reason for "told once per
// outage" (outage_log): the status, or the fault's own message, finer than
// its code label (a proxy's 407 and a refused connection are both
// code="connect", but two reasons); `message` is for the log and the
// status page and never holds the key.
struct classification {
  poll_outcome outcome;
  std::string report_kind;
  std::string message;
};

// `key_from_file`: the key comes from an api_key_file that a 401 re-reads
// (the message then says a rotated key is retried at once).
[[nodiscard]] classification classify(const fetch_result& r, std::chrono::system_clock::time_point now,
                                      bool key_from_file = false);

// The `code` label of a finished fetch: the HTTP status, or code_label() of
// its fault.
[[nodiscard]] std::string request_code(const fetch_result& r);

}  // namespace cmp::upstream

template <>
struct boost::system::is_error_code_enum<cmp::upstream::errc> : std::true_type {};
