#include "handler.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <stdexcept>

#include "duration.hpp"
#include "cmp/server/negotiation.hpp"
#include "cmp/snapshot/gzip.hpp"
#include "metrics_data.hpp"

namespace cmp::mock {

namespace {

constexpr std::string_view api_prefix = "/api/v1/metrics/organizations/";
constexpr std::string_view prometheus_type = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::size_t window_cache_size = 4;

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Seconds with millisecond precision, as a JSON number.
std::string seconds_json(std::int64_t ms) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s%lld.%03lld", ms < 0 ? "-" : "",
                static_cast<long long>((ms < 0 ? -ms : ms) / 1000),
                static_cast<long long>((ms < 0 ? -ms : ms) % 1000));
  return buf;
}

std::string http_date(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size()) {
      unsigned v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc{} && p == s.data() + i + 3) {
        out += static_cast<char>(v);
        i += 2;
      } else {
        out += s[i];
      }
    } else {
      out += s[i];
    }
  }
  return out;
}

param_list parse_query(std::string_view q) {
  param_list out;
  while (!q.empty()) {
    std::string_view item = q.substr(0, q.find('&'));
    q = item.size() < q.size() ? q.substr(item.size() + 1) : "";
    if (item.empty()) continue;
    auto eq = item.find('=');
    if (eq == std::string_view::npos) out.emplace_back(percent_decode(item), "");
    else out.emplace_back(percent_decode(item.substr(0, eq)), percent_decode(item.substr(eq + 1)));
  }
  return out;
}

bool bearer_matches(std::string_view header, std::string_view key) {
  header = trim(header);
  if (header.size() < 7 || lower(header.substr(0, 6)) != "bearer" || header[6] != ' ') return false;
  std::string_view token = trim(header.substr(7));
  // Length is not secret here; the bytes are compared without early exit.
  if (token.size() != key.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < key.size(); ++i) {
    diff |= static_cast<unsigned char>(token[i] ^ key[i]);
  }
  return diff == 0;
}

// The real API's OpenAI-style error object.
std::string api_error(std::string_view message, std::string_view type, std::string_view param,
                      std::string_view code) {
  return "{\"message\":" + json_escape(message) + ",\"type\":" + json_escape(type) +
         ",\"param\":" + (param.empty() ? std::string("null") : json_escape(param)) +
         ",\"code\":" + json_escape(code) + "}";
}

void set_json(reply& r, unsigned status, std::string body) {
  r.res.result(status);  // the unsigned overload keeps codes Beast has no name for
  r.res.set(http::field::content_type, "application/json");
  r.res.body() = std::move(body);
}

void set_json(reply& r, http::status status, std::string body) {
  r.res.result(status);
  r.res.set(http::field::content_type, "application/json");
  r.res.body() = std::move(body);
}

}  // namespace

request_log::request_log(const std::string& path) : file_(std::fopen(path.c_str(), "a")) {
  if (file_ == nullptr) throw std::runtime_error("cannot open request log '" + path + "'");
}

request_log::~request_log() {
  if (file_ != nullptr) std::fclose(file_);
}

void request_log::write(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fputc('\n', file_);
  std::fflush(file_);
}

handler::handler(const options& opts)
    : opts_(opts), api_key_(opts.api_key), budget_(opts.rate_limit, opts.rate_window) {
  if (!opts.request_log.empty()) log_ = std::make_unique<request_log>(opts.request_log);
  auto now = std::chrono::system_clock::now();
  for (const auto& f : opts.faults) faults_.add(f, now, opts.window);
}

std::int64_t handler::served_window(std::chrono::system_clock::time_point wall) const {
  std::int64_t t = unix_ms(wall);
  std::int64_t w = opts_.window.count();
  std::int64_t q = t / w - (t % w < 0 ? 1 : 0);
  return q - 1;
}

handler::cached_body& handler::window_body(std::uint64_t w) {
  for (auto& c : window_cache_) {
    if (c.key == w) return c;
  }
  if (window_cache_.size() >= window_cache_size) window_cache_.erase(window_cache_.begin());
  window_cache_.push_back({w, render_window(w, opts_.shape), {}});
  return window_cache_.back();
}

