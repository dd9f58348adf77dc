#pragma once
// One HTTPS GET of the upstream's metrics: resolve, connect (directly or
// through an HTTP CONNECT proxy), TLS handshake with SNI and host-name
// verification, write, read (at most `body_limit` bytes; a gzip body is
// left for decode_body(), under the same limit), TLS shutdown. One
// deadline bounds all of it. A fresh connection every time: polls are a
// minute apart and a pooled connection would mostly be found dead.
//
// Never follows redirects. Never puts the API key anywhere but the
// Authorization header of the request it sends.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/url/url.hpp>
#include <boost/system/error_code.hpp>
#include <boost/url/url_view.hpp>

#include <functional>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cmp/config/secret.hpp"
#include "cmp/upstream/outcome.hpp"

namespace cmp::upstream {

// Client TLS context: TLS >= 1.2, peer verification against the system
// trust store plus `ca_file` (PEM) when given. Throws std::runtime_error
// naming the file when it cannot be loaded.
[[nodiscard]] std::shared_ptr<boost::asio::ssl::context> make_client_tls(const std::string& ca_file);

struct proxy_endpoint {
  std::string host;
  std::string port;
  // Where it was configured, for messages: "proxy_url" or the variable.
  std::string origin;
  // The Proxy-Authorization value for CONNECT ("Basic " + base64 of
  // user:password, both percent-decoded from the URL's userinfo); empty
  // without credentials. A secret: it redacts itself when printed.
  config::secret authorization;
};

// The proxy for `target`: `configured` (proxy_url) when set, else
// HTTPS_PROXY/https_proxy for https (HTTP_PROXY/http_proxy for http) unless
// NO_PROXY/no_proxy matches the host (exact, `.suffix`/`suffix` domain
// match, or `*`). `env` looks up variables (getenv in production).
// Credentials in the proxy URL (http://user:password@host:port) become
// `authorization`.
[[nodiscard]] std::optional<proxy_endpoint> select_proxy(
    const boost::urls::url_view& target, const std::string& configured,
    const std::function<const char*(const char*)>& env);

struct fetch_request {
  boost::urls::url url;
  config::secret api_key;
  std::shared_ptr<boost::asio::ssl::context> tls;  // used for https URLs
  std::optional<proxy_endpoint> proxy;
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
  std::size_t body_limit = 16u << 20;
  std::string user_agent = "cerebras-metrics-proxy";
  // Told the socket in use (nullptr when done), so an owner can close it to
  // abandon the request at shutdown.
  std::function<void(boost::asio::ip::tcp::socket*)> on_socket;
};

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

// Performs the request. Never throws for network or protocol trouble: the
// result says what happened. Cancellation: closing the executor's
// io_context abandons it.
[[nodiscard]] boost::asio::awaitable<fetch_result> fetch(const fetch_request& req);

}  // namespace cmp::upstream
