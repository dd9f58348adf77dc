#include "cmp/upstream/derived_counters.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "cmp/exposition/parser.hpp"

namespace cmp::upstream {
namespace {

exposition::family_list window(double a, double b) {
  const std::string text =
      "# TYPE requests_count_total gauge\n"
      "requests_count_total{endpoint=\"x\",organization_id=\"o\"} " + std::to_string(a) + "\n"
      "requests_count_total{endpoint=\"y\",organization_id=\"o\"} " + std::to_string(b) + "\n"
      "# TYPE cache_rate gauge\ncache_rate{endpoint=\"x\"} 0.5\n"
      "# TYPE real_counter_total counter\nreal_counter_total 7\n";
  return exposition::parse_text(text).value();
}

double value_of(const exposition::family_list& fams, const std::string& family, const std::string& endpoint) {
  for (const auto& f : fams)
    if (f.name == family)
      for (const auto& s : f.samples)
        for (const auto l : s.labels())
          if (l.name == "endpoint" && l.value == endpoint) return s.value;
  return std::numeric_limits<double>::quiet_NaN();
}

TEST(DerivedCounters, SumsEachWindowOnceAndOnlyPerWindowTotals) {
  derived_counters d;
  EXPECT_TRUE(d.add_window(window(10, 1), 60'000));
  EXPECT_TRUE(d.add_window(window(5, 2), 120'000));
  EXPECT_FALSE(d.add_window(window(5, 2), 120'000));  // the same window scraped again
  EXPECT_FALSE(d.add_window(window(99, 99), 60'000));  // an older window arriving late
  const auto fams = d.families();
  ASSERT_EQ(fams.size(), 1u);  // cache_rate is no _total; real counters are left alone
  EXPECT_EQ(fams[0].name, "cerebras_proxy_cumulative_requests_count_total");
  EXPECT_EQ(fams[0].type, exposition::metric_type::counter);
  EXPECT_EQ(value_of(fams, fams[0].name, "x"), 15);
  EXPECT_EQ(value_of(fams, fams[0].name, "y"), 3);
}

TEST(DerivedCounters, SkipsNonFiniteAndNegativeValues) {
  derived_counters d;
  auto w = window(10, 1);
  w[0].samples[1].value = std::numeric_limits<double>::quiet_NaN();
  d.add_window(w, 60'000);
  auto w2 = window(-3, 4);
  d.add_window(w2, 120'000);
  const auto fams = d.families();
  EXPECT_EQ(value_of(fams, fams[0].name, "x"), 10);
  EXPECT_EQ(value_of(fams, fams[0].name, "y"), 4);
}

TEST(DerivedCounters, SurvivesSerializationSoRestartsStayMonotonic) {
  derived_counters d;
  d.add_window(window(10, 1), 60'000);
  const auto restored = derived_counters::parse(d.serialize());
  ASSERT_TRUE(restored.has_value());
  auto again = *restored;
  EXPECT_EQ(again.last_window_ms(), 60'000);
  EXPECT_FALSE(again.add_window(window(10, 1), 60'000));
  EXPECT_TRUE(again.add_window(window(1, 1), 120'000));
  EXPECT_EQ(value_of(again.families(), "cerebras_proxy_cumulative_requests_count_total", "x"), 11);
}

TEST(DerivedCounters, ParseRejectsForeignOrCorruptText) {
  EXPECT_FALSE(derived_counters::parse(""));
  EXPECT_FALSE(derived_counters::parse("requests_count_total 1\n"));
  EXPECT_FALSE(derived_counters::parse("# cmp-derived-counters v1 window_end_ms=x\n"));
  EXPECT_FALSE(derived_counters::parse("# cmp-derived-counters v1 window_end_ms=5\nfoo{ 1\n"));
  EXPECT_FALSE(derived_counters::parse("# cmp-derived-counters v1 window_end_ms=5\nother_total 1\n"));
}

}  // namespace
}  // namespace cmp::upstream
