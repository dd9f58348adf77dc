#pragma once
// Routing and the answers of the local HTTP endpoints, with no I/O: a
// request's method, path and headers in; out a response, or for /metrics
// what to serve. The session turns it into bytes. Runs on the io_context thread; not
// thread-safe.

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "cmp/exposition/writer.hpp"
#include "cmp/server/negotiation.hpp"
#include "cmp/snapshot/snapshot.hpp"
#include "cmp/snapshot/upstream_status.hpp"

namespace cmp::server {

using wall_clock = std::chrono::system_clock;

enum class method : unsigned char { get, head, post, other };

struct request_view {
  method verb = method::get;
  std::string_view target;  // path and query
  std::string_view accept;
  std::string_view accept_encoding;
  std::string_view authorization;
  std::string_view scrape_timeout;  // X-Prometheus-Scrape-Timeout-Seconds
};

using snapshot::upstream_status;

// What the handler needs from the rest of the daemon.
struct handler_context {
  std::function<std::shared_ptr<const snapshot::served_views>()> views;
  std::function<std::vector<upstream_status>(wall_clock::time_point)> upstreams;
  // True while a rebuild will add an upstream that views() lack but the
  // self-metrics already show as up (snapshot_store::catching_up); /metrics
  // then waits for it, briefly. Unset: never.
  std::function<bool()> view_catching_up;
  // A timer that never expires and is cancelled whenever new views are
  // installed (and at shutdown): the wait above sleeps on it instead of
  // polling. Unset: the wait sleeps its whole bound.
  boost::asio::steady_timer* view_installed = nullptr;
  // Reloads the configuration; empty string on success, else the reason.
  std::function<std::string()> reload;
  bool lifecycle_enabled = false;
  // Added to every response (web config http_server_config.headers).
  std::vector<std::pair<std::string, std::string>> response_headers;
  // Basic auth check; unset means no auth configured. Returns true when allowed.
  std::function<bool(std::string_view authorization)> authorize;
};

// Every answer but a served /metrics: status, type, body and headers.
struct response {
  unsigned status = 200;
  std::string_view content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string_view, std::string>> headers;  // Allow, WWW-Authenticate, ...
};

// A /metrics request that is to be served: the session resolves the view
// (metrics_request::wait_for_first, snapshot_store::catching_up) and
// writes the prepared bytes in this format and encoding.
struct metrics_request {
  exposition_format format = exposition_format::text;
  bool gzip = false;
  // /metrics?upstream=NAME: serve that upstream's own view, without the
  // daemon's self-metrics (a per-organization scrape job would otherwise
  // get them once per organization). Empty: every upstream and the
  // self-metrics.
  std::string upstream;
  // Before any snapshot exists: how long the scrape may wait for the first
  // one (from X-Prometheus-Scrape-Timeout-Seconds - 0.5 s).
  std::chrono::milliseconds wait_for_first{0};
};

using answer = std::variant<response, metrics_request>;

// The first value of query parameter `key` in `target`, percent-decoded
// (`+` is a space); nullopt if absent, empty if its escapes are malformed
// (present, but naming nothing).
[[nodiscard]] std::optional<std::string> query_parameter(std::string_view target, std::string_view key);

[[nodiscard]] answer handle(const request_view& req, const handler_context& ctx,
                              wall_clock::time_point now);

// Content types of /metrics.
inline constexpr std::string_view text_content_type = exposition::text_content_type;
inline constexpr std::string_view openmetrics_content_type = exposition::openmetrics_content_type;

}  // namespace cmp::server
