#include "cmp/app/probe.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <ctime>
#include <exception>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "cmp/asio.hpp"
#include "cmp/upstream/budget_ledger.hpp"
#include "cmp/upstream/ingest.hpp"
#include "cmp/upstream/outcome.hpp"
#include "cmp/upstream/state_lock.hpp"
#include "cmp/upstream/state_store.hpp"

namespace cmp::app {

namespace {

using wall_clock = std::chrono::system_clock;

std::string utc(wall_clock::time_point t) {
  const std::time_t tt = wall_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return std::string(buf, n);
}

std::string key_of(const config::upstream& u, std::string_view source, std::string_view field) {
  return fmt::format("{}: upstreams[name={}].{}", source, u.name, field);
}

std::string key_source(const config::upstream& u, std::string_view source) {
  if (!u.api_key_file.empty()) {
    return fmt::format("the key in {} ({})", config::api_key_file_path(u, source).string(),
                       key_of(u, source, "api_key_file"));
  }
  return fmt::format("the key in the environment variable {} ({})", u.api_key_env,
                     key_of(u, source, "api_key_env"));
}

std::string plural(std::size_t n, std::string_view one, std::string_view many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

// Families, series and distinct endpoints of a body the daemon would serve.
void count(const exposition::family_list& families, const config::upstream& u, probe_finding& f) {
  const auto renamed = u.rename_labels.find("endpoint");
  const std::string endpoint_label = renamed == u.rename_labels.end() ? "endpoint" : renamed->second;
  std::set<std::string, std::less<>> endpoints;
  f.families = families.size();
  for (const auto& family : families) {
    f.series += family.samples.size();
    for (const auto& s : family.samples)
      if (auto e = s.labels().find(endpoint_label)) endpoints.emplace(*e);
  }
  f.endpoints = endpoints.size();
}

upstream::fetch_result fetch_once(const upstream::fetch_request& req) {
  asio::io_context ioc;
  upstream::fetch_result result;
  std::exception_ptr failure;
  asio::co_spawn(
      ioc, [&]() -> asio::awaitable<void> { result = co_await upstream::fetch(req); },
      [&](std::exception_ptr e) { failure = e; });
  ioc.run();
  if (failure) std::rethrow_exception(failure);
  return result;
}

// The budget first: the request is recorded in the ledger file before it is
// sent, exactly as a poll does, or it is not sent at all.
bool take_budget(const config::config& cfg, const config::upstream& u, probe_finding& f) {
  const upstream::state_store store(cfg.state_dir, u.url);
  upstream::budget_ledger ledger(u.limit.requests, u.limit.window);
  const auto now = wall_clock::now();
  try {
    if (auto sent = store.load_ledger()) ledger.restore(std::move(*sent), now);
  } catch (const std::exception& e) {
    // The daemon's rule: an unreadable ledger means the budget was just spent.
    ledger.assume_spent(now);
    f.ledger_note = fmt::format("budget ledger unreadable, taken as spent: {}", e.what());
  }
  f.limit = ledger.limit();
  f.window = u.limit.window;
  f.ledger_file = store.ledger_path().string();
  if (!ledger.try_acquire(now)) {
    const auto next = ledger.next_allowed(now);
    f.refused = fmt::format(
        "the budget is spent ({} in any {}, the daemon's polls and probes alike); the next request "
        "is allowed at {}, in {}s. No request sent.",
        plural(ledger.limit(), "request", "requests"), config::format_duration(u.limit.window), utc(next),
        std::chrono::ceil<std::chrono::seconds>(next - now).count());
    return false;
  }
  try {
    store.save_ledger(ledger.history());
  } catch (const std::exception& e) {
    f.refused = fmt::format("the request cannot be recorded in the budget ledger ({}). No request sent.", e.what());
    return false;
  }
  f.used = ledger.limit() - ledger.remaining(now);
  return true;
}

probe_finding probe_one(const config::config& cfg, const config::upstream& u) {
  probe_finding f;
  f.name = u.name;
  f.url = u.url;
  upstream::fetch_request req;
  config::secret key;
  try {
    // Read again: the caller checked it, but a key file may change meanwhile.
    key = config::load_api_key(u, cfg.source);
    req = upstream::make_fetch_request(u, key, upstream::make_client_tls(u.ca_file));
  } catch (const std::exception& e) {
    f.refused = fmt::format("{}. No request sent.", e.what());
    return f;
  }
  if (!take_budget(cfg, u, f)) return f;

  auto r = fetch_once(req);
  upstream::decode_body(r, req.body_limit);
  f.latency = std::chrono::duration_cast<std::chrono::milliseconds>(r.elapsed);
  if (r.fault || r.status == 0) {
    f.answer = fmt::format("no answer ({})", upstream::request_code(r));
    f.problem = r.error;
  } else {
    f.answer = fmt::format("HTTP {}", r.status);
  }
  if (r.status == 200) {
    if (auto in = upstream::ingest(r.body, r.content_type, u)) {
      count(in->families, u, f);
      f.ok = true;
    } else {
      f.problem = fmt::format("the body is not exposition text that Prometheus would ingest: {}",
                              in.error().message());
    }
    return f;
  }
  if (r.status != 0) {
    f.api_error = upstream::quote_api_message(r.body, key.expose());
    // A redirect's target says what to fix; other statuses have their hint.
    if (r.status >= 300 && r.status < 400) f.problem = r.error;
  }
  f.hint = probe_hint(r, u, cfg.source);
  return f;
}

}  // namespace

std::string probe_hint(const upstream::fetch_result& r, const config::upstream& u, std::string_view source) {
  using upstream::errc;
  if (r.fault == errc::tls_untrusted)
    return fmt::format("behind a TLS-intercepting proxy, give its CA certificate in {}",
                       key_of(u, source, "ca_file"));
  if (r.fault == errc::dns)
    return fmt::format("check the host name in {}", key_of(u, source, "url"));
  if (r.fault == errc::connect || r.fault == errc::timeout)
    return fmt::format("check the network path: {}, or HTTPS_PROXY/NO_PROXY in the environment",
                       key_of(u, source, "proxy_url"));
  if (r.fault) return {};
  switch (r.status) {
    case 401:
      return fmt::format("the API key was refused: check {}", key_source(u, source));
    case 403:
      return fmt::format("the Metrics API is not enabled for this organization (a private preview: ask "
                         "Cerebras to enable it), or the key belongs to another organization ({})",
                         key_of(u, source, "url"));
    case 404:
      return fmt::format("the organization id is wrong: {} must be "
                         "https://cloud.cerebras.ai/api/v1/metrics/organizations/<org-id> with your "
                         "organization's id",
                         key_of(u, source, "url"));
    case 429:
      return fmt::format("another client spends this organization's budget (the limit is per "
                         "organization, not per client); the daemon waits for Retry-After{}",
                         r.retry_after.empty() ? std::string() : " (" + r.retry_after + ")");
    default:
      if (r.status >= 300 && r.status < 400) return fmt::format("fix {}", key_of(u, source, "url"));
      if (r.status >= 500) return "the API failed; the daemon retries such answers within the budget";
      return {};
  }
}

std::string describe(const probe_finding& f) {
  std::string out = fmt::format("upstream {}: {}\n", f.name, f.url);
  const auto line = [&out](std::string_view label, std::string_view text) {
    if (!text.empty()) out += fmt::format("  {}: {}\n", label, text);
  };
  line("note", f.ledger_note);
  if (!f.refused.empty()) {
    line("refused", f.refused);
    out += "  result: FAILED\n";
    return out;
  }
  line("budget", fmt::format("request {} of {} allowed in any {}, recorded in {}", f.used, f.limit,
                             config::format_duration(f.window), f.ledger_file));
  line("answer", fmt::format("{} in {} ms", f.answer, f.latency.count()));
  if (f.ok) {
    line("found", fmt::format("{}, {}, {}", plural(f.families, "family", "families"),
                              plural(f.series, "series", "series"), plural(f.endpoints, "endpoint", "endpoints")));
  }
  line("API error", f.api_error);
  line("problem", f.problem);
  line("hint", f.hint);
  out += f.ok ? "  result: OK\n" : "  result: FAILED\n";
  return out;
}

int run_probe(const config::config& cfg, std::ostream& out) {
  std::string why;
  bool busy = false;
  const auto lock = upstream::state_lock::exclusive(cfg.state_dir, why, &busy);
  if (!lock) {
    out << "probe refused: " << why << ".";
    if (busy) {
      out << " A running daemon keeps its budget ledger in memory and would not see the probe's "
             "request; its status page (GET /) and /-/ready show each upstream's state. Stop it to "
             "probe.";
    }
    out << " No request sent.\n";
    return 1;
  }
  std::size_t ok = 0;
  for (const auto& u : cfg.upstreams) {
    const auto f = probe_one(cfg, u);
    out << describe(f);
    ok += f.ok ? 1 : 0;
  }
  out << fmt::format("probe: {} of {} OK\n", ok, plural(cfg.upstreams.size(), "upstream", "upstreams"));
  return ok == cfg.upstreams.size() ? 0 : 1;
}

}  // namespace cmp::app
