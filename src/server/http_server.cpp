#include "cmp/server/http_server.hpp"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <array>
#include <charconv>
#include <ctime>
#include <limits>
#include <list>
#include <memory_resource>
#include <span>
#include <tuple>
#include <variant>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cmp/asio.hpp"
#include "cmp/config/config.hpp"
#include "cmp/server/scrape_body.hpp"
#include "cmp/server/web_security.hpp"

namespace cmp::server {

using namespace std::chrono_literals;

namespace {

std::string_view reason_phrase(unsigned status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// RFC 9110 IMF-fixdate, e.g. "Wed, 25 Nov 2026 12:00:05 GMT", formatted once
// per second: snprintf for every response was ~3 % of a small scrape's CPU.
class http_date {
 public:
  std::string_view operator()(wall_clock::time_point t) {
    const std::time_t tt = wall_clock::to_time_t(t);
    if (tt != formatted_at_) {
      static constexpr std::array<const char*, 7> days = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
      static constexpr std::array<const char*, 12> months = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
      std::tm tm{};
      gmtime_r(&tt, &tm);
      const int n = std::snprintf(text_.data(), text_.size(), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                                  days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
                                  tm.tm_hour, tm.tm_min, tm.tm_sec);
      size_ = static_cast<std::size_t>(std::max(n, 0));
      formatted_at_ = tt;
    }
    return {text_.data(), size_};
  }

 private:
  std::time_t formatted_at_ = std::numeric_limits<std::time_t>::min();
  std::array<char, 64> text_{};
  std::size_t size_ = 0;
};

method to_method(http::verb v) {
  switch (v) {
    case http::verb::get: return method::get;
    case http::verb::head: return method::head;
    case http::verb::post: return method::post;
    default: return method::other;
  }
}

bool is_normal_close(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
         ec == beast::error::timeout || ec == asio::error::bad_descriptor ||
         ec == asio::ssl::error::stream_truncated;
}

// Completion condition for a response: asio's transfer_all hands write_some
// at most 64 KiB at a time, so a 100 KB body took two sendmsg calls and a
// 1 MB one sixteen. 256 KiB per call still lets other connections' responses
// in between the chunks of a large one (its p99 under load).
std::size_t whole_response(const boost::system::error_code& ec, std::size_t) {
  return ec ? 0 : 256 * 1024;
}

// The answer to a request that could not be read; nullopt when there is
// no one to answer (the client went away or stalled).
std::optional<answer> refusal(const boost::system::error_code& ec, spdlog::logger& log) {
  response r;
  if (ec == http::error::header_limit) {
    r.status = 431;
    r.body = "request header fields too large (limit 8 KiB)\n";
  } else if (ec == http::error::body_limit || ec == http::error::unexpected_body) {
    r.status = 413;
    r.body = "request bodies are not accepted\n";
  } else if (is_normal_close(ec) || ec == http::error::partial_message) {
    return std::nullopt;
  } else {
    r.status = 400;
    r.body = fmt::format("bad request: {}\n", ec.message());
  }
  log.debug("rejected request: {}", ec.message());
  return r;
}

}  // namespace

tcp::endpoint parse_listen_address(const std::string& address) {
  // The syntax is the config's (one parser for `listen` and the flag).
  const auto parsed = config::parse_listen_address(address, true);
  if (!parsed) throw std::invalid_argument(config::listen_address_problem(address, true));
  std::string host = parsed->host;
  if (host.empty()) host = "0.0.0.0";  // ":9753" listens everywhere, like Go exporters
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec) throw std::invalid_argument("\"" + address + "\": \"" + host + "\" is not an IP address");
  return {ip, parsed->port};
}

struct http_server::impl {
  // One connection's bookkeeping, for the connection count and for closing
  // idle keep-alive connections at shutdown.
  struct connection {
    tcp::socket* socket = nullptr;
    bool busy = false;
  };
  // One connection's answer buffers, reused from request to request (no
  // allocation once grown).
  struct reply {
    std::string head;
    scrape_body scrape;  // of a served /metrics
    std::vector<asio::const_buffer> buffers;
  };

  impl(asio::io_context& io, handler_context c, telemetry::registry& m, server_options o,
       std::shared_ptr<spdlog::logger> l)
      : ioc(io),
        acceptor(io),
        ctx(std::move(c)),
        metrics(m),
        self(m, o.self_metrics_max_age),
        options(o),
        log(std::move(l)) {}

  asio::io_context& ioc;
  tcp::acceptor acceptor;
  handler_context ctx;
  telemetry::registry& metrics;
  self_metrics self;
  http_date date;
  http_date last_modified_date;
  server_options options;
  std::shared_ptr<spdlog::logger> log;
  std::shared_ptr<asio::ssl::context> tls;
  std::vector<std::string> allowed_sans;  // web config client_allowed_sans; empty: any