handler::cached_body& handler::oversized_body(std::size_t size) {
  if (oversized_cache_ && oversized_cache_->key == size) return *oversized_cache_;
  // Valid Prometheus text, so that size is the only reason to refuse it.
  std::string body = "# HELP mock_padding Padding that makes the body oversized.\n"
                     "# TYPE mock_padding gauge\n";
  body.reserve(size + 64);
  for (std::size_t i = 0; body.size() < size; ++i) {
    body += "mock_padding{i=\"" + std::to_string(i) + "\"} 1.0\n";
  }
  oversized_cache_ = std::make_unique<cached_body>(cached_body{size, std::move(body), {}});
  return *oversized_cache_;
}

void handler::set_body(reply& r, cached_body& body, bool gzip) {
  r.res.set(http::field::content_type, prometheus_type);
  r.res.set(http::field::vary, "Accept-Encoding");
  if (gzip) {
    if (body.gzipped.empty()) body.gzipped = cmp::snapshot::gzip_compress(body.plain);
    r.res.set(http::field::content_encoding, "gzip");
    r.res.body() = body.gzipped;
  } else {
    r.res.body() = body.plain;
  }
}

reply handler::handle(const request& req, const clock_reading& now) {
  std::string_view target(req.target().data(), req.target().size());
  std::string_view path = target.substr(0, target.find('?'));
  reply r = path.starts_with("/mock/") ? control_request(req, now) : api_request(req, now);
  r.res.version(req.version());
  r.res.set(http::field::server, "cerebras-mock-upstream");
  r.res.set(http::field::date, http_date(now.wall + opts_.date_skew));
  r.res.keep_alive(req.keep_alive() && r.act == reply::action::respond);
  r.res.prepare_payload();
  return r;
}

reply handler::api_request(const request& req, const clock_reading& now) {
  reply r;
  r.api = true;
  std::string_view target(req.target().data(), req.target().size());
  std::string_view path = target.substr(0, target.find('?'));
  std::string accept_encoding(req[http::field::accept_encoding]);
  bool gzip = cmp::server::accepts_gzip(accept_encoding);
  std::int64_t w = served_window(now.wall);
  bool auth = false;
  bool over_budget = false;

  std::string_view org;
  bool path_ok = path.starts_with(api_prefix);
  if (path_ok) {
    org = path.substr(api_prefix.size());
    path_ok = !org.empty() && org.find('/') == std::string_view::npos;
  }
  if (!path_ok) {
    set_json(r, http::status::not_found,
             api_error("Not found", "not_found_error", "", "not_found"));
  } else if (req.method() != http::verb::get) {
    set_json(r, http::status::method_not_allowed,
             api_error("Method not allowed", "invalid_request_error", "", "method_not_allowed"));
    r.res.set(http::field::allow, "GET");
  } else if (!bearer_matches(req[http::field::authorization], api_key_)) {
    set_json(r, http::status::unauthorized,
             api_error("Wrong API Key", "invalid_request_error", "api_key", "wrong_api_key"));
    r.res.set(http::field::www_authenticate, "Bearer");
  } else if ((auth = true, org != opts_.shape.org_id)) {
    set_json(r, http::status::not_found,
             api_error("Organization '" + std::string(org) + "' not found", "not_found_error",
                       "organization_id", "organization_not_found"));
  } else {
    auto d = budget_.admit(now.mono);
    if (opts_.rate_limit > 0) {
      r.res.set("x-ratelimit-limit-requests", std::to_string(opts_.rate_limit));
      r.res.set("x-ratelimit-remaining-requests", std::to_string(d.remaining));
      r.res.set("x-ratelimit-reset-requests", seconds_json(d.reset.count()));
    }
    if (!d.admitted) {
      over_budget = true;
      set_json(r, http::status::too_many_requests,
               api_error("Requests per minute limit exceeded - too many requests sent.",
                         "too_many_requests_error", "quota", "request_quota_exceeded"));
      auto secs = std::max<std::int64_t>(1, (d.reset.count() + 999) / 1000);
      r.res.set(http::field::retry_after, std::to_string(secs));
    } else if (auto f = faults_.take(now.wall)) {
      apply_fault(r, *f, w, gzip, now);
    } else {
      r.res.result(http::status::ok);
      set_body(r, window_body(static_cast<std::uint64_t>(std::max<std::int64_t>(w, 0))), gzip);
    }
  }

  if (log_) {
    unsigned status = (r.act == reply::action::reset || r.act == reply::action::stall)
                          ? 0
                          : r.res.result_int();
    log_->write("{\"t\":" + seconds_json(unix_ms(now.wall)) +
                ",\"method\":" + json_escape(std::string(req.method_string())) +
                ",\"path\":" + json_escape(path) + ",\"status\":" + std::to_string(status) +
                ",\"window\":" + std::to_string(w) + ",\"fault\":" + json_escape(r.fault) +
                ",\"over_budget\":" + (over_budget ? "true" : "false") +
                ",\"auth\":" + (auth ? "true" : "false") +
                ",\"accept_encoding\":" + json_escape(accept_encoding) + "}");
  }
  return r;
}

