#pragma once
// The local HTTP listener: accepts connections, reads requests with Beast's
// parser under strict limits, answers through `handle()`, and serves /metrics
// from prepared bytes (the current view's, the prepared self-metrics')
// without copying or rendering them.
//
// Runs on one io_context thread; all member functions must be called on it.
// stop() stops accepting, closes idle keep-alive connections at once and
// lets responses in flight finish; the server's coroutines then end and the
// io_context can run out of work.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "cmp/server/handler.hpp"
#include "cmp/telemetry/registry.hpp"

namespace cmp::server {

struct server_options {
  std::size_t max_connections = 1024;  // beyond it: 503 and close
  std::size_t header_limit = 8 * 1024;  // request line + headers; beyond it: 431
  // A request's header must arrive within this once its first byte has:
  // slowloris clients cannot hold a connection by trickling bytes.
  std::chrono::milliseconds header_timeout{std::chrono::seconds(10)};
  // A keep-alive connection with no request for this long is closed.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(120)};
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  // How old the self-metrics on /metrics may be (scrape_body.hpp's
  // self_metrics): they are prepared before the scrapes that serve them.
  std::chrono::milliseconds self_metrics_max_age{std::chrono::seconds(1)};
};

class http_server {
 public:
  http_server(boost::asio::io_context& ioc, handler_context ctx, telemetry::registry& metrics,
              server_options options, std::shared_ptr<spdlog::logger> log);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Binds `host:port` / `[v6]:port` (port 0: any free port). Throws
  // boost::system::system_error when the address is bad or cannot be bound.
  void listen(const std::string& address);
  [[nodiscard]] boost::asio::ip::tcp::endpoint local_endpoint() const;

  // Serves HTTPS with this context from now on (web config); nullptr: HTTP.
  // A non-empty `allowed_sans` admits only client certificates naming one.
  void set_tls(std::shared_ptr<boost::asio::ssl::context> tls,
               std::vector<std::string> allowed_sans = {});
  void set_handler_context(handler_context ctx);

  void start();
  void stop();
  // After stop(): closes every remaining connection, busy or not (process
  // exit, once the graceful period is over).
  void abort();
  [[nodiscard]] std::size_t open_connections() const noexcept;

  struct impl;  // public only so the .cpp's helpers can name it

 private:
  std::unique_ptr<impl> impl_;
};

// Splits "host:port" / "[v6]:port"; throws std::invalid_argument with a reason.
[[nodiscard]] boost::asio::ip::tcp::endpoint parse_listen_address(const std::string& address);

}  // namespace cmp::server