  bool client_allowed(SSL* ssl) const {
    if (allowed_sans.empty()) return true;
    X509* cert = SSL_get1_peer_certificate(ssl);
    const bool ok = server::client_allowed(cert, allowed_sans);
    X509_free(cert);
    return ok;
  }
  std::list<connection> connections;
  bool stopping = false;

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> refuse(tcp::socket socket);
  asio::awaitable<void> session(tcp::socket socket);
  asio::awaitable<void> tls_session(tcp::socket socket, std::shared_ptr<asio::ssl::context> tls);
  template <class Stream>
  asio::awaitable<void> serve(Stream& stream, beast::tcp_stream& tcp, connection& conn);
  template <class Request>
  answer route(const Request& req, wall_clock::time_point now);
  asio::awaitable<std::shared_ptr<const snapshot::exposition_view>> resolve_view(const metrics_request& m);
  void metrics_head(std::string& head, const metrics_request& m, const scrape_body& body,
                    wall_clock::time_point now);
  void finish_head(std::string& head, const response* r, bool keep_alive, bool http10, wall_clock::time_point now);

  void update_connection_gauge() { metrics.set_open_connections(connections.size()); }
};

asio::awaitable<void> http_server::impl::accept_loop() {
  while (!stopping) {
    auto [ec, socket] = co_await acceptor.async_accept(nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping) break;
      // EMFILE and friends: back off briefly instead of spinning.
      log->warn("accept failed: {}", ec.message());
      asio::steady_timer t(ioc, 100ms);
      co_await t.async_wait(nothrow);
      continue;
    }
    if (connections.size() >= options.max_connections) {
      metrics.count_connection_refused();
      asio::co_spawn(ioc, refuse(std::move(socket)), asio::detached);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto on_done = [l = log](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        l->error("connection aborted: {}", ex.what());
      }
    };
    if (tls) {
      asio::co_spawn(ioc, tls_session(std::move(socket), tls), on_done);
    } else {
      asio::co_spawn(ioc, session(std::move(socket)), on_done);
    }
  }
}

asio::awaitable<void> http_server::impl::refuse(tcp::socket socket) {
  static constexpr std::string_view answer =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
      "Content-Length: 21\r\nConnection: close\r\nRetry-After: 1\r\n\r\ntoo many connections\n";
  beast::tcp_stream stream(std::move(socket));
  stream.expires_after(1s);
  co_await asio::async_write(stream, asio::buffer(answer), nothrow);
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

// Registers a connection for its lifetime, exceptions included.
class connection_slot {
 public:
  explicit connection_slot(http_server::impl& s) : s_(s) {
    s_.connections.emplace_back();
    it_ = std::prev(s_.connections.end());
    s_.update_connection_gauge();
  }
  ~connection_slot() {
    s_.connections.erase(it_);
    s_.update_connection_gauge();
  }
  connection_slot(const connection_slot&) = delete;
  connection_slot& operator=(const connection_slot&) = delete;
  http_server::impl::connection& get() { return *it_; }

 private:
  http_server::impl& s_;
  std::list<http_server::impl::connection>::iterator it_;
};

asio::awaitable<void> http_server::impl::session(tcp::socket socket) {
  connection_slot slot(*this);
  beast::tcp_stream stream(std::move(socket));
  slot.get().socket = &stream.socket();
  co_await serve(stream, stream, slot.get());
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
}

asio::awaitable<void> http_server::impl::tls_session(tcp::socket socket,
                                                     std::shared_ptr<asio::ssl::context> tls_ctx) {
  connection_slot slot(*this);
  auto& conn = slot.get();
  beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls_ctx);
  conn.socket = &beast::get_lowest_layer(stream).socket();
  beast::get_lowest_layer(stream).expires_after(options.header_timeout);
  auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, nothrow);
  if (!ec && !client_allowed(stream.native_handle())) {
    log->debug("client certificate has none of the allowed SANs; connection closed");
  } else if (!ec) {
    co_await serve(stream, beast::get_lowest_layer(stream), conn);
    beast::get_lowest_layer(stream).expires_after(1s);
    co_await stream.async_shutdown(nothrow);
  } else if (!is_normal_close(ec)) {
    log->debug("TLS handshake failed: {}", ec.message());
  }
}

