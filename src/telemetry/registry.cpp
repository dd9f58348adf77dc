#include "cmp/telemetry/registry.hpp"

#include "cmp/exposition/writer.hpp"
#include "cmp/telemetry/build_info.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace cmp::telemetry {

namespace {

double unix_seconds(wall_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

using exposition::metric_type;

}  // namespace

void histogram::observe(double seconds) noexcept {
  for (std::size_t i = 0; i < bounds.size(); ++i)
    if (seconds <= bounds[i]) ++counts_[i];
  ++count_;
  sum_ += seconds;
}

void upstream_metrics::count_request(std::string_view code, double seconds) {
  auto& s = stable_.edit();
  auto it = s.requests_by_code.find(code);
  if (it == s.requests_by_code.end()) it = s.requests_by_code.emplace(std::string(code), 0).first;
  ++it->second;
  s.request_duration.observe(seconds);
}

void upstream_metrics::count_parse_error() { ++stable_.edit().parse_errors; }

void upstream_metrics::count_schema_change() { ++stable_.edit().schema_changes; }

void upstream_metrics::count_api_key_reload() { ++stable_.edit().api_key_reloads; }

bool upstream_metrics::count_normalizations(std::string_view kind, std::uint64_t count) {
  auto& by_kind = stable_.edit().normalizations;
  auto it = by_kind.find(kind);
  const bool first = it == by_kind.end();
  if (first) it = by_kind.emplace(std::string(kind), 0).first;
  it->second += count;
  return first;
}

void upstream_metrics::set_up(bool up, wall_clock::time_point now) {
  if (up == stable_->up && !up) return;
  auto& s = stable_.edit();
  s.up = up;
  if (up) s.last_success = now;
}

void upstream_metrics::set_snapshot_served(bool served) {
  if (served == stable_->snapshot_served) return;
  stable_.edit().snapshot_served = served;
}

void upstream_metrics::set_clock_skew(double seconds) {
  if (stable_->clock_skew == seconds) return;
  stable_.edit().clock_skew = seconds;
}

registry::registry(wall_clock::time_point started) { reload_.edit().at = started; }

upstream_metrics& registry::upstream(std::string_view name) {
  for (auto& u : *upstreams_)
    if (u->name == name) return *u;
  return *upstreams_.edit().emplace_back(std::make_unique<upstream_metrics>(std::string(name), generation_));
}

const upstream_metrics* registry::find_upstream(std::string_view name) const {
  for (const auto& u : *upstreams_)
    if (u->name == name) return u.get();
  return nullptr;
}

void registry::retain_upstreams(const std::vector<std::string>& names) {
  const auto gone = [&](const auto& u) { return std::find(names.begin(), names.end(), u->name) == names.end(); };
  if (std::any_of(upstreams_->begin(), upstreams_->end(), gone)) std::erase_if(upstreams_.edit(), gone);
}

void registry::count_scrape(unsigned status) { ++scrapes_[status]; }

void registry::set_reload_result(bool ok, wall_clock::time_point when) {
  auto& r = reload_.edit();
  r.ok = ok;
  if (ok) r.at = when;
}

void registry::render(std::string& out, exposition::format f, wall_clock::time_point now) {
  exposition::family_stream w(out, f);
  render_events(w);
  render_time(w, now);
}

void registry::render_events(exposition::family_stream& w) const {
  const auto& ups = *upstreams_;

  w.header("cerebras_proxy_upstream_requests_total", metric_type::counter,
           "Requests sent to the upstream, by HTTP status or failure kind "
           "(timeout, connect, tls, dns, protocol).");
  for (const auto& u : ups)
    for (const auto& [code, n] : u->requests_by_code())
      w.sample("cerebras_proxy_upstream_requests_total", {{"upstream", u->name}, {"code", code}}, n);

  w.header("cerebras_proxy_upstream_up", metric_type::gauge,
           "1 if the last upstream attempt gave a valid snapshot, else 0.");
  for (const auto& u : ups)
    w.sample("cerebras_proxy_upstream_up", {{"upstream", u->name}}, u->up() ? 1.0 : 0.0);

  w.header("cerebras_proxy_upstream_last_success_timestamp_seconds", metric_type::gauge,
           "Unix time of the last valid snapshot fetched from the upstream.");
  for (const auto& u : ups)
    if (u->last_success())
      w.sample("cerebras_proxy_upstream_last_success_timestamp_seconds", {{"upstream", u->name}},
               unix_seconds(*u->last_success()));

  w.header("cerebras_proxy_upstream_clock_skew_seconds", metric_type::gauge,
           "The upstream API's clock minus the local clock (positive: the API is ahead), from its "
           "Date header; 0 while the header's 1 s resolution and the request's duration explain it.");
  for (const auto& u : ups)
    if (u->clock_skew())
      w.sample("cerebras_proxy_upstream_clock_skew_seconds", {{"upstream", u->name}}, *u->clock_skew());

  w.header("cerebras_proxy_snapshot_served", metric_type::gauge,
           "1 while the upstream's snapshot is served on /metrics, 0 once it is stale or absent.");
  for (const auto& u : ups)
    w.sample("cerebras_proxy_snapshot_served", {{"upstream", u->name}}, u->snapshot_served() ? 1.0 : 0.0);

  w.header("cerebras_proxy_upstream_request_duration_seconds", metric_type::histogram,
           "Duration of upstream requests, connect to last byte.");
  for (const auto& u : ups) {
    const auto& h = u->request_duration();
    for (std::size_t i = 0; i < histogram::bounds.size(); ++i) {
      char le[32];
      w.sample("cerebras_proxy_upstream_request_duration_seconds_bucket",
               {{"upstream", u->name}, {"le", exposition::le_text(histogram::bounds[i], le)}}, h.bucket(i));
    }
    w.sample("cerebras_proxy_upstream_request_duration_seconds_bucket",
             {{"upstream", u->name}, {"le", "+Inf"}}, h.count());
    w.sample("cerebras_proxy_upstream_request_duration_seconds_sum", {{"upstream", u->name}}, h.sum());
    w.sample("cerebras_proxy_upstream_request_duration_seconds_count", {{"upstream", u->name}},
             h.count());
  }

  w.header("cerebras_proxy_upstream_parse_errors_total", metric_type::counter,
           "Upstream bodies rejected as invalid Prometheus text (the previous snapshot was kept).");
  for (const auto& u : ups)
    w.sample("cerebras_proxy_upstream_parse_errors_total", {{"upstream", u->name}}, u->parse_errors());

  w.header("cerebras_proxy_upstream_normalizations_total", metric_type::counter,
           "Repairs of upstream bodies that Prometheus accepts but a strict parser would not "
           "(merged families, dropped duplicate series, ...), by kind.");
  for (const auto& u : ups)
    for (const auto& [kind, n] : u->normalizations())
      w.sample("cerebras_proxy_upstream_normalizations_total", {{"upstream", u->name}, {"kind", kind}},
               n);

  w.header("cerebras_proxy_upstream_schema_changes_total", metric_type::counter,
           "Snapshots whose metric families or label names differ from the previous snapshot's.");
  for (const auto& u : ups)
    w.sample("cerebras_proxy_upstream_schema_changes_total", {{"upstream", u->name}},
             u->schema_changes());

  w.header("cerebras_proxy_api_key_reloads_total", metric_type::counter,
           "New API keys read from a changed api_key_file and put to use without a reload.");
  for (const auto& u : ups)
    w.sample("cerebras_proxy_api_key_reloads_total", {{"upstream", u->name}}, u->api_key_reloads());

  w.header("cerebras_proxy_config_last_reload_successful", metric_type::gauge,
           "1 if the last configuration reload succeeded, else 0.");
  w.sample("cerebras_proxy_config_last_reload_successful", {}, reload_->ok ? 1.0 : 0.0);
  w.header("cerebras_proxy_config_last_reload_success_timestamp_seconds", metric_type::gauge,
           "Unix time of the last successful configuration load.");
  w.sample("cerebras_proxy_config_last_reload_success_timestamp_seconds", {}, unix_seconds(reload_->at));

  w.header("cerebras_proxy_build_info", metric_type::gauge, "Build information; always 1.");
  w.sample("cerebras_proxy_build_info", {{"version", CMP_VERSION}, {"revision", build_revision()}}, 1.0);
}

void registry::render_time(exposition::family_stream& w, wall_clock::time_point now) {
  const auto& ups = *upstreams_;

  char code_buf[8];
  w.header("cerebras_proxy_snapshot_age_seconds", metric_type::gauge,
           "Age of the snapshot kept for the upstream (served while younger than max_staleness).");
  for (const auto& u : ups)
    if (u->snapshot_fetched_at)
      w.sample("cerebras_proxy_snapshot_age_seconds", {{"upstream", u->name}},
               std::max(0.0, std::chrono::duration<double>(now - *u->snapshot_fetched_at).count()));

  w.header("cerebras_proxy_rate_limit_remaining", metric_type::gauge,
           "Upstream requests still allowed in the current sliding rate-limit window.");
  for (const auto& u : ups)
    if (u->rate_limit_remaining)
      w.sample("cerebras_proxy_rate_limit_remaining", {{"upstream", u->name}},
               static_cast<std::uint64_t>(u->rate_limit_remaining(now)));

  w.header("cerebras_proxy_scrapes_total", metric_type::counter,
           "Requests to /metrics, by HTTP status.");
  for (const auto& [status, n] : scrapes_) {
    auto r = std::to_chars(code_buf, code_buf + sizeof code_buf, status);
    w.sample("cerebras_proxy_scrapes_total",
             {{"code", std::string_view(code_buf, static_cast<std::size_t>(r.ptr - code_buf))}}, n);
  }

  w.header("cerebras_proxy_event_loop_lag_seconds", metric_type::gauge,
           "Longest lateness of the I/O thread's 100 ms timer over the last 30 to 60 s.");
  w.sample("cerebras_proxy_event_loop_lag_seconds", {}, std::max(lag_max_current_, lag_max_previous_));

  w.header("cerebras_proxy_http_connections_open", metric_type::gauge,
           "Open connections to the local listener.");
  w.sample("cerebras_proxy_http_connections_open", {}, open_connections_);
  w.header("cerebras_proxy_http_connections_refused_total", metric_type::counter,
           "Connections refused because the listener was at its connection cap.");
  w.sample("cerebras_proxy_http_connections_refused_total", {}, connections_refused_);

  const auto& p = process_.sample(std::chrono::steady_clock::now());
  w.header("process_cpu_seconds_total", metric_type::counter,
           "Total user and system CPU time spent in seconds.");
  w.sample("process_cpu_seconds_total", {}, p.cpu_seconds);
  w.header("process_resident_memory_bytes", metric_type::gauge,
           "Resident memory size in bytes.");
  w.sample("process_resident_memory_bytes", {}, p.resident_bytes);
  w.header("process_virtual_memory_bytes", metric_type::gauge,
           "Virtual memory size in bytes.");
  w.sample("process_virtual_memory_bytes", {}, p.virtual_bytes);
  w.header("process_open_fds", metric_type::gauge,
           "Number of open file descriptors.");
  w.sample("process_open_fds", {}, p.open_fds);
  w.header("process_max_fds", metric_type::gauge,
           "Maximum number of open file descriptors.");
  w.sample("process_max_fds", {}, p.max_fds);
  w.header("process_start_time_seconds", metric_type::gauge,
           "Start time of the process since unix epoch in seconds.");
  w.sample("process_start_time_seconds", {}, p.start_time_seconds);
}

void registry::observe_event_loop_lag(double seconds, std::chrono::steady_clock::time_point now) {
  constexpr auto bucket = std::chrono::seconds(30);
  if (now - lag_bucket_start_ >= bucket) {
    lag_max_previous_ = now - lag_bucket_start_ >= 2 * bucket ? 0 : lag_max_current_;
    lag_max_current_ = 0;
    lag_bucket_start_ = now;
  }
  lag_max_current_ = std::max(lag_max_current_, std::max(0.0, seconds));
}

}  // namespace cmp::telemetry
