#include "cmp/upstream/http_fetch.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include "cmp/asio.hpp"
#include "cmp/snapshot/gzip.hpp"
#include "cmp/upstream/outcome.hpp"

namespace cmp::upstream {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;


namespace {

using steady = std::chrono::steady_clock;

bool is_timeout(const boost::system::error_code& ec) {
  return ec == beast::error::timeout || ec == asio::error::timed_out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Fails the result with a fault and a reason.
void fail(fetch_result& r, errc fault, std::string why) {
  r.fault = fault;
  r.error = std::move(why);
}

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// The API's error text from a non-2xx body. An error body is small; a gzip
// one is decoded here under its own small limit (the body itself is still
// decoded, or refused, by decode_body() like any other).
std::string api_message_of(const fetch_result& r, const fetch_request& req) {
  constexpr std::size_t error_body_limit = 64 * 1024;
  if (!r.gzip_encoded) return quote_api_message(r.body, req.api_key.expose());
  const auto decoded = snapshot::gzip_decompress(r.body, error_body_limit, nullptr);
  return decoded ? quote_api_message(*decoded, req.api_key.expose()) : std::string();
}

template <class Stream>
asio::awaitable<void> exchange(Stream& stream, beast::tcp_stream& tcp, steady::time_point start,
                               steady::time_point deadline, const fetch_request& req,
                               const std::string& host_header, fetch_result& r) {
  http::request<http::empty_body> q{http::verb::get, req.url.encoded_target().empty()
                                                         ? beast::string_view("/")
                                                         : beast::string_view(req.url.encoded_target().data(),
                                                                              req.url.encoded_target().size()),
                                    11};
  q.set(http::field::host, host_header);
  q.set(http::field::user_agent, req.user_agent);
  q.set(http::field::accept, "text/plain;version=0.0.4;q=1,*/*;q=0.1");
  q.set(http::field::accept_encoding, "gzip");
  q.set(http::field::connection, "close");
  std::string auth = "Bearer ";
  auth += req.api_key.expose();
  q.set(http::field::authorization, auth);

  tcp.expires_at(deadline);
  r.request_sent_after = steady::now() - start;
  auto [wec, written] = co_await http::async_write(stream, q, nothrow);
  if (wec) {
    fail(r, is_timeout(wec) ? errc::timeout : errc::protocol, "sending the request failed: " + wec.message());
    co_return;
  }

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(64 * 1024);
  parser.body_limit(req.body_limit);
  // The head first: its arrival bounds when the API wrote its Date header.
  auto [hec, head] = co_await http::async_read_header(stream, buffer, parser, nothrow);
  r.head_received_after = steady::now() - start;
  boost::system::error_code rec = hec;
  if (!rec) {
    r.date = std::string(parser.get()[http::field::date]);
    auto [bec, read] = co_await http::async_read(stream, buffer, parser, nothrow);
    rec = bec;
  }
  if (rec == http::error::body_limit) {
    fail(r, errc::body_too_large, "response body exceeds the " + std::to_string(req.body_limit >> 20) +
                            " MiB limit; refused");
    co_return;
  }
  if (rec) {
    fail(r, is_timeout(rec) ? errc::timeout : errc::protocol, "reading the response failed: " + rec.message());
    co_return;
  }
  auto& res = parser.get();
  // The status is only reported once the body is usable: a refused or
  // corrupt body is a failed exchange (status 0), whatever the server said.
  const unsigned status = res.result_int();
  auto header = [&](std::string_view name) {
    auto it = res.find(beast::string_view(name.data(), name.size()));
    return it == res.end() ? std::string() : std::string(it->value());
  };
  r.content_type = header("Content-Type");
  r.retry_after = header("Retry-After");
  r.ratelimit_reset = header("x-ratelimit-reset-requests");
  if (r.ratelimit_reset.empty()) r.ratelimit_reset = header("x-ratelimit-reset");
  r.should_retry = header("x-should-retry");
  r.location = header("Location");
  // Prometheus gunzips a body whose Content-Encoding is exactly `gzip` and
  // parses any other body as it arrived (identity, x-gzip, an unknown coding
  // or a list alike): so does the daemon, to take what Prometheus takes.
  r.body = std::move(res.body());
  r.gzip_encoded = header("Content-Encoding") == "gzip";
  r.status = status;
  if (r.status < 200 || r.status >= 300) {
    r.error = "HTTP " + std::to_string(r.status);
    if (r.status >= 300 && r.status < 400)
      r.error += " redirect" + (r.location.empty() ? std::string() : " to " + r.location) +
                 " (redirects are not followed; fix the url)";
    r.api_message = api_message_of(r, req);
  }
}

// What a 407 means, by whether credentials were sent; never the password.
std::string proxy_auth_failure(const proxy_endpoint& proxy) {
  const std::string where = "proxy " + proxy.host + ":" + proxy.port + " (from " + proxy.origin + ")";
  if (proxy.authorization.empty())
    return where + " requires authentication (HTTP 407): put the credentials into " + proxy.origin +
           " as http://user:password@host:port (percent-encode reserved characters)";
  return "proxy authentication failed: " + where + " refused the user and password (HTTP 407); " +
         "check the credentials in " + proxy.origin;
}

// CONNECT through the proxy on an already connected stream.
asio::awaitable<bool> proxy_connect(beast::tcp_stream& tcp, steady::time_point deadline,
                                    const std::string& authority, const proxy_endpoint& proxy,
                                    fetch_result& r) {
  http::request<http::empty_body> q{http::verb::connect, authority, 11};
  q.set(http::field::host, authority);
  if (!proxy.authorization.empty()) {
    const auto value = proxy.authorization.expose();
    q.set(http::field::proxy_authorization, beast::string_view(value.data(), value.size()));
  }
  tcp.expires_at(deadline);
  auto [wec, w] = co_await http::async_write(tcp, q, nothrow);
  if (wec) {
    fail(r, is_timeout(wec) ? errc::timeout : errc::connect, "proxy CONNECT failed: " + wec.message());
    co_return false;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> parser;
  parser.skip(true);  // a CONNECT response has no body; the tunnel follows
  auto [rec, n] = co_await http::async_read_header(tcp, buffer, parser, nothrow);
  if (rec) {
    fail(r, is_timeout(rec) ? errc::timeout : errc::connect, "proxy CONNECT failed: " + rec.message());
    co_return false;
  }
  if (parser.get().result_int() == 407) {
    fail(r, errc::proxy_auth, proxy_auth_failure(proxy));
    co_return false;
  }
  if (parser.get().result_int() != 200) {
    fail(r, errc::connect, "proxy refused CONNECT with HTTP " + std::to_string(parser.get().result_int()));
    co_return false;
  }
  if (buffer.size() != 0) {
    fail(r, errc::protocol, "proxy sent data before the tunnel was established");
    co_return false;
  }
  co_return true;
}

}  // namespace

fetch_request make_fetch_request(const config::upstream& u, config::secret api_key,
                                 std::shared_ptr<asio::ssl::context> tls) {
  auto parsed = boost::urls::parse_uri(u.url);
  if (!parsed) throw std::invalid_argument("upstream " + u.name + ": bad url");
  fetch_request req;
  req.url = *parsed;
  req.api_key = std::move(api_key);
  req.tls = std::move(tls);
  req.timeout = u.timeout;
  req.user_agent = std::string("cerebras-metrics-proxy/") + CMP_VERSION;
  req.proxy = select_proxy(req.url, u.proxy_url, [](const char* n) { return std::getenv(n); });
  return req;
}

void decode_body(fetch_result& r, std::size_t limit) {
  if (!r.gzip_encoded) return;
  r.gzip_encoded = false;
  bool too_large = false;
  auto decoded = snapshot::gzip_decompress(r.body, limit, &too_large);
  if (!decoded) {
    // As if no usable response had arrived, whatever the status said.
    r.status = 0;
    r.body.clear();
    fail(r, too_large ? errc::body_too_large : errc::protocol,
         too_large ? "decompressed body exceeds the limit; refused" : "gzip body is corrupt or truncated");
    return;
  }
  r.body = std::move(*decoded);
}

std::shared_ptr<asio::ssl::context> make_client_tls(const std::string& ca_file) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);
  ctx->set_default_verify_paths();
  if (!ca_file.empty()) {
    boost::system::error_code ec;
    ctx->load_verify_file(ca_file, ec);
    if (ec) throw std::runtime_error("ca_file " + ca_file + ": cannot load PEM trust anchors: " + ec.message());
  }
  ctx->set_verify_mode(asio::ssl::verify_peer);
  return ctx;
}

std::optional<proxy_endpoint> select_proxy(const boost::urls::url_view& target,
                                           const std::string& configured,
                                           const std::function<const char*(const char*)>& env) {
  auto parse = [](std::string_view text, std::string origin) -> std::optional<proxy_endpoint> {
    std::string s(text);
    if (s.find("://") == std::string::npos) s = "http://" + s;
    auto u = boost::urls::parse_uri(s);
    if (!u || u->host().empty()) return std::nullopt;
    proxy_endpoint p{std::string(u->host_address()), u->has_port() ? std::string(u->port()) : "80",
                     std::move(origin), {}};
    if (u->has_userinfo()) p.authorization = config::secret("Basic " + base64(u->user() + ":" + u->password()));
    return p;
  };
  if (!configured.empty()) return parse(configured, "proxy_url");
  // Lower case first, then upper, like curl and Go (we are no CGI program,
  // so HTTP_PROXY cannot come from a request header: no httpoxy).
  auto get = [&](const char* upper, const char* lower_name) -> std::pair<std::string, std::string> {
    if (const char* v = env(lower_name); v && *v) return {v, lower_name};
    if (const char* v = env(upper); v && *v) return {v, upper};
    return {};
  };
  const bool https = target.scheme_id() == boost::urls::scheme::https;
  const auto [proxy, origin] = https ? get("HTTPS_PROXY", "https_proxy") : get("HTTP_PROXY", "http_proxy");
  if (proxy.empty()) return std::nullopt;
  const auto host = lower(std::string(target.host_address()));
  const std::string no_proxy = get("NO_PROXY", "no_proxy").first;
  std::size_t pos = 0;
  while (pos <= no_proxy.size()) {
    auto comma = no_proxy.find(',', pos);
    auto entry = lower(no_proxy.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    entry.erase(0, entry.find_first_not_of(" \t"));
    entry.erase(entry.find_last_not_of(" \t") + 1);
    if (auto colon = entry.rfind(':'); colon != std::string::npos && entry.find(']') == std::string::npos &&
                                       entry.find(':') == colon)
      entry.erase(colon);  // host:port entries: match the host
    if (!entry.empty()) {
      if (entry == "*") return std::nullopt;
      if (entry.front() == '.') entry.erase(0, 1);
      if (host == entry || (host.size() > entry.size() && host.ends_with(entry) &&
                            host[host.size() - entry.size() - 1] == '.'))
        return std::nullopt;
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return parse(proxy, origin);
}

asio::awaitable<fetch_result> fetch(const fetch_request& req) {
  auto ex = co_await asio::this_coro::executor;
  const auto start = steady::now();
  const auto deadline = start + req.timeout;
  fetch_result r;
  const bool https = req.url.scheme_id() == boost::urls::scheme::https;
  const std::string host(req.url.host_address());
  const std::string port = req.url.has_port() ? std::string(req.url.port()) : (https ? "443" : "80");
  const std::string authority = (req.url.host_type() == boost::urls::host_type::ipv6 ? "[" + host + "]" : host) +
                                ":" + port;
  std::string host_header(req.url.encoded_host_and_port());

  const std::string connect_host = req.proxy ? req.proxy->host : host;
  const std::string connect_port = req.proxy ? req.proxy->port : port;

  tcp::resolver resolver(ex);
  asio::steady_timer timer(ex);
  timer.expires_at(deadline);
  auto resolved = co_await (resolver.async_resolve(connect_host, connect_port, nothrow) ||
                            timer.async_wait(nothrow));
  if (resolved.index() == 1) {
    fail(r, errc::timeout, "resolving " + connect_host + " timed out");
    r.elapsed = steady::now() - start;
    co_return r;
  }
  auto [dec, endpoints] = std::get<0>(std::move(resolved));
  if (dec) {
    fail(r, errc::dns, "resolving " + connect_host + " failed: " + dec.message());
    r.elapsed = steady::now() - start;
    co_return r;
  }

  beast::tcp_stream stream(ex);
  // Whatever way this coroutine ends, the owner must forget the socket.
  struct socket_notice {
    const fetch_request& req;
    ~socket_notice() {
      if (req.on_socket) req.on_socket(nullptr);
    }
  } notice{req};
  if (req.on_socket) req.on_socket(&stream.socket());
  stream.expires_at(deadline);
  auto [cec, ep] = co_await stream.async_connect(endpoints, nothrow);
  if (cec) {
    fail(r, is_timeout(cec) ? errc::timeout : errc::connect,
         "connecting to " + connect_host + ":" + connect_port + " failed: " + cec.message());
    r.elapsed = steady::now() - start;
    co_return r;
  }
  boost::system::error_code ignored;
  stream.socket().set_option(tcp::no_delay(true), ignored);

  if (req.proxy && !co_await proxy_connect(stream, deadline, authority, *req.proxy, r)) {
    r.elapsed = steady::now() - start;
    co_return r;
  }

  if (!https) {
    co_await exchange(stream, stream, start, deadline, req, host_header, r);
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    r.elapsed = steady::now() - start;
    co_return r;
  }

  beast::ssl_stream<beast::tcp_stream> tls(std::move(stream), *req.tls);
  if (req.on_socket) req.on_socket(&beast::get_lowest_layer(tls).socket());
  if (!is_ip_literal(host)) SSL_set_tlsext_host_name(tls.native_handle(), host.c_str());
  tls.set_verify_mode(asio::ssl::verify_peer);
  tls.set_verify_callback(asio::ssl::host_name_verification(host));
  auto& lowest = beast::get_lowest_layer(tls);
  lowest.expires_at(deadline);
  auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::client, nothrow);
  if (hec) {
    if (is_timeout(hec)) {
      fail(r, errc::timeout, "TLS handshake timed out");
    } else {
      const long verify = SSL_get_verify_result(tls.native_handle());
      if (verify != X509_V_OK) {
        std::string why = std::string("TLS certificate verification failed: ") + X509_verify_cert_error_string(verify);
        // A TLS-intercepting proxy presents a certificate of its own CA.
        if (req.proxy)
          why += "; through proxy " + req.proxy->host + ":" + req.proxy->port +
                 ": if it intercepts TLS, add its CA certificate (PEM) to ca_file";
        fail(r, errc::tls_untrusted, std::move(why));
      } else {
        fail(r, errc::tls, "TLS handshake failed: " + hec.message());
      }
    }
    r.elapsed = steady::now() - start;
    co_return r;
  }
  co_await exchange(tls, lowest, start, deadline, req, host_header, r);
  r.elapsed = steady::now() - start;
  // Send close_notify but do not wait long for the peer's: the data is in.
  lowest.expires_after(250ms);
  co_await tls.async_shutdown(nothrow);
  co_return r;
}

}  // namespace cmp::upstream
