// The local listener's request path on hostile bytes: Beast's parser with
// the server's limits, then routing, negotiation and auth in handle().
// Property: no crash, no sanitizer report, and every answer is one the
// contract allows (405 carries Allow, 401 carries WWW-Authenticate).
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory_resource>
#include <set>
#include <tuple>

#include "cmp/server/handler.hpp"
#include "cmp/server/http_server.hpp"

namespace http = boost::beast::http;

namespace {

cmp::server::method to_method(http::verb v) {
  switch (v) {
    case http::verb::get: return cmp::server::method::get;
    case http::verb::head: return cmp::server::method::head;
    case http::verb::post: return cmp::server::method::post;
    default: return cmp::server::method::other;
  }
}

const cmp::server::handler_context& context() {
  static const cmp::server::handler_context ctx = [] {
    cmp::server::handler_context c;
    auto views = std::make_shared<cmp::snapshot::served_views>();
    c.views = [views] { return views; };
    c.upstreams = [](cmp::server::wall_clock::time_point) {
      cmp::server::upstream_status u;
      u.name = "default";
      u.url = "https://example.invalid/api/v1/metrics/organizations/o";
      u.last_error = "HTTP 503 <b>&\"\n";
      return std::vector<cmp::server::upstream_status>{u};
    };
    c.reload = [] { return std::string(); };
    c.lifecycle_enabled = true;
    c.authorize = [](std::string_view h) { return h == "Basic dTpw"; };
    return c;
  }();
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // Pipelined: keep parsing requests out of the same bytes, as a session does.
  // As in http_server.cpp: fields in a per-request arena over a reused
  // buffer, spilling to the heap for big headers.
  alignas(std::max_align_t) static std::array<std::byte, 2048> header_arena;
  for (int n = 0; n < 8 && !input.empty(); ++n) {
    std::pmr::monotonic_buffer_resource arena(header_arena.data(), header_arena.size());
    http::request_parser<http::empty_body, std::pmr::polymorphic_allocator<char>> parser(
        std::piecewise_construct, std::make_tuple(),
        std::make_tuple(std::pmr::polymorphic_allocator<char>(&arena)));
    parser.header_limit(8 * 1024);
    parser.body_limit(0);
    parser.eager(true);
    boost::system::error_code ec;
    const auto used = parser.put(boost::asio::buffer(input.data(), input.size()), ec);
    if (ec || !parser.is_header_done()) return 0;
    input.remove_prefix(used);
    const auto& req = parser.get();
    auto field = [&](http::field f) {
      auto it = req.find(f);
      return it == req.end() ? std::string_view{} : std::string_view(it->value().data(), it->value().size());
    };
    cmp::server::request_view view;
    view.verb = to_method(req.method());
    view.target = {req.target().data(), req.target().size()};
    view.accept = field(http::field::accept);
    view.accept_encoding = field(http::field::accept_encoding);
    view.authorization = field(http::field::authorization);
    auto it = req.find("X-Prometheus-Scrape-Timeout-Seconds");
    if (it != req.end()) view.scrape_timeout = {it->value().data(), it->value().size()};
    const auto answer = cmp::server::handle(view, context(), cmp::server::wall_clock::now());
    if (const auto* m = std::get_if<cmp::server::metrics_request>(&answer)) {
      if (m->wait_for_first.count() < 0) std::abort();
      continue;
    }
    const auto& resp = std::get<cmp::server::response>(answer);
    static const std::set<unsigned> allowed = {200, 401, 403, 404, 405, 500, 503};
    if (!allowed.contains(resp.status)) std::abort();
    auto has = [&](std::string_view name) {
      for (const auto& [k, v] : resp.headers)
        if (k == name) return true;
      return false;
    };
    if (resp.status == 405 && !has("Allow")) std::abort();
    if (resp.status == 401 && !has("WWW-Authenticate")) std::abort();
  }
  return 0;
}