void handler::apply_fault(reply& r, const fault_spec& f, std::int64_t window, bool gzip,
                          const clock_reading& now) {
  r.fault = f.label();
  r.delay = f.delay;
  auto& normal = window_body(static_cast<std::uint64_t>(std::max<std::int64_t>(window, 0)));
  switch (f.kind) {
    case fault_kind::latency:
      r.res.result(http::status::ok);
      set_body(r, normal, gzip);
      break;
    case fault_kind::status:
      set_json(r, f.status,
               api_error("Injected fault: HTTP " + std::to_string(f.status), "server_error", "",
                         "injected_fault"));
      break;
    case fault_kind::rate_limited:
      set_json(r, http::status::too_many_requests,
               api_error("Requests per minute limit exceeded - too many requests sent.",
                         "too_many_requests_error", "quota", "request_quota_exceeded"));
      if (f.retry_format == retry_after_format::seconds) {
        r.res.set(http::field::retry_after, std::to_string(f.retry_after));
      } else if (f.retry_format == retry_after_format::http_date) {
        r.res.set(http::field::retry_after,
                  http_date(now.wall + std::chrono::seconds(f.retry_after)));
      }
      break;
    case fault_kind::unauthorized:
      set_json(r, http::status::unauthorized,
               api_error("Wrong API Key", "invalid_request_error", "api_key", "wrong_api_key"));
      r.res.set(http::field::www_authenticate, "Bearer");
      break;
    case fault_kind::forbidden:
      set_json(r, http::status::forbidden,
               api_error("This API key may not read metrics of this organization",
                         "permission_error", "organization_id", "forbidden"));
      break;
    case fault_kind::malformed:
      r.res.result(http::status::ok);
      r.res.set(http::field::content_type, prometheus_type);
      r.res.body() =
          "# HELP requests_count_total Requests received in the window.\n"
          "# TYPE requests_count_total gauge\n"
          "requests_count_total{endpoint=\"llama-3.3-70b\",organization_id=\"oops 12.0\n"
          "<html><body>502 Bad Gateway</body></html>\n"
          "}}} this is not Prometheus text {{{ 1.0.0.0\n";
      break;
    case fault_kind::truncated:
      r.res.result(http::status::ok);
      set_body(r, normal, gzip);
      r.act = reply::action::truncate;
      r.truncate_at = r.res.body().size() / 2;
      break;
    case fault_kind::oversized:
      r.res.result(http::status::ok);
      set_body(r, oversized_body(f.size), gzip);
      break;
    case fault_kind::reset:
      r.act = reply::action::reset;
      break;
    case fault_kind::stall:
      r.act = reply::action::stall;
      break;
    case fault_kind::redirect:
      r.res.result(f.status);
      r.res.set(http::field::location, f.location);
      r.res.set(http::field::content_type, "text/plain; charset=utf-8");
      r.res.body() = "Moved to " + f.location + "\n";
      break;
  }
  if (f.should_retry) r.res.set("x-should-retry", *f.should_retry ? "true" : "false");
}

