#pragma once
// Everything between an upstream body and a ready snapshot: ingest (parse,
// label transforms), the schema and its change, the derived counters'
// window, the timestamp policy and the snapshot's rendering (its text,
// OpenMetrics and gzip bytes, snapshot::render_snapshot). This is the CPU
// work of a poll (a few milliseconds per 100 KB), so the poller runs it on
// a worker thread while its coroutine is suspended, and applies the side
// effects (log lines, self-metrics, publishing) back on the I/O thread from
// the returned `prepared_snapshot`.
//
// Pure: no I/O, no clock, no logging. Not thread-safe on the state it is
// handed (`previous_schema`, `derived`): the caller guarantees that nothing
// else touches them while it runs.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cmp/config/config.hpp"
#include "cmp/exposition/parser.hpp"
#include "cmp/snapshot/snapshot.hpp"
#include "cmp/upstream/derived_counters.hpp"
#include "cmp/upstream/outage_log.hpp"

namespace cmp::upstream {

struct poll_body {
  std::string_view body;
  std::string_view content_type;  // as received; empty: unknown (an old state file)
  std::chrono::system_clock::time_point fetched_at;
  std::chrono::system_clock::time_point window_end;
  // Restored from state_dir rather than fetched: the derived counters
  // already hold its window; with an unknown Content-Type an OpenMetrics
  // body is tried too.
  bool restored = false;
};

struct prepared_snapshot {
  // Null when Prometheus would refuse the body; `error` then says why.
  std::shared_ptr<const snapshot::snapshot> snap;
  std::string error;
  std::vector<exposition::normalization> normalizations;
  snapshot_counts counts;  // of the upstream's body, the derived counters not included
  std::set<std::string> schema;  // schema_of() the families served
  bool schema_changed = false;   // differs from a known previous schema
  // The derived counters took this window: persist `counters_text`.
  bool counters_changed = false;
  std::string counters_text;
};

// `derived` is the upstream's derived counters when cfg.derived_counters
// (created if empty, advanced by a fetched body's window), else ignored.
[[nodiscard]] prepared_snapshot prepare_snapshot(const poll_body& in, const config::upstream& cfg,
                                                 const std::optional<std::set<std::string>>& previous_schema,
                                                 std::optional<derived_counters>& derived);

}  // namespace cmp::upstream
