// What the parser takes because Prometheus's scrape path takes it, and the
// repairs it reports. The differential suite (tests/integration/
// differential_e2e_test.py) checks the same shapes against a real Prometheus.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cmp/exposition/parser.hpp"
#include "cmp/exposition/writer.hpp"

namespace cmp::exposition {
namespace {

namespace k = normalization_kind;

struct repair_case {
  const char* name;
  body_format format;
  std::string body;
  // The canonical text the model renders to: what /metrics serves.
  std::string text;
  std::vector<normalization> normalizations;
};

class ParseRepair : public ::testing::TestWithParam<repair_case> {};

TEST_P(ParseRepair, TakesWhatPrometheusTakes) {
  const repair_case& c = GetParam();
  const auto r = parse_body(c.body, c.format);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  std::string out;
  write_text(r->families, out);
  EXPECT_EQ(out, c.text);
  EXPECT_EQ(r->normalizations, c.normalizations);
  // The canonical text needs no repair and says the same.
  const auto again = parse_body(out, body_format::text);
  ASSERT_TRUE(again.has_value()) << again.error().message();
  EXPECT_TRUE(again->normalizations.empty());
  std::string out2;
  write_text(again->families, out2);
  EXPECT_EQ(out2, out);
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, ParseRepair,
    ::testing::Values(
        repair_case{"BlocksOfOneFamilyMerge", body_format::text,
                    "# HELP a first\n# TYPE a gauge\na{e=\"1\"} 1\n"
                    "# HELP b b\n# TYPE b gauge\nb 2\n"
                    "# HELP a second\n# TYPE a gauge\na{e=\"2\"} 3\n",
                    "# HELP a first\n# TYPE a gauge\na{e=\"1\"} 1\na{e=\"2\"} 3\n"
                    "# HELP b b\n# TYPE b gauge\nb 2\n",
                    {{k::duplicate_help, 7, 1}, {k::duplicate_type, 8, 1},
                     {k::family_merged, 9, 1}}},
        repair_case{"InterleavedUntyped", body_format::text, "a 1\nb 2\na{x=\"1\"} 3\nb{x=\"1\"} 4\n",
                    "# TYPE a untyped\na 1\na{x=\"1\"} 3\n# TYPE b untyped\nb 2\nb{x=\"1\"} 4\n",
                    {{k::family_merged, 3, 2}}},
        repair_case{"TypeAfterSamples", body_format::text, "a 1\n# TYPE a counter\n",
                    "# TYPE a counter\na 1\n", {{k::type_after_samples, 2, 1}}},
        repair_case{"ConflictingTypesFirstWins", body_format::text,
                    "# TYPE a counter\n# TYPE a gauge\na 1\n", "# TYPE a counter\na 1\n",
                    {{k::duplicate_type, 2, 1}}},
        repair_case{"RepeatedSeriesKeepsFirst", body_format::text,
                    "a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 2\na{x=\"1\",y=\"2\"} 3\n",
                    "# TYPE a untyped\na{x=\"1\",y=\"2\"} 1\n",
                    {{k::duplicate_series_dropped, 2, 2}}},
        repair_case{"RepeatedSeriesSpelledWithOtherEscapes", body_format::text,
                    "a{x=\"\\q\"} 1\na{x=\"\\\\q\"} 2\n",
                    "# TYPE a untyped\na{x=\"\\\\q\"} 1\n",
                    {{k::duplicate_series_dropped, 2, 1}}},
        repair_case{"HistogramBlocksMerge", body_format::text,
                    "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nother 1\nh_sum 3\nh_count 2\n",
                    "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"
                    "# TYPE other untyped\nother 1\n",
                    {{k::family_merged, 4, 1}}},
        repair_case{"SamplesThatDoNotFitDropTheType", body_format::text,
                    "# TYPE h histogram\nh 1\nh_bucket{x=\"1\"} 2\nh_sum 3\n",
                    "# TYPE h untyped\nh 1\n# TYPE h_bucket untyped\nh_bucket{x=\"1\"} 2\n"
                    "# TYPE h_sum untyped\nh_sum 3\n",
                    {{k::type_dropped, 2, 1}}},
        repair_case{"SummaryWithoutQuantile", body_format::text, "# TYPE s summary\ns 1\n",
                    "# TYPE s untyped\ns 1\n", {{k::type_dropped, 2, 1}}},
        repair_case{"UnknownEscapesStayAsWritten", body_format::text,
                    "# HELP a tab\\there\\\na{x=\"\\t\\q\"} 1\n",
                    "# HELP a tab\\\\there\\\\\n# TYPE a untyped\na{x=\"\\\\t\\\\q\"} 1\n", {}},
        repair_case{"OpenMetricsCounterAndCreated", body_format::openmetrics,
                    "# TYPE c counter\n# HELP c Requests.\n# UNIT c requests\n"
                    "c_total{x=\"1\"} 3 1700000000.5\nc_created{x=\"1\"} 1600000000\n# EOF\n",
                    "# HELP c_total Requests.\n# TYPE c_total counter\n"
                    "c_total{x=\"1\"} 3 1700000000500\n"
                    "# TYPE c_created untyped\nc_created{x=\"1\"} 1600000000\n",
                    {}},
        repair_case{"OpenMetricsExemplarsDropped", body_format::openmetrics,
                    "# TYPE h histogram\n"
                    "h_bucket{le=\"1\"} 1 # {trace_id=\"a\"} 0.5 1700000000\n"
                    "h_bucket{le=\"+Inf\"} 2 # {trace_id=\"b\"} 3\n"
                    "h_sum 3.5\nh_count 2\n# EOF",
                    "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
                    "h_sum 3.5\nh_count 2\n",
                    {{k::exemplar_dropped, 2, 2}}},
        repair_case{"OpenMetricsOtherTypesAreUntyped", body_format::openmetrics,
                    "# TYPE i info\ni_info{v=\"1\"} 1\n# TYPE u unknown\nu 2\n# EOF\n",
                    "# TYPE i_info untyped\ni_info{v=\"1\"} 1\n# TYPE u untyped\nu 2\n", {}},
        repair_case{"OpenMetricsNegativeTimestampDropped", body_format::openmetrics,
                    "a 1 -1\nb 2\n# EOF\n", "# TYPE b untyped\nb 2\n",
                    {{k::negative_timestamp_dropped, 1, 1}}}),
    [](const ::testing::TestParamInfo<repair_case>& p) { return std::string(p.param.name); });

TEST(ParseRepair, CanonicalBodyNeedsNoRepair) {
  const auto r = parse_body("# HELP a x\n# TYPE a gauge\na 1\n", body_format::text);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->normalizations.empty());
}

struct om_invalid_case {
  const char* name;
  std::string body;
  std::size_t line;
  const char* reason;
};

class ParseOpenMetricsInvalid : public ::testing::TestWithParam<om_invalid_case> {};

TEST_P(ParseOpenMetricsInvalid, IsRejectedWithPosition) {
  const om_invalid_case& c = GetParam();
  const auto r = parse_body(c.body, body_format::openmetrics);
  ASSERT_FALSE(r.has_value()) << "accepted: " << c.body;
  EXPECT_EQ(r.error().line, c.line) << r.error().message();
  EXPECT_NE(r.error().reason.find(c.reason), std::string::npos) << r.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, ParseOpenMetricsInvalid,
    ::testing::Values(
        om_invalid_case{"NoEof", "a 1\n", 2, "does not end with # EOF"},
        om_invalid_case{"DataAfterEof", "a 1\n# EOF\nb 1\n", 3, "after # EOF"},
        om_invalid_case{"UntypedIsNotAnOpenMetricsType", "# TYPE a untyped\na 1\n# EOF\n", 1,
                        "unknown metric type"},
        om_invalid_case{"BadExemplar", "a_total 1 # trace\n# EOF\n", 1, "exemplar"},
        om_invalid_case{"NaNTimestamp", "a 1 NaN\n# EOF\n", 1, "invalid timestamp"}),
    [](const ::testing::TestParamInfo<om_invalid_case>& p) { return std::string(p.param.name); });

TEST(ParseRepair, ExemplarIsAnErrorInTheTextFormat) {
  // Prometheus's text parser expects a timestamp or the end of the line.
  const auto r = parse_body("a_total 1 # {t=\"1\"} 1\n", body_format::text);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().line, 1u);
}

TEST(FormatForContentType, OnlyTheOpenMetricsMediaTypeSelectsOpenMetrics) {
  EXPECT_EQ(format_for_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            body_format::openmetrics);
  EXPECT_EQ(format_for_content_type(" Application/OpenMetrics-Text "), body_format::openmetrics);
  EXPECT_EQ(format_for_content_type("text/plain; version=0.0.4"), body_format::text);
  EXPECT_EQ(format_for_content_type(""), body_format::text);
  EXPECT_EQ(format_for_content_type("application/json"), body_format::text);
  EXPECT_EQ(format_for_content_type("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily"),
            body_format::protobuf);
  EXPECT_FALSE(parse_body("a 1\n", body_format::protobuf).has_value());
}

}  // namespace
}  // namespace cmp::exposition
