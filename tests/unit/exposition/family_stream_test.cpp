#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cmp/exposition/writer.hpp"
#include "test_support.hpp"

namespace cmp::exposition {
namespace {

using test_support::parse_ok;
using test_support::text;

// What the daemon's own metrics look like, written a sample at a time.
std::string streamed(format f) {
  std::string out;
  family_stream w(out, f);
  w.header("proxy_requests_total", metric_type::counter, "Requests, by \"code\".\nSecond line \\ end.");
  w.sample("proxy_requests_total", {{"upstream", "org-a"}, {"code", "200"}}, std::uint64_t{7});
  w.sample("proxy_requests_total", {{"upstream", "quote\"back\\slash\nnl"}, {"code", "timeout"}},
           std::uint64_t{1});
  w.header("proxy_up", metric_type::gauge, "Up.");
  w.sample("proxy_up", {}, 1.0);
  w.header("proxy_ratio", metric_type::untyped, "Special values.");
  w.sample("proxy_ratio", {{"v", "nan"}}, std::numeric_limits<double>::quiet_NaN());
  w.sample("proxy_ratio", {{"v", "inf"}}, std::numeric_limits<double>::infinity());
  w.sample("proxy_ratio", {{"v", "half"}}, 0.5);
  return out;
}

TEST(FamilyStream, WritesExactlyWhatTheModelWriterWritesForTheSameFamilies) {
  const std::string once = streamed(format::text);
  // Parsing it back and writing the model again must give the same bytes:
  // one writer's rules, whichever way a family is written.
  EXPECT_EQ(text(parse_ok(once)), once);
}

TEST(FamilyStream, EscapesLabelValuesAndHelpLikeTheModelWriter) {
  const std::string out = streamed(format::text);
  EXPECT_NE(out.find(R"(upstream="quote\"back\\slash\nnl")"), std::string::npos) << out;
  // Text format HELP escapes only backslash and newline.
  EXPECT_NE(out.find(R"(# HELP proxy_requests_total Requests, by "code".\nSecond line \\ end.)"),
            std::string::npos)
      << out;
  const auto families = parse_ok(out);
  ASSERT_EQ(families.size(), 3u);
  EXPECT_EQ(std::string((*families[0].samples[1].labels().begin()).value), "quote\"back\\slash\nnl");
}

TEST(FamilyStream, OpenMetricsNamesACounterFamilyWithoutTotalAndSaysUnknown) {
  const std::string out = streamed(format::openmetrics);
  EXPECT_NE(out.find("# TYPE proxy_requests counter\n"), std::string::npos) << out;
  EXPECT_NE(out.find("proxy_requests_total{upstream=\"org-a\",code=\"200\"} 7\n"), std::string::npos);
  EXPECT_NE(out.find("# TYPE proxy_ratio unknown\n"), std::string::npos);
  // OpenMetrics HELP escapes the double quote too.
  EXPECT_NE(out.find(R"(Requests, by \"code\".)"), std::string::npos) << out;
}

TEST(FamilyStream, CountsAboveTwoToThe53AreExact) {
  std::string out;
  family_stream w(out, format::text);
  w.sample("big_total", {}, std::uint64_t{9007199254740993});
  EXPECT_EQ(out, "big_total 9007199254740993\n");
}

TEST(LeText, BoundsInTheCanonicalOpenMetricsForm) {
  const std::vector<std::pair<double, std::string>> table = {
      {0.05, "0.05"}, {1, "1.0"}, {2.5, "2.5"}, {60, "60.0"},
      {std::numeric_limits<double>::infinity(), "+Inf"}, {1e-7, "1e-07"},
  };
  for (const auto& [bound, want] : table) {
    char buf[32];
    EXPECT_EQ(le_text(bound, buf), want);
  }
}

}  // namespace
}  // namespace cmp::exposition
