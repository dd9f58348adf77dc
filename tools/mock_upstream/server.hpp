#pragma once
// The I/O layer of the simulated upstream: one acceptor, one coroutine per
// connection, all on a single io_context thread (no strands, no locks). It
// reads a request, asks the handler what to do and carries that out, including
// the faults that are not HTTP answers (reset, stall, truncation).
//
// Shutdown: stop accepting, close idle/stalled/waiting connections at once,
// let responses being written finish, and force-close whatever is left after
// a few seconds, so io_context::run() returns by itself.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <cstdint>
#include <list>
#include <optional>
#include <stdexcept>
#include <string>

#include "handler.hpp"
#include "key_file.hpp"
#include "options.hpp"

namespace cmp::mock {

namespace asio = boost::asio;

struct bind_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class server {
 public:
  // `tls` may be null (plain HTTP); it must outlive the server.
  server(asio::io_context& ioc, const options& opts, handler& h, asio::ssl::context* tls);

  // Resolves, binds and listens. Throws bind_error.
  void listen();
  std::uint16_t port() const;
  void start();
  void shutdown();

 private:
  enum class conn_state { handshake, idle, waiting, writing, stalled };
  struct connection {
    boost::beast::tcp_stream* tcp = nullptr;
    asio::steady_timer* timer = nullptr;
    conn_state state = conn_state::handshake;
  };

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(asio::ip::tcp::socket socket);
  template <class Stream>
  asio::awaitable<void> serve(Stream& stream, connection& conn, const std::string& remote);
  void close_connection(connection& c);
  void access_log(const std::string& remote, const request& req, unsigned status,
                  std::size_t bytes, const std::string& fault,
                  std::chrono::steady_clock::time_point started);

  asio::io_context& ioc_;
  const options& opts_;
  handler& handler_;
  std::optional<key_file> key_file_;  // with --api-key-file: checked per request
  asio::ssl::context* tls_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer hard_stop_;
  std::list<connection*> connections_;
  bool stopping_ = false;
};

}  // namespace cmp::mock
