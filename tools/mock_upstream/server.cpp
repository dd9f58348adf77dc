#include "server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <array>
#include <cstdio>
#include <ctime>
#include <iostream>

namespace cmp::mock {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr auto handshake_timeout = std::chrono::seconds(10);
constexpr auto idle_timeout = std::chrono::seconds(60);
constexpr auto write_timeout = std::chrono::seconds(60);
constexpr auto shutdown_grace = std::chrono::seconds(4);

std::string now_iso() {
  auto now = std::chrono::system_clock::now();
  std::time_t tt = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
            1000;
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[48];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms));
  return out;
}

// Graceful end of a connection we chose to close: TLS close_notify (bounded),
// then FIN. Errors are normal here (the peer may already be gone).
asio::awaitable<void> close_gracefully(beast::ssl_stream<beast::tcp_stream>& stream) {
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
  co_await stream.async_shutdown(nothrow);
  beast::get_lowest_layer(stream).close();
}

asio::awaitable<void> close_gracefully(beast::tcp_stream& stream) {
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.close();
  co_return;
}

}  // namespace

server::server(asio::io_context& ioc, const options& opts, handler& h, asio::ssl::context* tls)
    : ioc_(ioc), opts_(opts), handler_(h), tls_(tls), acceptor_(ioc), hard_stop_(ioc) {
  if (!opts_.api_key_file.empty()) key_file_.emplace(opts_.api_key_file, opts_.api_key);
}

void server::listen() {
  boost::system::error_code ec;
  tcp::endpoint ep;
  auto addr = asio::ip::make_address(opts_.listen_host, ec);
  if (!ec) {
    ep = tcp::endpoint(addr, opts_.listen_port);
  } else {
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(opts_.listen_host, std::to_string(opts_.listen_port),
                                    tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      throw bind_error("cannot resolve listen host '" + opts_.listen_host + "': " + ec.message());
    }
    ep = results.begin()->endpoint();
  }
  auto fail = [&](const char* what) {
    return bind_error(std::string(what) + " " + ep.address().to_string() + ":" +
                      std::to_string(ep.port()) + ": " + ec.message());
  };
  acceptor_.open(ep.protocol(), ec);
  if (ec) throw fail("cannot open socket for");
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  acceptor_.bind(ep, ec);
  if (ec) throw fail("cannot bind");
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw fail("cannot listen on");
}

std::uint16_t server::port() const { return acceptor_.local_endpoint().port(); }

void server::start() {
  asio::co_spawn(ioc_, accept_loop(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      std::cerr << "cerebras-mock-upstream: accept loop failed: " << x.what() << std::endl;
    }
  });
}

void server::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  for (connection* c : connections_) {
    if (c->state != conn_state::writing) close_connection(*c);
  }
  if (!connections_.empty()) {
    hard_stop_.expires_after(shutdown_grace);
    hard_stop_.async_wait([this](boost::system::error_code wec) {
      if (wec) return;
      for (connection* c : connections_) close_connection(*c);
    });
  }
}

void server::close_connection(connection& c) {
  if (c.timer != nullptr) c.timer->cancel();
  if (c.tcp != nullptr) c.tcp->close();
}

asio::awaitable<void> server::accept_loop() {
  while (!stopping_) {
    auto [ec, socket] = co_await acceptor_.async_accept(nothrow);
    if (stopping_) break;
    if (ec) {
      // Out of descriptors and the like: pause instead of spinning.
      asio::steady_timer pause(ioc_, std::chrono::milliseconds(100));
      co_await pause.async_wait(nothrow);
      continue;
    }
    asio::co_spawn(ioc_, session(std::move(socket)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::cerr << "cerebras-mock-upstream: session failed: " << x.what() << std::endl;
      }
    });
  }
}

asio::awaitable<void> server::session(tcp::socket socket) {
  boost::system::error_code ec;
  auto peer = socket.remote_endpoint(ec);
  std::string remote = ec ? std::string("?") : peer.address().to_string() + ":" +
                                                   std::to_string(peer.port());
  connection conn;
  connections_.push_back(&conn);
  auto self = std::prev(connections_.end());
  // Deregister however the coroutine ends; the last one out ends the grace timer.
  struct guard {
    server& s;
    std::list<connection*>::iterator it;
    ~guard() {
      s.connections_.erase(it);
      if (s.stopping_ && s.connections_.empty()) s.hard_stop_.cancel();
    }
  } g{*this, self};

  if (tls_ != nullptr) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *tls_);
    conn.tcp = &beast::get_lowest_layer(stream);
    conn.tcp->expires_after(handshake_timeout);
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, nothrow);
    if (hec) {
      if (!opts_.quiet && !stopping_) {
        std::cerr << now_iso() << " " << remote << " TLS handshake failed: " << hec.message()
                  << std::endl;
      }
      co_return;
    }
    co_await serve(stream, conn, remote);
  } else {
    beast::tcp_stream stream(std::move(socket));
    conn.tcp = &stream;
    co_await serve(stream, conn, remote);
  }
}

