#pragma once
// The pipeline from an upstream body to the families a snapshot serves, minus
// anything stateful (derived counters stay in the poller): parse with the
// grammar Prometheus would pick for the Content-Type, apply the configured
// label rename and extra labels, and, once the caller has added its own
// families, the timestamp policy. Pure functions: no I/O, no clock, no
// logging; safe to call from any thread on distinct values.

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

#include "cmp/config/config.hpp"
#include "cmp/exposition/model.hpp"
#include "cmp/exposition/parser.hpp"

namespace cmp::upstream {

struct ingested {
  exposition::family_list families;
  // What was repaired to take the body, for
  // cerebras_proxy_upstream_normalizations_total and the log.
  std::vector<exposition::normalization> normalizations;
};

using ingest_result = boost::system::result<ingested, exposition::parse_error>;

// Parses `body` as Prometheus would parse a response with that Content-Type
// (exposition::format_for_content_type), with cfg's body limits, and applies
// cfg.rename_labels and cfg.extra_labels. An error means Prometheus would
// refuse the body too. `scrape_time_ms` (0: unknown) is when it was fetched:
// what Prometheus drops as out of bounds depends on it
// (exposition::parse_limits::scrape_time_ms).
ingest_result ingest(std::string_view body, std::string_view content_type,
                     const config::upstream& cfg, std::int64_t scrape_time_ms = 0);

// `timestamps: window` stamps every sample with the end of the window the
// snapshot describes; `timestamps: none` leaves timestamps as the upstream
// sent them (none, usually): dropping an explicit one would make the scraper
// store the value at another time than the upstream said.
void apply_timestamps(exposition::family_list& families, config::timestamp_mode mode,
                      std::int64_t window_end_ms);

// Family names and `family{label}` pairs: what dashboards and rules depend
// on. A change between two snapshots is counted in
// cerebras_proxy_upstream_schema_changes_total and logged.
[[nodiscard]] std::set<std::string> schema_of(const exposition::family_list& families);

}  // namespace cmp::upstream
