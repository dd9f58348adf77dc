#include <gtest/gtest.h>

#include "cmp/config/config.hpp"

namespace cmp::config {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

struct valid_case {
  const char* text;
  milliseconds expected;
};

constexpr milliseconds day = hours(24);

TEST(ParseDuration, AcceptsPrometheusNotation) {
  const valid_case cases[] = {
      {"0", milliseconds(0)},  // model.ParseDuration accepts a bare 0
      {"0s", milliseconds(0)},
      {"0ms", milliseconds(0)},
      {"1ms", milliseconds(1)},
      {"500ms", milliseconds(500)},
      {"10s", seconds(10)},
      {"5m", minutes(5)},
      {"1h", hours(1)},
      {"1d", day},
      {"1w", 7 * day},
      {"1y", 365 * day},
      {"1h30m", minutes(90)},
      {"1m30s", seconds(90)},
      {"1s500ms", milliseconds(1500)},
      {"1y2w3d4h5m6s7ms",
       365 * day + 14 * day + 3 * day + hours(4) + minutes(5) + seconds(6) + milliseconds(7)},
      {"90s", seconds(90)},   // not normalised, still valid
      {"010s", seconds(10)},  // leading zeros, as the Prometheus regexp allows
      {"60m", hours(1)},
  };
  for (const auto& c : cases) {
    const auto d = parse_duration(c.text);
    ASSERT_TRUE(d.has_value()) << c.text;
    EXPECT_EQ(*d, c.expected) << c.text;
  }
}

TEST(ParseDuration, RejectsEverythingElse) {
  const char* const cases[] = {
      "",                       // empty (newer Prometheus rejects it too)
      "10",                     // a number needs a unit, except 0
      "00",                     //
      "10x",                    // unknown unit
      "s",                      // unit without number
      "1.5s",                   // no fractions
      "-1s",                    // no sign
      "+1s",                    //
      " 1s",                    // no spaces
      "1s ",                    //
      "1 s",                    //
      "1s1m",                   // units out of order
      "1m1h",                   //
      "1s1s",                   // repeated unit
      "1ms1s",                  // ms must be last
      "1ms1ms",                 //
      "1us",                    // Go units Prometheus does not know
      "1ns",                    //
      "1H",                     // case matters
      "1M",                     //
      "1h30",                   // trailing number without unit
      "99999999999999999999s",  // overflow
      "300000000y",             // overflows int64 milliseconds
      "1mss",                   //
  };
  for (const char* text : cases) {
    EXPECT_FALSE(parse_duration(text).has_value()) << '"' << text << '"';
  }
}

TEST(FormatDuration, ShortestPrometheusForm) {
  const valid_case cases[] = {
      {"0s", milliseconds(0)},
      {"1ms", milliseconds(1)},
      {"500ms", milliseconds(500)},
      {"1s500ms", milliseconds(1500)},
      {"10s", seconds(10)},
      {"1m30s", milliseconds(90000)},
      {"5m", minutes(5)},
      {"1h30m", minutes(90)},
      {"1d", day},
      {"1w", 7 * day},
      {"1w1d", 8 * day},
      {"1y", 365 * day},
      {"1y1w1d1h1m1s1ms",
       365 * day + 8 * day + hours(1) + minutes(1) + seconds(1) + milliseconds(1)},
  };
  for (const auto& c : cases) EXPECT_EQ(format_duration(c.expected), c.text);
  EXPECT_EQ(format_duration(milliseconds(-1500)), "-1s500ms");
}

TEST(FormatDuration, RoundTrips) {
  const milliseconds samples[] = {
      milliseconds(0),
      milliseconds(1),
      milliseconds(999),
      milliseconds(1000),
      milliseconds(59'999),
      milliseconds(60'000),
      milliseconds(61'001),
      milliseconds(3'600'000),
      milliseconds(86'399'999),
      milliseconds(604'800'000),
      milliseconds(31'536'000'000),
      milliseconds(123'456'789'012),
  };
  for (const auto d : samples) {
    const auto text = format_duration(d);
    const auto back = parse_duration(text);
    ASSERT_TRUE(back.has_value()) << text;
    EXPECT_EQ(*back, d) << text;
  }
  // And the other way: a canonical string comes back unchanged.
  for (const char* text : {"1h30m", "5m", "10s", "500ms", "2w3d", "1y"}) {
    EXPECT_EQ(format_duration(*parse_duration(text)), text);
  }
}

}  // namespace
}  // namespace cmp::config
