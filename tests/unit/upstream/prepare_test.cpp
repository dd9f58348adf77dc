#include "cmp/upstream/prepare.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "cmp/upstream/ingest.hpp"

namespace cmp::upstream {
namespace {

using std::chrono::milliseconds;
using wall_clock = std::chrono::system_clock;

const std::string text_type = "text/plain; version=0.0.4; charset=utf-8";
const std::string om_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const std::string body =
    "# HELP requests_count_total Requests in the window.\n"
    "# TYPE requests_count_total gauge\n"
    "requests_count_total{endpoint=\"x\",organization_id=\"o\"} 10\n"
    "requests_count_total{endpoint=\"y\",organization_id=\"o\"} 1\n"
    "\n"
    "# TYPE cache_rate gauge\n"
    "cache_rate{endpoint=\"x\"} 0.5\n";
// Parses as OpenMetrics only (an exemplar).
const std::string om_body = "# TYPE c counter\nc_total 3 # {trace_id=\"x\"} 1\n# EOF\n";

wall_clock::time_point at_ms(std::int64_t ms) { return wall_clock::time_point(milliseconds(ms)); }

poll_body fetched(const std::string& b, const std::string& type, std::int64_t window_ms) {
  return poll_body{b, type, at_ms(window_ms + 1500), at_ms(window_ms), false};
}

config::upstream upstream_cfg() {
  config::upstream cfg;
  cfg.name = "org-a";
  cfg.extra_labels = {{"env", "prod"}};
  cfg.rename_labels = {{"endpoint", "cerebras_endpoint"}};
  cfg.timestamps = config::timestamp_mode::window;
  return cfg;
}

// What the first-snapshot log line says: the upstream's families, series
// and distinct endpoints, the endpoint label found under its served name.
TEST(PrepareSnapshot, CountsFamiliesSeriesAndEndpoints) {
  std::optional<derived_counters> derived;
  auto cfg = upstream_cfg();
  cfg.derived_counters = true;  // its families are the proxy's, not counted
  auto p = prepare_snapshot(fetched(body, text_type, 1'700'000'040'000), cfg, std::nullopt, derived);
  ASSERT_NE(p.snap, nullptr) << p.error;
  EXPECT_EQ(p.counts.families, 2u);
  EXPECT_EQ(p.counts.series, 3u);
  EXPECT_EQ(p.counts.endpoints, 2u);
  cfg.rename_labels.clear();
  derived.reset();
  p = prepare_snapshot(fetched(body, text_type, 1'700'000'040'000), cfg, std::nullopt, derived);
  EXPECT_EQ(p.counts.endpoints, 2u);
}

// The snapshot is what the poller built inline before the work moved to a
// worker: ingest, timestamps, the snapshot's render, byte for byte.
TEST(PrepareSnapshot, SameSnapshotAsTheInlinePipeline) {
  const auto cfg = upstream_cfg();
  std::optional<derived_counters> derived;
  const auto p = prepare_snapshot(fetched(body, text_type, 1'700'000'040'000), cfg, std::nullopt, derived);
  ASSERT_NE(p.snap, nullptr) << p.error;

  auto expected = ingest(body, text_type, cfg).value();
  apply_timestamps(expected.families, cfg.timestamps, 1'700'000'040'000);
  const auto inline_snap = snapshot::render_snapshot("org-a", expected.families, {}, {});
  EXPECT_EQ(p.snap->rendered->text, inline_snap->rendered->text);
  EXPECT_EQ(p.snap->own->openmetrics.plain, inline_snap->own->openmetrics.plain);
  EXPECT_EQ(p.snap->series, inline_snap->series);
  EXPECT_EQ(p.snap->series, 3u);
  EXPECT_NE(p.snap->rendered->text.find("cerebras_endpoint=\"x\""), std::string::npos);
  EXPECT_NE(p.snap->rendered->text.find(" 1700000040000\n"), std::string::npos);
  EXPECT_EQ(p.snap->upstream, "org-a");
  EXPECT_EQ(p.snap->fetched_at, at_ms(1'700'000'041'500));
  EXPECT_EQ(p.snap->window_end, at_ms(1'700'000'040'000));
  EXPECT_EQ(p.schema, schema_of(expected.families));
  EXPECT_FALSE(p.schema_changed);  // nothing to compare with
  EXPECT_FALSE(p.counters_changed);
  EXPECT_FALSE(derived.has_value());  // not configured
}

TEST(PrepareSnapshot, RefusedBodyHasNoSnapshotAndSaysWhy) {
  std::optional<derived_counters> derived;
  const auto p = prepare_snapshot(fetched("a{ 1\n", text_type, 60'000), upstream_cfg(), std::nullopt, derived);
  EXPECT_EQ(p.snap, nullptr);
  EXPECT_FALSE(p.error.empty());
}

TEST(PrepareSnapshot, SchemaChangeIsAgainstThePreviousSchema) {
  const auto cfg = upstream_cfg();
  std::optional<derived_counters> derived;
  const auto first = prepare_snapshot(fetched(body, text_type, 60'000), cfg, std::nullopt, derived);
  const auto same = prepare_snapshot(fetched(body, text_type, 120'000), cfg, first.schema, derived);
  EXPECT_FALSE(same.schema_changed);
  const auto other = prepare_snapshot(fetched("cache_rate 1\n", text_type, 180'000), cfg, first.schema, derived);
  EXPECT_TRUE(other.schema_changed);
}

TEST(PrepareSnapshot, DerivedCountersTakeEachFetchedWindowOnceAndNoRestoredOne) {
  auto cfg = upstream_cfg();
  cfg.derived_counters = true;
  std::optional<derived_counters> derived;

  const auto w1 = prepare_snapshot(fetched(body, text_type, 60'000), cfg, std::nullopt, derived);
  ASSERT_TRUE(derived.has_value());
  EXPECT_TRUE(w1.counters_changed);
  EXPECT_EQ(w1.counters_text, derived->serialize());
  EXPECT_NE(w1.snap->rendered->text.find("cerebras_proxy_cumulative_requests_count_total"), std::string::npos);

  const auto again = prepare_snapshot(fetched(body, text_type, 60'000), cfg, w1.schema, derived);
  EXPECT_FALSE(again.counters_changed);
  EXPECT_TRUE(again.counters_text.empty());

  poll_body restored = fetched(body, text_type, 120'000);
  restored.restored = true;
  const auto r = prepare_snapshot(restored, cfg, w1.schema, derived);
  ASSERT_NE(r.snap, nullptr);
  EXPECT_FALSE(r.counters_changed);
  EXPECT_EQ(derived->last_window_ms(), 60'000);

  const auto w2 = prepare_snapshot(fetched(body, text_type, 120'000), cfg, w1.schema, derived);
  EXPECT_TRUE(w2.counters_changed);
  // endpoint x: 10 + 10, with its labels renamed like the rest
  EXPECT_NE(w2.snap->rendered->text.find("cerebras_proxy_cumulative_requests_count_total{cerebras_endpoint=\"x\","),
            std::string::npos);
  EXPECT_NE(w2.snap->rendered->text.find("} 20 120000\n"), std::string::npos) << w2.snap->rendered->text;
}

// A state file written before the Content-Type was kept: the body may be
// OpenMetrics. A fetched body is parsed as its Content-Type says only.
TEST(PrepareSnapshot, UnknownContentTypeOfARestoredBodyTriesOpenMetrics) {
  const auto cfg = upstream_cfg();
  std::optional<derived_counters> derived;
  poll_body old_file{om_body, "", at_ms(61'000), at_ms(60'000), true};
  EXPECT_NE(prepare_snapshot(old_file, cfg, std::nullopt, derived).snap, nullptr);

  poll_body kept{om_body, om_type, at_ms(61'000), at_ms(60'000), true};
  EXPECT_NE(prepare_snapshot(kept, cfg, std::nullopt, derived).snap, nullptr);

  EXPECT_EQ(prepare_snapshot(fetched(om_body, text_type, 60'000), cfg, std::nullopt, derived).snap, nullptr);
}

}  // namespace
}  // namespace cmp::upstream
