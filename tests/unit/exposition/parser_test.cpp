#include "cmp/exposition/parser.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "../../../bench/cerebras_payload.hpp"
#include "cmp/exposition/transform.hpp"
#include "test_support.hpp"

namespace cmp::exposition {
namespace {

using test_support::parse_ok;

constexpr double inf = std::numeric_limits<double>::infinity();

TEST(ParseText, EmptyBodyHasNoFamilies) {
  EXPECT_TRUE(parse_ok("").empty());
  EXPECT_TRUE(parse_ok("\n\n  \t\n").empty());
  EXPECT_TRUE(parse_ok("# just a comment\n#another\n").empty());
}

TEST(ParseText, FullFamily) {
  const auto fams = parse_ok(
      "# HELP http_requests_total The total number of HTTP requests.\n"
      "# TYPE http_requests_total counter\n"
      "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
      "http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n");
  ASSERT_EQ(fams.size(), 1u);
  const family& f = fams[0];
  EXPECT_EQ(f.name, "http_requests_total");
  EXPECT_EQ(f.type, metric_type::counter);
  EXPECT_EQ(f.help, "The total number of HTTP requests.");
  ASSERT_EQ(f.samples.size(), 2u);
  EXPECT_EQ(f.samples[0].name(), "http_requests_total");
  EXPECT_EQ(f.samples[0].labels(), (std::vector<label>{{"method", "post"}, {"code", "200"}}));
  EXPECT_EQ(f.samples[0].value, 1027);
  EXPECT_EQ(f.samples[0].timestamp_ms, 1395066363000);
  EXPECT_EQ(f.samples[1].value, 3);
}

struct value_case {
  const char* text;
  double expected;
};

class ParseValue : public ::testing::TestWithParam<value_case> {};

TEST_P(ParseValue, ParsesLikeGoParseFloat) {
  const auto fams = parse_ok(std::string("m ") + GetParam().text + "\n");
  ASSERT_EQ(fams.size(), 1u);
  const double v = fams[0].samples[0].value;
  if (std::isnan(GetParam().expected)) {
    EXPECT_TRUE(std::isnan(v));
  } else {
    EXPECT_EQ(v, GetParam().expected) << GetParam().text;
    EXPECT_EQ(std::signbit(v), std::signbit(GetParam().expected)) << GetParam().text;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, ParseValue,
    ::testing::Values(value_case{"1", 1}, value_case{"1.0", 1}, value_case{"-0", -0.0},
                      value_case{"+0", 0}, value_case{"1e-3", 1e-3}, value_case{"1E+3", 1e3},
                      value_case{".5", 0.5}, value_case{"5.", 5}, value_case{"-.5e1", -5},
                      value_case{"007", 7}, value_case{"1.7976931348623157e308", 1.7976931348623157e308},
                      value_case{"4.9e-324", 4.9e-324}, value_case{"1e-400", 0},
                      value_case{"-1e-400", -0.0}, value_case{"NaN", std::nan("")},
                      value_case{"nan", std::nan("")}, value_case{"+Inf", inf},
                      value_case{"-Inf", -inf}, value_case{"Inf", inf}, value_case{"inf", inf},
                      value_case{"-infinity", -inf}, value_case{"+Infinity", inf},
                      value_case{"0.1", 0.1}, value_case{"123456789012345678901234567890", 1.2345678901234568e29}));

TEST(ParseText, LabelValueEscapes) {
  // An empty value is no label: Prometheus stores none.
  const auto fams = parse_ok(R"(m{a="back\\slash",b="quote\"d",c="new\nline",d="",e="ünï€ode"} 1)");
  ASSERT_EQ(fams.size(), 1u);
  EXPECT_EQ(fams[0].samples[0].labels(),
            (std::vector<label>{{"a", "back\\slash"},
                                {"b", "quote\"d"},
                                {"c", "new\nline"},
                                {"e", "ünï€ode"}}));
}

TEST(ParseText, HelpEscapesAndSpacing) {
  const auto fams = parse_ok(
      "# HELP a one\\\\two\\nthree \"quoted\"\n"
      "a 1\n"
      "# HELP b\n"
      "b 1\n"
      "#   HELP c  two leading blanks, one kept \n"
      "c 1\n");
  ASSERT_EQ(fams.size(), 3u);
  EXPECT_EQ(fams[0].help, "one\\two\nthree \"quoted\"");
  EXPECT_EQ(fams[1].help, "");
  EXPECT_EQ(fams[2].help, " two leading blanks, one kept ");
}

TEST(ParseText, WhitespaceAndCommentsAreTolerated) {
  const auto fams = parse_ok(
      "  # a comment\n"
      "#HELP not_metadata because no blank after hash\n"
      "# HELPER not metadata either\n"
      "# HELP\n"
      "# TYPE\n"
      "\n"
      "\t# TYPE m gauge\n"
      "m { a = \"1\" , b=\"2\", } \t 1 \t 42 \t\n"
      "m{} 2\n"
      "m{c=\"3\",} 3");  // no final newline
  ASSERT_EQ(fams.size(), 1u);
  const family& f = fams[0];
  EXPECT_EQ(f.type, metric_type::gauge);
  ASSERT_EQ(f.samples.size(), 3u);
  EXPECT_EQ(f.samples[0].labels(), (std::vector<label>{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(f.samples[0].timestamp_ms, 42);
  EXPECT_TRUE(f.samples[1].labels().empty());
  EXPECT_EQ(f.samples[2].value, 3);
}

TEST(ParseText, Timestamps) {
  const auto fams = parse_ok("a 1 1500\nb 1 0\nc 1 9223372036854775807\n");
  ASSERT_EQ(fams.size(), 3u);
  EXPECT_EQ(fams[0].samples[0].timestamp_ms, 1500);
  EXPECT_EQ(fams[1].samples[0].timestamp_ms, 0);
  EXPECT_EQ(fams[2].samples[0].timestamp_ms, std::numeric_limits<std::int64_t>::max());
}

TEST(ParseText, UntypedSamplesFormOneFamilyPerName) {
  const auto fams = parse_ok("a 1\na{x=\"1\"} 2\nb 3\nc_bucket{le=\"1\"} 4\nc_sum 5\n");
  ASSERT_EQ(fams.size(), 4u);
  EXPECT_EQ(fams[0].name, "a");
  EXPECT_EQ(fams[0].samples.size(), 2u);
  EXPECT_EQ(fams[1].name, "b");
  EXPECT_EQ(fams[2].name, "c_bucket");
  EXPECT_EQ(fams[3].name, "c_sum");
  for (const family& f : fams) EXPECT_EQ(f.type, metric_type::untyped);
}

TEST(ParseText, HistogramAndSummaryGroupSuffixedSamples) {
  const auto fams = parse_ok(
      "# TYPE rpc_duration_seconds summary\n"
      "rpc_duration_seconds{quantile=\"0.5\"} 4773\n"
      "rpc_duration_seconds{quantile=\"0.99\"} 76656\n"
      "rpc_duration_seconds_sum 1.7560473e+07\n"
      "rpc_duration_seconds_count 2693\n"
      "# TYPE http_request_duration_seconds histogram\n"
      "http_request_duration_seconds_bucket{le=\"0.05\"} 24054\n"
      "http_request_duration_seconds_bucket{le=\"+Inf\"} 144320\n"
      "http_request_duration_seconds_sum 53423\n"
      "http_request_duration_seconds_count 144320\n"
      "http_request_duration_seconds_created 1\n");
  ASSERT_EQ(fams.size(), 3u);
  EXPECT_EQ(fams[0].type, metric_type::summary);
  EXPECT_EQ(fams[0].samples.size(), 4u);
  EXPECT_EQ(fams[0].samples[3].name(), "rpc_duration_seconds_count");
  EXPECT_EQ(fams[1].type, metric_type::histogram);
  EXPECT_EQ(fams[1].samples.size(), 4u);
  EXPECT_EQ(fams[1].samples[1].labels()[0].value, "+Inf");
  // Not a histogram suffix in the text format: a family of its own.
  EXPECT_EQ(fams[2].name, "http_request_duration_seconds_created");
  EXPECT_EQ(fams[2].type, metric_type::untyped);
}

TEST(ParseText, MetadataWithoutSamplesIsDropped) {
  const auto fams = parse_ok("# HELP a x\n# TYPE a gauge\n# TYPE b counter\nb 1\n# HELP c y\n");
  ASSERT_EQ(fams.size(), 1u);
  EXPECT_EQ(fams[0].name, "b");
}

TEST(ParseText, HelpMayFollowSamplesOfItsFamily) {
  const auto fams = parse_ok("# TYPE a gauge\na 1\n# HELP a late\na{x=\"y\"} 2\n");
  ASSERT_EQ(fams.size(), 1u);
  EXPECT_EQ(fams[0].help, "late");
  EXPECT_EQ(fams[0].samples.size(), 2u);
}

TEST(ParseText, NamesWithColonsAndDigits) {
  const auto fams = parse_ok("job:rate5m:sum_2{_l9=\"x\"} 1\n:weird 2\n_x 3\n");
  ASSERT_EQ(fams.size(), 3u);
  EXPECT_EQ(fams[0].name, "job:rate5m:sum_2");
  EXPECT_EQ(fams[1].name, ":weird");
}

TEST(ParseText, NulAndHighBytesInsideValuesAreText) {
  const std::string body = std::string("m{a=\"x") + '\0' + "y\"} 1\n";
  const auto fams = parse_ok(body);
  ASSERT_EQ(fams.size(), 1u);
  EXPECT_EQ(fams[0].samples[0].labels()[0].value, std::string("x\0y", 3));
}

TEST(ParseText, CerebrasPayload) {
  const std::string body = cmp::bench::cerebras_payload(3);
  const auto fams = parse_ok(body);
  ASSERT_EQ(fams.size(), 11u);
  EXPECT_EQ(fams[1].name, "requests_count_total");
  EXPECT_EQ(fams[1].type, metric_type::gauge);
  EXPECT_EQ(fams[0].samples.size(), 3u);
  EXPECT_EQ(fams[3].samples.size(), 12u);
  EXPECT_EQ(fams[10].samples.size(), 15u);
  EXPECT_EQ(fams[0].samples[0].value, 1.0);
  EXPECT_EQ(fams[10].samples[0].labels()[2].name, "statistic");
}

struct invalid_case {
  const char* name;
  std::string body;
  std::size_t line;
  const char* reason;  // substring of parse_error::reason
};

class ParseInvalid : public ::testing::TestWithParam<invalid_case> {};

TEST_P(ParseInvalid, IsRejectedWithPosition) {
  const invalid_case& c = GetParam();
  const auto r = parse_text(c.body);
  ASSERT_FALSE(r.has_value()) << "accepted: " << c.body;
  EXPECT_EQ(r.error().line, c.line) << r.error().message();
  EXPECT_NE(r.error().reason.find(c.reason), std::string::npos) << r.error().message();
  EXPECT_GE(r.error().column, 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, ParseInvalid,
    ::testing::Values(
        invalid_case{"NameStartsWithDigit", "ok 1\n1abc 1\n", 2, "invalid metric name"},
        // promlex ends the name at `-`: the value is `-bar`.
        invalid_case{"NameWithDash", "foo-bar 1\n", 1, "invalid value \"-bar\""},
        invalid_case{"MissingValue", "foo\n", 1, "expected value"},
        invalid_case{"MissingValueAfterLabels", "foo{a=\"b\"}\n", 1, "expected value"},
        invalid_case{"BadValue", "foo 1x\n", 1, "invalid value \"1x\""},
        invalid_case{"HexValue", "foo 0x1p3\n", 1, "invalid value"},
        invalid_case{"UnderscoreValue", "foo 1_000\n", 1, "invalid value"},
        invalid_case{"SignedNaN", "foo -NaN\n", 1, "invalid value"},
        invalid_case{"LonelyDot", "foo .\n", 1, "invalid value"},
        invalid_case{"DanglingExponent", "foo 1e\n", 1, "invalid value"},
        invalid_case{"ValueOverflow", "foo 1e400\n", 1, "out of range"},
        invalid_case{"FloatTimestamp", "foo 1 1.5\n", 1, "invalid timestamp"},
        invalid_case{"PlusTimestamp", "foo 1 +15\n", 1, "invalid timestamp"},
        invalid_case{"TimestampOverflow", "foo 1 9223372036854775808\n", 1, "out of range"},
        invalid_case{"TrailingGarbage", "foo 1 2 3\n", 1, "unexpected text after timestamp"},
        invalid_case{"LabelNameWithColon", "foo{a:b=\"c\"} 1\n", 1, "expected '='"},
        invalid_case{"LabelNameStartsWithDigit", "foo{1a=\"c\"} 1\n", 1, "invalid label name"},
        invalid_case{"UnquotedLabelValue", "foo{a=b} 1\n", 1, "expected '\"'"},
        // A text label value may span lines; this one runs to the end.
        invalid_case{"UnterminatedLabelValue", "foo{a=\"b} 1\n", 2, "unterminated value"},
        invalid_case{"UnterminatedLabelSet", "foo{a=\"b\" 1\n", 1, "invalid label name"},
        invalid_case{"DoubleComma", "foo{a=\"1\",,b=\"2\"} 1\n", 1, "invalid label name"},
        invalid_case{"EmptyLabelPair", "foo{,} 1\n", 1, "invalid label name"},
        invalid_case{"DuplicateLabelName", "foo{a=\"1\",b=\"2\",a=\"3\"} 1\n", 1,
                     "duplicate label name \"a\""},
        invalid_case{"InvalidUtf8LabelValue", "foo{a=\"\xc3\x28\"} 1\n", 1, "not valid UTF-8"},
        invalid_case{"InvalidUtf8Help", "# HELP foo \xff\nfoo 1\n", 1, "not valid UTF-8"},
        invalid_case{"UnknownType", "# TYPE foo gaugee\nfoo 1\n", 1, "unknown metric type"},
        invalid_case{"UpperCaseType", "# TYPE foo GAUGE\n", 1, "unknown metric type"},
        invalid_case{"MissingType", "# TYPE foo\n", 1, "missing metric type"},
        invalid_case{"TypeWithExtraWord", "# TYPE foo gauge extra\n", 1, "unknown metric type"},
        // Prometheus takes the rest of the line after one blank as the type.
        invalid_case{"TypeAfterTwoBlanks", "# TYPE foo  gauge\nfoo 1\n", 1, "unknown metric type"},
        invalid_case{"TypeWithTrailingBlank", "# TYPE foo gauge \nfoo 1\n", 1,
                     "unknown metric type"},
        invalid_case{"BlankBeforeSample", "a 1\n  b 1\n", 2, "blank before the metric name"},
        invalid_case{"NegativeTimestamp", "foo 1 -1500\n", 1, "invalid timestamp"},
        invalid_case{"UnknownTypeWordOfOpenMetrics", "# TYPE foo unknown\nfoo 1\n", 1,
                     "unknown metric type"},
        invalid_case{"HelpWithoutName", "# HELP \n", 1, "expected metric name"},
        invalid_case{"TypeBadName", "# TYPE 0foo gauge\n", 1, "invalid metric name"},
        invalid_case{"CrlfSample", "foo 1\r\n", 1, "carriage return"},
        invalid_case{"CrlfType", "# TYPE foo gauge\r\nfoo 1\r\n", 1, "carriage return"},
        invalid_case{"CrlfAfterTimestamp", "foo 1 2\r\n", 1, "carriage return"},
        invalid_case{"QuotedMetricName", "{\"foo\"} 1\n", 1, "invalid metric name"},
        invalid_case{"VerticalTabIsNotBlank", "foo\v1\n", 1, "invalid value"},
        invalid_case{"BraceAfterLabels", "foo{a=\"b\"}{c=\"d\"} 1\n", 1, "got '{'"},
        invalid_case{"NameLabel", "foo{__name__=\"bar\"} 1\n", 1, "__name__"},
        // The check skipped for a repeat of the previous line's names still
        // sees a repeat that is not one.
        invalid_case{"DuplicateAfterALineOfOtherNames", "a{x=\"1\",y=\"2\"} 1\na{x=\"1\",x=\"2\"} 1\n", 2,
                     "duplicate label name"},
        invalid_case{"DuplicateAfterAnEmptyLabel", "a{x=\"\",y=\"1\"} 1\nb{y=\"1\",y=\"2\"} 1\n", 2,
                     "duplicate label name"},
        invalid_case{"NameLabelEmpty", "foo{__name__=\"\"} 1\n", 1, "__name__"},
        invalid_case{"BackslashNewlineInLabelValue", "foo{a=\"b\\\nc\"} 1\n", 1, "unterminated value"},
        invalid_case{"NulAfterHelpName", std::string("# HELP foo\0 x\nfoo 1\n", 19), 1, "NUL"}),
    [](const ::testing::TestParamInfo<invalid_case>& p) { return std::string(p.param.name); });

// Hundreds of families: the sets of family names and series grow past
// their first size and still find what came first.
TEST(ParseText, ManyFamiliesKeepTheirTypesAndOrder) {
  std::string body;
  for (int i = 0; i < 300; ++i) {
    // append(), not "lit" + string: GCC 12 warns falsely (-Wrestrict) on the latter.
    std::string n = "m";
    n += std::to_string(i);
    body.append("# TYPE ").append(n).append(i % 2 ? " histogram\n" : " gauge\n");
    if (i % 2) {
      body.append(n).append("_bucket{le=\"+Inf\"} 1\n").append(n).append("_count 1\n");
    } else {
      body.append(n).append(" 1\n");
    }
  }
  const auto fams = parse_text(body);
  ASSERT_TRUE(fams.has_value()) << fams.error().message();
  ASSERT_EQ(fams->size(), 300u);
  EXPECT_EQ((*fams)[299].name, "m299");
  EXPECT_EQ((*fams)[299].type, metric_type::histogram);

  // A family that re-appears after 299 others is merged into its first block.
  const auto again = parse_text(body + "m0{x=\"1\"} 2\n");
  ASSERT_TRUE(again.has_value()) << again.error().message();
  ASSERT_EQ(again->size(), 300u);
  EXPECT_EQ((*again)[0].samples.size(), 2u);
  const auto late_sum = parse_text(body + "m1_sum 2\n");
  ASSERT_TRUE(late_sum.has_value()) << late_sum.error().message();
  ASSERT_EQ(late_sum->size(), 300u);
  EXPECT_EQ((*late_sum)[1].type, metric_type::histogram);
  EXPECT_EQ((*late_sum)[1].samples.back().name(), "m1_sum");
}

TEST(ParseText, ErrorPositionAndMessage) {
  const auto r = parse_text("a 1\nb 2\nc{x=\"1\" y:=\"2\"} 3\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().line, 3u);
  EXPECT_EQ(r.error().column, 10u);
  EXPECT_EQ(r.error().message(), "line 3, column 10: " + r.error().reason);
  EXPECT_THROW((void)r.value(), std::runtime_error);
}

TEST(ParseText, TheBodyCapIsTheOnlyDefaultLimit) {
  parse_limits small;
  small.max_bytes = 8;
  const auto r = parse_text("foo 1\nbar 2\n", small);
  EXPECT_NE(r.error().reason.find("exceeds the limit"), std::string::npos);
  EXPECT_TRUE(r.error().limit.empty());

  // Prometheus has no default limit on labels, names, values or HELP text.
  std::string labels;
  for (int i = 0; i < 300; ++i) labels.append("l").append(std::to_string(i)).append("=\"v\",");
  const std::string long_value(70000, 'v');
  const std::string long_name(5000, 'n');
  std::string body = "a{";
  body.append(labels).append("} 1\n");
  body.append(long_name).append("{").append(long_name).append("=\"").append(long_value).append("\"} 1\n");
  body.append("# HELP a ").append(long_value).append("\n");
  const auto big = parse_text(body);
  ASSERT_TRUE(big.has_value()) << big.error().message();
  EXPECT_EQ((*big)[0].samples[0].labels().size(), 300u);
}

// As Prometheus's verifyLabelLimits and sample_limit count: the metric name
// is the label __name__ (for the count, the name length and the value
// length), empty labels are gone, every sample line counts.
TEST(ParseText, PrometheusLimitsRefuseTheBodyAndNameTheLimit) {
  const auto refused_for = [](std::string_view body, const parse_limits& l) {
    const auto r = parse_text(body, l);
    return r ? std::string("taken") : std::string(r.error().limit);
  };
  parse_limits labels;
  labels.label_limit = 3;  // __name__ and two more
  EXPECT_EQ(refused_for("foo{a=\"1\",b=\"2\"} 1\n", labels), "taken");
  EXPECT_EQ(refused_for("foo{a=\"1\",b=\"2\",c=\"\"} 1\n", labels), "taken");
  EXPECT_EQ(refused_for("foo 1\nfoo{a=\"1\",b=\"2\",c=\"3\"} 1\n", labels), "label_limit");

  parse_limits names;
  names.label_name_length_limit = 8;  // `__name__` just fits
  EXPECT_EQ(refused_for("a_very_long_metric_name{abcdefgh=\"1\"} 1\n", names), "taken");
  EXPECT_EQ(refused_for("a{abcdefghi=\"1\"} 1\n", names), "label_name_length_limit");
  names.label_name_length_limit = 7;
  EXPECT_EQ(refused_for("a 1\n", names), "label_name_length_limit");

  parse_limits values;
  values.label_value_length_limit = 3;
  EXPECT_EQ(refused_for("abc{x=\"\\\\\\\\\\\\\"} 1\n", values), "taken");  // 3 after unescape
  EXPECT_EQ(refused_for("a{x=\"abcd\"} 1\n", values), "label_value_length_limit");
  EXPECT_EQ(refused_for("abcd 1\n", values), "label_value_length_limit");

  parse_limits samples;
  samples.sample_limit = 2;
  EXPECT_EQ(refused_for("a 1\na 2\n", samples), "taken");  // the duplicate counts too
  EXPECT_EQ(refused_for("a 1\nb 1\nb 1\n", samples), "sample_limit");
  // A body that does not parse is a parse error, whatever the count.
  EXPECT_EQ(refused_for("a 1\nb 1\nc 1\nd x\n", samples), "");
}

TEST(ParseText, SameSeriesNameInDifferentFamiliesIsStillADuplicate) {
  // `h_sum` before and after the histogram's TYPE line is one series; like
  // Prometheus, the first sample is kept.
  const auto r = parse_body("h_sum 1\n# TYPE h histogram\nh_sum 2\n", body_format::text);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  ASSERT_EQ(r->families.size(), 1u);
  EXPECT_EQ(r->families[0].name, "h");
  ASSERT_EQ(r->families[0].samples.size(), 1u);
  EXPECT_EQ(r->families[0].samples[0].value, 1);
  EXPECT_EQ(r->normalizations,
            (std::vector<normalization>{{normalization_kind::type_after_samples, 2, 1},
                                        {normalization_kind::duplicate_series_dropped, 3, 1}}));
}

}  // namespace
}  // namespace cmp::exposition