// The answer to a parsed request: handle() on its method, target and the
// headers it reads. Refused scrapes (401, 405) are counted too:
// cerebras_proxy_scrapes_total is by status, and a scraper with bad
// credentials should show up there.
template <class Request>
answer http_server::impl::route(const Request& req, wall_clock::time_point now) {
  auto field = [&](std::string_view name) -> std::string_view {
    auto it = req.find(beast::string_view(name.data(), name.size()));
    return it == req.end() ? std::string_view{} : std::string_view(it->value().data(), it->value().size());
  };
  request_view view;
  view.verb = to_method(req.method());
  view.target = {req.target().data(), req.target().size()};
  view.accept = field("Accept");
  view.accept_encoding = field("Accept-Encoding");
  view.authorization = field("Authorization");
  view.scrape_timeout = field("X-Prometheus-Scrape-Timeout-Seconds");
  auto a = handle(view, ctx, now);
  if (const auto* r = std::get_if<response>(&a); r && view.target.substr(0, view.target.find_first_of("?#")) == "/metrics")
    metrics.count_scrape(r->status);
  return a;
}

// The view a /metrics request is served from, after the two waits that
// may delay it: for an upstream whose first series are being merged (off
// this thread), rather than answer with an `up` upstream and no series;
// and before the first snapshot of all (first start), within the scrape
// timeout. Both are bounded, and end at stop().
asio::awaitable<std::shared_ptr<const snapshot::exposition_view>> http_server::impl::resolve_view(
    const metrics_request& m) {
  auto pick = [&]() -> std::shared_ptr<const snapshot::exposition_view> {
    auto views = ctx.views();
    return m.upstream.empty() ? views->all : views->upstream(m.upstream);
  };
  if (ctx.view_catching_up && ctx.view_catching_up()) {
    // Woken when views are installed, instead of looking every few ms.
    asio::steady_timer timer(ioc, std::chrono::steady_clock::now() + 1s);
    while (ctx.view_catching_up() && !stopping && std::chrono::steady_clock::now() < timer.expiry()) {
      if (!ctx.view_installed) {
        co_await timer.async_wait(nothrow);
        break;
      }
      using namespace asio::experimental::awaitable_operators;
      co_await (ctx.view_installed->async_wait(nothrow) || timer.async_wait(nothrow));
    }
  }
  // Dropped by a reload since handle() looked (only across the wait above):
  // served as having no snapshot.
  auto view = pick();
  if (!view) view = snapshot::empty_view();
  if (!view->last_modified && m.wait_for_first.count() > 0) {
    const auto deadline = std::chrono::steady_clock::now() + m.wait_for_first;
    asio::steady_timer timer(ioc);
    while (!view->last_modified && !stopping && std::chrono::steady_clock::now() < deadline) {
      timer.expires_after(std::min<std::chrono::steady_clock::duration>(
          50ms, deadline - std::chrono::steady_clock::now()));
      co_await timer.async_wait(nothrow);
      if (auto next = pick()) view = std::move(next);
    }
  }
  co_return view;
}

void http_server::impl::metrics_head(std::string& head, const metrics_request& m, const scrape_body& body,
                                     wall_clock::time_point now) {
  head.clear();
  head += "HTTP/1.1 200 OK\r\nContent-Type: ";
  head += m.format == exposition_format::openmetrics ? openmetrics_content_type : text_content_type;
  head += "\r\nContent-Length: ";
  append_uint(head, body.size);
  if (m.gzip) head += "\r\nContent-Encoding: gzip";
  head += "\r\nVary: Accept, Accept-Encoding";
  if (const auto& t = body.view->last_modified) {
    head += "\r\nLast-Modified: ";
    head += last_modified_date(*t);
    head += "\r\nAge: ";
    append_uint(head, static_cast<std::uint64_t>(std::max<long long>(
                          0, std::chrono::duration_cast<std::chrono::seconds>(now - *t).count())));
  }
  head += "\r\nCache-Control: no-store";
}

// The rest of a head after its status line and own fields (a `response`'s
// are written here): every configured header, Date, Connection.
void http_server::impl::finish_head(std::string& head, const response* r, bool keep_alive, bool http10,
                                    wall_clock::time_point now) {
  if (r) {
    head.clear();
    head += "HTTP/1.1 ";
    append_uint(head, r->status);
    head += ' ';
    head += reason_phrase(r->status);
    head += "\r\nContent-Type: ";
    head += r->content_type;
    head += "\r\nContent-Length: ";
    append_uint(head, r->body.size());
    for (const auto& [name, value] : r->headers) head.append("\r\n").append(name).append(": ").append(value);
  }
  for (const auto& [name, value] : ctx.response_headers) head.append("\r\n").append(name).append(": ").append(value);
  head += "\r\nDate: ";
  head += date(now);
  if (!keep_alive) {
    head += "\r\nConnection: close";
  } else if (http10) {
    head += "\r\nConnection: keep-alive";  // 1.0 clients close unless told otherwise
  }
  head += "\r\n\r\n";
}

