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
using namespace std::string_literals;

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
                    "# TYPE c counter\n# HELP c Requests.\n# UNIT c \n"
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
                    {{k::negative_timestamp_dropped, 1, 1}}},
        // Go converts an out-of-range float to INT64_MIN: out of bounds, dropped.
        repair_case{"OpenMetricsHugeTimestampDropped", body_format::openmetrics,
                    "a 1 1e20\nb 2\n# EOF\n", "# TYPE b untyped\nb 2\n",
                    {{k::negative_timestamp_dropped, 1, 1}}},
        // promlex: a value may follow the name or `}` directly.
        repair_case{"ValueRightAfterNameOrLabels", body_format::text,
                    "foo{a=\"b\"}1\nbar-1\nbaz.5 7\n",
                    "# TYPE foo untyped\nfoo{a=\"b\"} 1\n# TYPE bar untyped\nbar -1\n"
                    "# TYPE baz untyped\nbaz 0.5 7\n",
                    {}},
        repair_case{"LabelsWithoutCommas", body_format::text, "a{x=\"1\"y=\"2\" z=\"3\",} 1\n",
                    "# TYPE a untyped\na{x=\"1\",y=\"2\",z=\"3\"} 1\n", {}},
        repair_case{"RawNewlineInLabelValue", body_format::text, "a{x=\"1\n2\"} 1\nb 2\n",
                    "# TYPE a untyped\na{x=\"1\\n2\"} 1\n# TYPE b untyped\nb 2\n", {}},
        // labels.Builder drops every label of a name that has an empty value.
        repair_case{"EmptyLabelTakesItsDuplicateWithIt", body_format::text,
                    "a{b=\"\",c=\"1\",b=\"x\"} 1\n", "# TYPE a untyped\na{c=\"1\"} 1\n", {}},
        repair_case{"NulStartingALineEndsTheBody", body_format::text, std::string("a 1\n\0b x\n", 9),
                    "# TYPE a untyped\na 1\n", {}},
        repair_case{"NulInAHashCommentEndsTheBody", body_format::text, std::string("a 1\n#x\0\nb{ 1\n", 12),
                    "# TYPE a untyped\na 1\n", {}},
        // promlex skips NULs after a label value's quote and cuts the value
        // one byte early: the quote and all but one NUL join the value.
        repair_case{"NulsAfterALabelValueJoinIt", body_format::text,
                    "a{x=\"1\"\0\0y=\"2\"} 1\n"s, "# TYPE a untyped\na{x=\"1\\\"\0\",y=\"2\"} 1\n"s, {}},
        repair_case{"NulsInTheHelpKeywordAreSkipped", body_format::text,
                    "# H\0ELP\t\0a text\na 1\n"s,
                    "# HELP a text\n# TYPE a untyped\na 1\n", {}},
        repair_case{"HelpOfBlanksOnlyIsEmpty", body_format::text, "# HELP a-  \na 1\n",
                    "# HELP a \n# TYPE a untyped\na 1\n", {}},
        repair_case{"AnyByteEndsAMetadataName", body_format::text,
                    "# TYPE a-counter\n# HELP a{text\na 1\n",
                    "# HELP a text\n# TYPE a counter\na 1\n", {}},
        // Prometheus stores every point of a series; the scraper's clock
        // decides which are out of order or out of bounds. Only the same
        // timestamp twice (or two without one) is a duplicate.
        repair_case{"SeveralPointsOfOneSeries", body_format::text,
                    "a 1 1000\na 2 2000\na 3 1500\na{b=\"\"} 4\na 5\na 6 2000\n",
                    "# TYPE a untyped\na 1 1000\na 2 2000\na 3 1500\na 4\n",
                    {{k::duplicate_series_dropped, 5, 2}}}),
    [](const ::testing::TestParamInfo<repair_case>& p) { return std::string(p.param.name); });

// The head checks label names only for a sample in bounds: one that
// Prometheus drops as too old or too far ahead (of the scrape's time) first
// refuses nothing. Without a scrape time every sample counts as in bounds.
TEST(ParseRepair, RepeatedLabelNameOnAnOutOfBoundsSampleIsDropped) {
  const std::string body =
      "a{x=\"1\",x=\"2\"} 1 1000\nb{__name__=\"c\"} 1 9223372036854775807\nd 1\n";
  parse_limits at;
  at.scrape_time_ms = 1'700'000'000'000;
  const auto r = parse_body(body, body_format::text, at);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  std::string out;
  write_text(r->families, out);
  EXPECT_EQ(out, "# TYPE d untyped\nd 1\n");
  EXPECT_EQ(r->normalizations, (std::vector<normalization>{{k::out_of_bounds_dropped, 1, 2}}));
  EXPECT_FALSE(parse_body(body, body_format::text).has_value());
  const auto recent = parse_body("a{x=\"1\",x=\"2\"} 1 1699999999000\n", body_format::text, at);
  ASSERT_FALSE(recent.has_value());
  EXPECT_NE(recent.error().reason.find("duplicate label name"), std::string::npos);
  // An empty or invalid __name__ fails before any timestamp is looked at.
  EXPECT_FALSE(parse_body("b{__name__=\"\"} 1 1000\n", body_format::text, at).has_value());
  EXPECT_FALSE(parse_body("b{__name__=\"1x\"} 1 1000\n", body_format::text, at).has_value());
}

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
        om_invalid_case{"BadExemplar", "a_total 1 # trace\n# EOF\n", 1, "invalid timestamp \"#\""},
        om_invalid_case{"ExemplarOnAGauge", "a 1 # {t=\"1\"} 1\n# EOF\n", 1, "does not support exemplars"},
        om_invalid_case{"UnitNotASuffix", "# UNIT a_bytes seconds\n# EOF\n", 1, "not a suffix"},
        om_invalid_case{"BlankLine", "a 1\n\n# EOF\n", 2, "blank line"},
        om_invalid_case{"PlainComment", "# hello\na 1\n# EOF\n", 1, "expected HELP"},
        om_invalid_case{"TwoSpacesBeforeValue", "a  1\n# EOF\n", 1, "expected value"},
        om_invalid_case{"TabBeforeValue", "a\t1\n# EOF\n", 1, "expected ' '"},
        om_invalid_case{"TrailingComma", "a{b=\"1\",} 1\n# EOF\n", 1, "expected label name after ','"},
        om_invalid_case{"NoComma", "a{b=\"1\"c=\"2\"} 1\n# EOF\n", 1, "expected ',' or '}'"},
        om_invalid_case{"BlankInLabels", "a{b = \"1\"} 1\n# EOF\n", 1, "expected '='"},
        om_invalid_case{"HelpWithoutText", "# HELP a\n# EOF\n", 1, "expected ' ' and text"},
        om_invalid_case{"EofWithTrailingBlank", "a 1\n# EOF \n", 2, "unexpected data after # EOF"},
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