reply handler::control_request(const request& req, const clock_reading& now) {
  reply r;
  std::string_view target(req.target().data(), req.target().size());
  auto qpos = target.find('?');
  std::string_view path = target.substr(0, qpos);
  std::string_view query = qpos == std::string_view::npos ? "" : target.substr(qpos + 1);
  const bool get = req.method() == http::verb::get;
  const bool post = req.method() == http::verb::post;
  auto method_not_allowed = [&](std::string_view allow) {
    set_json(r, http::status::method_not_allowed, "{\"error\":\"method not allowed\"}");
    r.res.set(http::field::allow, allow);
  };

  if (path.starts_with("/mock/window/")) {
    if (!get) {
      method_not_allowed("GET");
      return r;
    }
    std::uint64_t w = 0;
    try {
      w = parse_unsigned(path.substr(13), 1ull << 53);
    } catch (const std::invalid_argument& e) {
      set_json(r, http::status::bad_request, "{\"error\":" + json_escape(e.what()) + "}");
      return r;
    }
    r.res.result(http::status::ok);
    set_body(r, window_body(w), cmp::server::accepts_gzip(req[http::field::accept_encoding]));
  } else if (path == "/mock/expected") {
    if (!get) {
      method_not_allowed("GET");
      return r;
    }
    std::int64_t w = served_window(now.wall);
    std::int64_t wl = opts_.window.count();
    std::string body = "{\"window\":" + std::to_string(w) +
                       ",\"window_seconds\":" + seconds_json(wl) +
                       ",\"window_start\":" + seconds_json(w * wl) +
                       ",\"window_end\":" + seconds_json((w + 1) * wl) +
                       ",\"next_window_at\":" + seconds_json((w + 2) * wl) +
                       ",\"now\":" + seconds_json(unix_ms(now.wall)) +
                       ",\"org_id\":" + json_escape(opts_.shape.org_id) +
                       ",\"endpoints\":" + std::to_string(opts_.shape.endpoints) +
                       ",\"down_endpoints\":" + std::to_string(opts_.shape.down_endpoints) +
                       ",\"latency_label\":" + json_escape(opts_.shape.latency_label) +
                       ",\"rate_limit\":" + std::to_string(opts_.rate_limit) +
                       ",\"rate_window_seconds\":" + seconds_json(opts_.rate_window.count()) +
                       ",\"budget_used\":" + std::to_string(budget_.used(now.mono)) +
                       ",\"faults_pending\":" + std::to_string(faults_.pending(now.wall)) + "}";
    set_json(r, http::status::ok, std::move(body));
  } else if (path == "/mock/faults") {
    if (!get) {
      method_not_allowed("GET");
      return r;
    }
    set_json(r, http::status::ok, "{\"faults\":" + faults_.describe(now.wall) + "}");
  } else if (path == "/mock/fault") {
    if (!post) {
      method_not_allowed("POST");
      return r;
    }
    param_list params = parse_query(query);
    // A form-encoded body works as well as the query string.
    for (auto& p : parse_query(req.body())) params.push_back(std::move(p));
    std::string kind;
    for (const auto& [k, v] : params) {
      if (k == "kind") kind = v;
    }
    try {
      if (kind.empty()) throw std::invalid_argument("missing parameter kind");
      fault_spec spec = make_fault(kind, params);
      std::string label = spec.label();
      faults_.add(std::move(spec), now.wall, opts_.window);
      set_json(r, http::status::ok,
               "{\"queued\":" + json_escape(label) +
                   ",\"faults\":" + faults_.describe(now.wall) + "}");
    } catch (const std::invalid_argument& e) {
      set_json(r, http::status::bad_request, "{\"error\":" + json_escape(e.what()) + "}");
    }
  } else if (path == "/mock/fault/clear") {
    if (!post) {
      method_not_allowed("POST");
      return r;
    }
    faults_.clear();
    set_json(r, http::status::ok, "{\"faults\":[]}");
  } else if (path == "/mock/budget/clear") {
    if (!post) {
      method_not_allowed("POST");
      return r;
    }
    budget_.clear();
    set_json(r, http::status::ok, "{\"budget_used\":0}");
  } else {
    set_json(r, http::status::not_found, "{\"error\":\"no such control endpoint\"}");
  }
  return r;
}

}  // namespace cmp::mock