// A request at a time: read it (the idle wait for its first byte, then the
// header under the header timeout), answer it, write the answer in one
// scatter write (the same for TCP and TLS: `Stream` is either).
template <class Stream>
asio::awaitable<void> http_server::impl::serve(Stream& stream, beast::tcp_stream& tcp, connection& conn) {
  beast::flat_buffer buffer(options.header_limit + 1024);
  alignas(std::max_align_t) std::array<std::byte, 2048> header_arena;
  reply out;
  while (!stopping) {
    if (buffer.size() == 0) {
      tcp.expires_after(options.idle_timeout);
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(options.header_limit), nothrow);
      if (ec) break;
      buffer.commit(n);
    }
    // Beast allocates the target and every header field one by one; a
    // per-request arena over a buffer the connection reuses keeps a scrape
    // free of malloc (larger headers, up to the limit, spill to the heap).
    std::pmr::monotonic_buffer_resource arena(header_arena.data(), header_arena.size());
    http::request_parser<http::empty_body, std::pmr::polymorphic_allocator<char>> parser(
        std::piecewise_construct, std::make_tuple(), std::make_tuple(std::pmr::polymorphic_allocator<char>(&arena)));
    parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
    parser.body_limit(0);
    tcp.expires_after(options.header_timeout);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, nothrow);
    // Busy (spared by stop()) only from here: a request still arriving is not
    // in flight, and waiting for it could hold shutdown for header_timeout.
    conn.busy = true;
    const auto now = wall_clock::now();
    std::optional<answer> a = ec ? refusal(ec, *log) : route(parser.get(), now);
    if (!a) break;  // the client went away or stalled: nothing to answer
    const bool head_only = !ec && parser.get().method() == http::verb::head;
    bool keep_alive = !ec && parser.get().keep_alive();
    const auto* r = std::get_if<response>(&*a);
    if (!r) {
      const auto& m = std::get<metrics_request>(*a);
      auto view = co_await resolve_view(m);
      metrics.count_scrape(200);
      out.scrape.assemble(std::move(view), m.upstream.empty() ? self.get(m.format, wall_clock::now()) : nullptr,
                          m.format, m.gzip);
      metrics_head(out.head, m, out.scrape, now);
    }
    // After the waits too: a stop() during them must be announced, or the
    // client reuses a connection the loop is about to close.
    if (stopping) keep_alive = false;
    finish_head(out.head, r, keep_alive, !ec && parser.get().version() == 10, now);
    out.buffers.assign(1, asio::buffer(out.head));
    if (!head_only && r) out.buffers.push_back(asio::buffer(r->body));
    if (!head_only && !r)
      for (auto part : out.scrape.parts) out.buffers.push_back(asio::buffer(part.data(), part.size()));
    tcp.expires_after(options.write_timeout);
    auto [wec, written] = co_await asio::async_write(
        stream, std::span<const asio::const_buffer>(out.buffers.data(), out.buffers.size()), whole_response, nothrow);
    out.scrape.release();
    conn.busy = false;
    if (wec || !keep_alive) break;
  }
}

http_server::http_server(asio::io_context& ioc, handler_context ctx, telemetry::registry& metrics,
                         server_options options, std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_unique<impl>(ioc, std::move(ctx), metrics, options, std::move(log))) {}

http_server::~http_server() = default;

void http_server::listen(const std::string& address) {
  const auto endpoint = parse_listen_address(address);
  auto& a = impl_->acceptor;
  a.open(endpoint.protocol());
  a.set_option(tcp::acceptor::reuse_address(true));
  a.bind(endpoint);
  a.listen(asio::socket_base::max_listen_connections);
}

tcp::endpoint http_server::local_endpoint() const { return impl_->acceptor.local_endpoint(); }

void http_server::set_tls(std::shared_ptr<asio::ssl::context> tls, std::vector<std::string> allowed_sans) {
  impl_->tls = std::move(tls);
  impl_->allowed_sans = std::move(allowed_sans);
}

void http_server::set_handler_context(handler_context ctx) { impl_->ctx = std::move(ctx); }

void http_server::start() {
  asio::co_spawn(impl_->ioc, impl_->accept_loop(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
}

void http_server::stop() {
  impl_->stopping = true;
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
  for (auto& c : impl_->connections)
    if (!c.busy && c.socket) c.socket->cancel(ec);
}

void http_server::abort() {
  stop();
  boost::system::error_code ec;
  for (auto& c : impl_->connections)
    if (c.socket) c.socket->close(ec);
}

std::size_t http_server::open_connections() const noexcept { return impl_->connections.size(); }

}  // namespace cmp::server
