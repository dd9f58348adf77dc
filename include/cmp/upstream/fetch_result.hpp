#pragma once
// What one fetch of the upstream produced, as plain data: the poller reads
// it and outcome's classify() decides on it without any I/O type in sight
// (http_fetch.hpp makes it, with Asio). Not thread-safe; a value.

#include <chrono>
#include <cstddef>
#include <string>

#include <boost/system/error_code.hpp>

namespace cmp::upstream {

struct fetch_result {
  // Why no usable response arrived (cmp::upstream::errc, see outcome.hpp);
  // empty when one did. request_code() turns it, or the status, into the
  // `code` label of cerebras_proxy_upstream_requests_total.
  boost::system::error_code fault;
  unsigned status = 0;  // 0 when no usable response arrived
  // Decoded, unless gzip_encoded: then as received, and decode_body() must
  // run before anything reads it (status, fault and error included: a
  // corrupt or oversized gzip body makes the exchange a failed one).
  std::string body;
  bool gzip_encoded = false;
  std::string content_type;
  std::string retry_after;        // Retry-After, as sent
  std::string ratelimit_reset;    // x-ratelimit-reset-requests (or -reset), as sent
  std::string should_retry;       // x-should-retry, as sent
  std::string location;           // for redirects, to say where it pointed
  std::string error;  // human-readable reason for anything but a 2xx; never the key
  // For a non-2xx answer: its body as quote_api_message() shows it (the
  // API's own error text, at most 200 bytes, escaped, never the key).
  std::string api_message;
  std::chrono::steady_clock::duration elapsed{};
  // The Date header as sent, and when the request began to leave and its
  // answer's head had arrived (since the fetch began): the API wrote Date
  // in between, which bounds its clock against ours (clock_skew.hpp).
  std::string date;
  std::chrono::steady_clock::duration request_sent_after{};
  std::chrono::steady_clock::duration head_received_after{};
};

// Decodes a gzip_encoded body in place, at most `limit` bytes decompressed
// (the request's body_limit). On failure the result becomes a failed
// exchange as fetch() used to report it: status 0, fault body_too_large
// (over the limit) or protocol (corrupt or truncated), a reason in `error`,
// no body. Does nothing to a decoded body. Pure CPU work (~0.3 ms per
// 100 KB), so the poller runs it on its worker, not on the I/O thread.
void decode_body(fetch_result& r, std::size_t limit);

}  // namespace cmp::upstream
