#pragma once
// `--probe`: one real request per upstream, to see a configuration work (or
// why not) before the daemon runs it. Each request is recorded in the
// budget ledger in state_dir before it is sent, exactly as a poll is, so a
// probe never takes an organization over its limit: when the budget is
// spent it is refused with the time of the next allowed request. While a
// daemon runs on the same state_dir the probe is refused as a whole (see
// upstream/state_lock.hpp): the daemon would not see the probe's request.
//
// The request is the poller's: make_fetch_request, fetch, decode_body,
// request_code and ingest, through the same budget_ledger and state_store.
// What is printed is decided by pure functions (probe_hint, describe)
// tested without I/O; run_probe does the I/O.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "cmp/config/config.hpp"
#include "cmp/upstream/http_fetch.hpp"

namespace cmp::app {

// What probing one upstream found.
struct probe_finding {
  std::string name;
  std::string url;
  // Why no request was sent (budget spent, ledger not writable, TLS setup);
  // empty when one was.
  std::string refused;
  std::string ledger_note;  // e.g. an unreadable ledger taken as spent
  // The budget after this request: `used` of `limit` in any `window`.
  std::uint32_t used = 0;
  std::uint32_t limit = 0;
  config::duration window{};
  std::string ledger_file;
  std::string answer;     // "HTTP 200", or the fault's code label and reason
  std::chrono::milliseconds latency{};
  std::string api_error;  // the API's own error text (quote_api_message), for a non-2xx
  std::string problem;    // what went wrong, in our words (classify, parse error)
  std::string hint;       // what to change, naming the file and key
  std::size_t families = 0;
  std::size_t series = 0;
  std::size_t endpoints = 0;
  bool ok = false;
};

// What to change after a failed request to `u` (configured in `source`):
// 401 the key, 403 the Metrics API not enabled for the organization, 404
// the organization id, and so on. Empty when there is nothing to add.
[[nodiscard]] std::string probe_hint(const upstream::fetch_result& r, const config::upstream& u,
                                     std::string_view source);

// The lines printed for one upstream, each indented under its name.
[[nodiscard]] std::string describe(const probe_finding& f);

// Probes every upstream of `cfg` (keys already checked by the caller),
// printing to `out`. Returns 0 when every upstream answered with a body
// Prometheus would ingest, else 1.
[[nodiscard]] int run_probe(const config::config& cfg, std::ostream& out);

}  // namespace cmp::app
