#include "cmp/upstream/ingest.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "cmp/exposition/writer.hpp"

namespace cmp::upstream {
namespace {

namespace k = exposition::normalization_kind;

std::string text_of(const exposition::family_list& f) {
  std::string out;
  exposition::write_text(f, out);
  return out;
}

struct ingest_case {
  const char* name;
  std::string body;
  std::string content_type;
  config::timestamp_mode timestamps;
  bool taken;
  std::string text;  // what the snapshot serves, when taken
  std::vector<exposition::normalization> normalizations;
};

class Ingest : public ::testing::TestWithParam<ingest_case> {};

constexpr std::int64_t window_end_ms = 1700000060000;

TEST_P(Ingest, BodyToSnapshotFamilies) {
  const ingest_case& c = GetParam();
  config::upstream cfg;
  cfg.timestamps = c.timestamps;
  cfg.extra_labels = {{"env", "prod"}};
  auto r = ingest(c.body, c.content_type, cfg);
  ASSERT_EQ(r.has_value(), c.taken) << (r ? text_of(r->families) : r.error().message());
  if (!r) return;
  apply_timestamps(r->families, cfg.timestamps, window_end_ms);
  EXPECT_EQ(text_of(r->families), c.text);
  EXPECT_EQ(r->normalizations, c.normalizations);
}

const std::string om = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const std::string text = "text/plain; version=0.0.4; charset=utf-8";
const std::string om_body =
    "# TYPE c counter\nc_total 3 1700000000.25 # {trace_id=\"x\"} 1\n# EOF\n";

INSTANTIATE_TEST_SUITE_P(
    Table, Ingest,
    ::testing::Values(
        ingest_case{"UpstreamTimestampsPassThroughWithNone", "a 1 1700000000123\nb 2\n", text,
                    config::timestamp_mode::none, true,
                    "# TYPE a untyped\na{env=\"prod\"} 1 1700000000123\n"
                    "# TYPE b untyped\nb{env=\"prod\"} 2\n",
                    {}},
        ingest_case{"WindowReplacesThem", "a 1 1700000000123\nb 2\n", text,
                    config::timestamp_mode::window, true,
                    "# TYPE a untyped\na{env=\"prod\"} 1 1700000060000\n"
                    "# TYPE b untyped\nb{env=\"prod\"} 2 1700000060000\n",
                    {}},
        ingest_case{"OpenMetricsByContentType", om_body, om, config::timestamp_mode::none, true,
                    "# TYPE c_total counter\nc_total{env=\"prod\"} 3 1700000000250\n",
                    {{k::exemplar_dropped, 2, 1}}},
        // Prometheus parses anything but application/openmetrics-text as
        // text, where an exemplar is an error.
        ingest_case{"OpenMetricsBodyAsTextIsRefused", om_body, text, config::timestamp_mode::none,
                    false, "", {}},
        ingest_case{"NoContentTypeIsText", "a 1\n", "", config::timestamp_mode::none, true,
                    "# TYPE a untyped\na{env=\"prod\"} 1\n", {}},
        ingest_case{"RepairsAreReported", "a{x=\"1\"} 1\nb 1\na{x=\"1\"} 2\na{x=\"2\"} 3\n", text,
                    config::timestamp_mode::none, true,
                    "# TYPE a untyped\na{x=\"1\",env=\"prod\"} 1\na{x=\"2\",env=\"prod\"} 3\n"
                    "# TYPE b untyped\nb{env=\"prod\"} 1\n",
                    {{k::duplicate_series_dropped, 3, 1}, {k::family_merged, 4, 1}}},
        ingest_case{"CrlfIsRefused", "a 1\r\n", text, config::timestamp_mode::none, false, "",
                    {}}),
    [](const ::testing::TestParamInfo<ingest_case>& p) { return std::string(p.param.name); });

TEST(Ingest, RenameAppliesBeforeExtraLabels) {
  config::upstream cfg;
  cfg.rename_labels = {{"statistic", "percentile"}};
  cfg.extra_labels = {{"percentile", "x"}};
  auto r = ingest("a{statistic=\"p50\"} 1\n", "", cfg);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(text_of(r->families), "# TYPE a untyped\na{percentile=\"p50\"} 1\n");
}

TEST(SchemaOf, NamesEachFamilyAndEachOfItsLabelNames) {
  const auto r = ingest("# TYPE a gauge\na{x=\"1\"} 1\na{y=\"2\"} 2\nb 3\n", "", config::upstream{});
  ASSERT_TRUE(r.has_value());
  const std::set<std::string> want = {"a", "a{x}", "a{y}", "b"};
  EXPECT_EQ(schema_of(r->families), want);
  // A value that changes is no schema change; a new label name is.
  const auto other = ingest("# TYPE a gauge\na{x=\"9\"} 1\na{z=\"2\"} 2\nb 3\n", "", config::upstream{});
  ASSERT_TRUE(other.has_value());
  EXPECT_NE(schema_of(other->families), want);
}

}  // namespace
}  // namespace cmp::upstream