template <class Stream>
asio::awaitable<void> server::serve(Stream& stream, connection& conn, const std::string& remote) {
  beast::tcp_stream& tcp = beast::get_lowest_layer(stream);
  asio::steady_timer timer(ioc_);
  conn.timer = &timer;
  struct timer_guard {
    connection& c;
    ~timer_guard() { c.timer = nullptr; }
  } tg{conn};
  beast::flat_buffer buffer;
  while (!stopping_) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(64 * 1024);
    conn.state = conn_state::idle;
    tcp.expires_after(idle_timeout);
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, nothrow);
    if (rec) co_return;  // peer closed, timed out, or sent garbage: nothing to answer
    auto started = std::chrono::steady_clock::now();
    request req = parser.release();
    // A stat per request: the test that replaced the file sees the new key
    // accepted by the very next request, with no signal and no race.
    if (key_file_) {
      if (auto key = key_file_->changed()) handler_.set_api_key(std::move(*key));
    }
    reply r = handler_.handle(req, {std::chrono::system_clock::now(), started});

    if (r.delay.count() > 0) {
      conn.state = conn_state::waiting;
      tcp.expires_never();
      timer.expires_after(r.delay);
      auto [tec] = co_await timer.async_wait(nothrow);
      if (tec || stopping_) co_return;
    }

    switch (r.act) {
      case reply::action::respond: {
        conn.state = conn_state::writing;
        if (stopping_) r.res.keep_alive(false);
        tcp.expires_after(write_timeout);
        auto [wec, wn] = co_await http::async_write(stream, r.res, nothrow);
        access_log(remote, req, r.res.result_int(), r.res.body().size(), r.fault, started);
        if (wec) co_return;
        if (!r.res.keep_alive()) {
          co_await close_gracefully(stream);
          co_return;
        }
        break;
      }
      case reply::action::truncate: {
        conn.state = conn_state::writing;
        tcp.expires_after(write_timeout);
        http::response_serializer<http::string_body> sr(r.res);
        auto [hec, hn] = co_await http::async_write_header(stream, sr, nothrow);
        if (!hec) {
          co_await asio::async_write(stream, asio::buffer(r.res.body().data(), r.truncate_at),
                                     nothrow);
        }
        access_log(remote, req, r.res.result_int(), r.truncate_at, r.fault, started);
        // No TLS close_notify: the client must see the body end early.
        tcp.close();
        co_return;
      }
      case reply::action::reset: {
        access_log(remote, req, 0, 0, r.fault, started);
        boost::system::error_code ec;
        tcp.socket().set_option(asio::socket_base::linger(true, 0), ec);
        tcp.close();
        co_return;
      }
      case reply::action::stall: {
        access_log(remote, req, 0, 0, r.fault, started);
        conn.state = conn_state::stalled;
        tcp.expires_never();
        // Hold the connection, discarding anything sent, until the client gives up.
        std::array<char, 1024> sink{};
        for (;;) {
          auto [sec, sn] = co_await stream.async_read_some(asio::buffer(sink), nothrow);
          if (sec || stopping_) co_return;
        }
      }
    }
  }
}

void server::access_log(const std::string& remote, const request& req, unsigned status,
                        std::size_t bytes, const std::string& fault,
                        std::chrono::steady_clock::time_point started) {
  if (opts_.quiet) return;
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::steady_clock::now() - started)
                .count();
  char dur[32];
  std::snprintf(dur, sizeof dur, "%.1fms", static_cast<double>(us) / 1000.0);
  // Method, target and outcome only: request headers (Authorization) never reach the log.
  std::cerr << now_iso() << " " << remote << " \"" << req.method_string() << " " << req.target()
            << "\" " << status << " " << bytes << " fault=" << fault << " " << dur << std::endl;
}

}  // namespace cmp::mock
