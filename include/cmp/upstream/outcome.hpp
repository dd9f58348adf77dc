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
};

[[nodiscard]] const boost::system::error_category& fetch_category() noexcept;
[[nodiscard]] boost::system::error_code make_error_code(errc e) noexcept;

// The `code` label of cerebras_proxy_upstream_requests_total for a fault
// (the contract's timeout, connect, tls, dns, protocol).
[[nodiscard]] std::string_view code_label(errc e) noexcept;

// Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3).
[[nodiscard]] std::optional<std::chrono::system_clock::time_point> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);
// x-ratelimit-reset-*: seconds ("17", "1.5") or a Go-style duration ("6m0s").
[[nodiscard]] std::optional<std::chrono::system_clock::time_point> parse_ratelimit_reset(
    std::string_view value, std::chrono::system_clock::time_point now);

struct fetch_result;

// What a fetch means. `report_kind` names the state for "log once per
// change" (the code label, or a status); `message` is for the log and the
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
