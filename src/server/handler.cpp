#include "cmp/server/handler.hpp"

#include "cmp/telemetry/build_info.hpp"

#include <charconv>
#include <cmath>
#include <ctime>

#include <fmt/format.h>

namespace cmp::server {

namespace {

using namespace std::chrono_literals;

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find_first_of("?#"));
}

response text(unsigned status, std::string body) {
  response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

response method_not_allowed(std::string allow) {
  auto r = text(405, "method not allowed\n");
  r.headers.emplace_back("Allow", std::move(allow));
  return r;
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string format_age(std::optional<wall_clock::time_point> t, wall_clock::time_point now) {
  if (!t) return "never";
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(now - *t).count();
  return fmt::format("{}s ago", std::max<long long>(0, s));
}

std::string format_time(std::optional<wall_clock::time_point> t) {
  if (!t) return "never";
  const std::time_t tt = wall_clock::to_time_t(*t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return std::string(buf, n);
}

// /-/ready promises one line per upstream; an error text (e.g. quoted from an
// upstream response) may carry line breaks.
std::string one_line(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

bool snapshot_fresh(const upstream_status& u, wall_clock::time_point now) {
  return u.snapshot_fetched_at && now - *u.snapshot_fetched_at < u.max_staleness;
}

response ready(const handler_context& ctx, wall_clock::time_point now) {
  std::string reasons;
  for (const auto& u : ctx.upstreams(now)) {
    if (snapshot_fresh(u, now)) continue;
    if (!u.snapshot_fetched_at) {
      reasons += fmt::format("upstream {}: no snapshot yet", u.name);
    } else {
      reasons += fmt::format("upstream {}: snapshot is {}s old (max_staleness {}s)", u.name,
                             std::chrono::duration_cast<std::chrono::seconds>(now - *u.snapshot_fetched_at).count(),
                             std::chrono::duration_cast<std::chrono::seconds>(u.max_staleness).count());
    }
    if (!u.last_error.empty()) reasons += fmt::format("; last error: {}", one_line(u.last_error));
    reasons += '\n';
  }
  return reasons.empty() ? text(200, "ok\n") : text(503, std::move(reasons));
}

response status_page(const handler_context& ctx, wall_clock::time_point now) {
  std::string rows;
  for (const auto& u : ctx.upstreams(now)) {
    rows += fmt::format(
        "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{} / {}</td>"
        "<td>{}</td></tr>\n",
        html_escape(u.name), html_escape(u.url), u.up ? "ok" : "bad", u.up ? "up" : "down",
        format_time(u.last_success), format_age(u.snapshot_fetched_at, now), u.budget_left,
        u.budget_limit, html_escape(u.last_error.empty() ? "-" : u.last_error));
  }
  response r;
  r.content_type = "text/html; charset=utf-8";
  r.body = fmt::format(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cerebras-metrics-proxy</title>\n"
      "<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.3em .8em;text-align:left}}"
      ".ok{{color:#070}}.bad{{color:#b00}}</style></head><body>\n"
      "<h1>cerebras-metrics-proxy</h1>\n<p>Version {} ({})</p>\n"
      "<table>\n<tr><th>Upstream</th><th>URL</th><th>State</th><th>Last success</th>"
      "<th>Snapshot age</th><th>Budget left</th><th>Last error</th></tr>\n{}</table>\n"
      "<p><a href=\"/metrics\">/metrics</a> &middot; <a href=\"/-/ready\">/-/ready</a> &middot; "
      "<a href=\"/-/healthy\">/-/healthy</a></p>\n</body></html>\n",
      CMP_VERSION, telemetry::build_revision(), rows);
  return r;
}

std::chrono::milliseconds first_snapshot_wait(std::string_view header) {
  double seconds = 0;
  auto [p, ec] = std::from_chars(header.data(), header.data() + header.size(), seconds);
  if (ec != std::errc{} || p != header.data() + header.size() || !std::isfinite(seconds)) return 0ms;
  // Leave half a second to send the answer before the scraper gives up.
  seconds = std::min(seconds - 0.5, 120.0);
  if (seconds <= 0) return 0ms;
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> query_parameter(std::string_view target, std::string_view key) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(q + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) != key) continue;
    const std::string_view raw = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    std::string value;
    value.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '+') {
        value += ' ';
      } else if (raw[i] == '%') {
        if (i + 2 >= raw.size()) return std::string{};
        const int hi = hex_digit(raw[i + 1]), lo = hex_digit(raw[i + 2]);
        if (hi < 0 || lo < 0) return std::string{};
        value += static_cast<char>(hi * 16 + lo);
        i += 2;
      } else {
        value += raw[i];
      }
    }
    return value;
  }
  return std::nullopt;
}

answer handle(const request_view& req, const handler_context& ctx, wall_clock::time_point now) {
  const auto path = path_of(req.target);
  const bool read_only = req.verb == method::get || req.verb == method::head;

  // Liveness stays open even with auth configured: orchestrators probe it
  // without credentials, and it reveals nothing.
  if (path == "/-/healthy" || path == "/healthz") {
    if (!read_only) return method_not_allowed("GET, HEAD");
    return text(200, "ok\n");
  }
  // Credentials before routing, as exporter-toolkit does: without them a
  // client learns nothing, not even which paths exist.
  if (ctx.authorize && !ctx.authorize(req.authorization)) {
    auto r = text(401, "unauthorized\n");
    r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"cerebras-metrics-proxy\"");
    return r;
  }
  const bool known = path == "/metrics" || path == "/-/ready" || path == "/readyz" || path == "/" ||
                     path == "/-/reload";
  if (!known) return text(404, "not found\n");

  if (path == "/-/reload") {
    if (req.verb != method::post) return method_not_allowed("POST");
    if (!ctx.lifecycle_enabled) return text(403, "Lifecycle API is not enabled.\n");
    auto error = ctx.reload();
    if (!error.empty()) return text(500, "failed to reload config: " + error + "\n");
    return text(200, "ok\n");
  }
  if (!read_only) return method_not_allowed("GET, HEAD");
  if (path == "/-/ready" || path == "/readyz") return ready(ctx, now);
  if (path == "/") return status_page(ctx, now);

  metrics_request r;
  if (auto name = query_parameter(req.target, "upstream")) {
    // Only configured names: a scrape job must fail loudly on a typo rather
    // than record an empty target as healthy.
    if (!ctx.views || !ctx.views()->upstream(*name)) return text(404, "unknown upstream\n");
    r.upstream = std::move(*name);
  }
  r.format = choose_format(req.accept);
  r.gzip = accepts_gzip(req.accept_encoding);
  r.wait_for_first = first_snapshot_wait(req.scrape_timeout);
  return r;
}

}  // namespace cmp::server
