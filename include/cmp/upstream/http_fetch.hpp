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

#include "cmp/config/config.hpp"
#include "cmp/config/secret.hpp"
#include "cmp/upstream/fetch_result.hpp"

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

// The request a poll (or `--probe`) sends for upstream `u`: its URL, key,
// timeout, User-Agent and proxy (select_proxy over the process
// environment). Throws std::invalid_argument when the URL does not parse
// (load_config refuses such a file first).
[[nodiscard]] fetch_request make_fetch_request(const config::upstream& u, config::secret api_key,
                                               std::shared_ptr<boost::asio::ssl::context> tls);

// Performs the request. Never throws for network or protocol trouble: the
// result says what happened. Cancellation: closing the executor's
// io_context abandons it.
[[nodiscard]] boost::asio::awaitable<fetch_result> fetch(const fetch_request& req);

}  // namespace cmp::upstream
