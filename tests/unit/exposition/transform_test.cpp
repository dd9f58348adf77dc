#include "cmp/exposition/transform.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "cmp/exposition/parser.hpp"
#include "test_support.hpp"
#include "cmp/exposition/writer.hpp"

namespace cmp::exposition {
namespace {

using test_support::parse_ok;
using test_support::text;

TEST(AddLabels, AppendsInMapOrderAndExistingLabelsWin) {
  auto fams = parse_ok("m{env=\"upstream\",a=\"1\"} 1\nm{a=\"2\"} 2\nn 3\n");
  const std::size_t conflicts = add_labels(fams, {{"zone", "z1"}, {"env", "prod"}});
  EXPECT_EQ(conflicts, 1u);
  EXPECT_EQ(text(fams),
            "# TYPE m untyped\n"
            "m{env=\"upstream\",a=\"1\",zone=\"z1\"} 1\n"
            "m{a=\"2\",env=\"prod\",zone=\"z1\"} 2\n"
            "# TYPE n untyped\n"
            "n{env=\"prod\",zone=\"z1\"} 3\n");
}

TEST(AddLabels, NothingToAdd) {
  auto fams = parse_ok("m 1\n");
  EXPECT_EQ(add_labels(fams, {}), 0u);
  EXPECT_TRUE(fams[0].samples[0].labels().empty());
}

TEST(RenameLabel, RenamesInPlaceAndCountsConflicts) {
  auto fams = parse_ok(
      "lat{endpoint=\"e\",percentile=\"p50\"} 1\n"
      "lat{percentile=\"p90\",statistic=\"x\"} 2\n"
      "other 3\n");
  const rename_stats stats = rename_label(fams, "percentile", "statistic");
  EXPECT_EQ(stats.renamed, 1u);
  EXPECT_EQ(stats.conflicts, 1u);
  EXPECT_EQ(fams[0].samples[0].labels(), (std::vector<label>{{"endpoint", "e"}, {"statistic", "p50"}}));
  EXPECT_EQ(fams[0].samples[1].labels(),
            (std::vector<label>{{"percentile", "p90"}, {"statistic", "x"}}));
}

TEST(RenameLabel, InvalidTargetChangesNothing) {
  auto fams = parse_ok("m{a=\"1\"} 1\n");
  for (const char* bad : {"", "1a", "a-b", "a b"}) {
    const rename_stats stats = rename_label(fams, "a", bad);
    EXPECT_EQ(stats.renamed, 0u) << bad;
  }
  EXPECT_EQ(rename_label(fams, "a", "a").renamed, 0u);
  EXPECT_EQ(fams[0].samples[0].labels()[0].name, "a");
}

TEST(Timestamps, SetAndClear) {
  auto fams = parse_ok("a 1\nb 2 5\n");
  set_timestamps(fams, 1700000000000);
  EXPECT_EQ(fams[0].samples[0].timestamp_ms, 1700000000000);
  EXPECT_EQ(fams[1].samples[0].timestamp_ms, 1700000000000);
  clear_timestamps(fams);
  EXPECT_FALSE(fams[0].samples[0].timestamp_ms);
  EXPECT_FALSE(fams[1].samples[0].timestamp_ms);
}

TEST(Timestamps, SeveralPointsOfASeriesBecomeItsLatestAtTheWindow) {
  // Stamped with one window, the points would be duplicates for a scraper:
  // the latest stays (one without a timestamp is the latest), in the place
  // of the first point, values of other series untouched.
  auto fams = parse_ok("m{a=\"1\"} 1 1000\nm{a=\"2\"} 7\nm{a=\"1\"} 3 3000\nm{a=\"1\"} 2 2000\n"
                       "n 1 1000\nn 9\n");
  EXPECT_EQ(set_timestamps(fams, 60'000), 3u);
  ASSERT_EQ(fams[0].samples.size(), 2u);
  EXPECT_EQ(fams[0].samples[0].labels()[0].value, "1");
  EXPECT_EQ(fams[0].samples[0].value, 3);
  EXPECT_EQ(fams[0].samples[1].value, 7);
  ASSERT_EQ(fams[1].samples.size(), 1u);
  EXPECT_EQ(fams[1].samples[0].value, 9);
  for (const auto& f : fams)
    for (const auto& s : f.samples) EXPECT_EQ(s.timestamp_ms, 60'000);
}

TEST(Merge, FirstSeenOrderTypeConflictsAndDuplicates) {
  const auto a = parse_ok(
      "# TYPE up gauge\nup{u=\"a\"} 1\n"
      "# TYPE reqs_total counter\nreqs_total{u=\"a\"} 5\n");
  const auto b = parse_ok(
      "# HELP up Whether the upstream is up.\n# TYPE up gauge\nup{u=\"b\"} 0\nup{u=\"a\"} 9\n"
      "# TYPE reqs_total gauge\nreqs_total{u=\"b\"} 7\nreqs_total{u=\"c\"} 8\n"
      "# TYPE extra gauge\nextra 1\n");
  const family_list* parts[] = {&a, nullptr, &b};
  merge_stats stats;
  const family_list merged = merge(parts, &stats);
  EXPECT_EQ(stats.families_dropped, 1u);
  EXPECT_EQ(stats.samples_dropped, 2u);
  EXPECT_EQ(stats.duplicate_series, 1u);
  EXPECT_EQ(text(merged),
            "# HELP up Whether the upstream is up.\n"
            "# TYPE up gauge\n"
            "up{u=\"a\"} 1\n"
            "up{u=\"b\"} 0\n"
            "# TYPE reqs_total counter\n"
            "reqs_total{u=\"a\"} 5\n"
            "# TYPE extra gauge\n"
            "extra 1\n");
  // The merged list is valid input again.
  EXPECT_TRUE(parse_text(text(merged)).has_value());
}

TEST(Merge, DuplicatesWithinOnePartAndAcrossLabelOrder) {
  family_list a{family{"m", metric_type::gauge, {}, {}}};
  a[0].samples.push_back(sample{"m", {{"x", "1"}, {"y", "2"}}, 1, {}});
  a[0].samples.push_back(sample{"m", {{"y", "2"}, {"x", "1"}}, 2, {}});
  a[0].samples.push_back(sample{"m", {{"y", "2"}}, 3, {}});
  const family_list* parts[] = {&a};
  merge_stats stats;
  const auto merged = merge(parts, &stats);
  EXPECT_EQ(stats.duplicate_series, 1u);
  ASSERT_EQ(merged.size(), 1u);
  EXPECT_EQ(merged[0].samples.size(), 2u);
  EXPECT_EQ(merged[0].samples[1].value, 3);
}

// Several points of one series (explicit timestamps) stay within a part, as
// the parser kept them; the same timestamp twice is a duplicate; a series
// already taken from an earlier part is dropped whatever its timestamps.
TEST(Merge, PointsOfOneSeriesStayWithinAPart) {
  const auto a = parse_ok("m 1 1000\nm 2 2000\nm 3\n");
  family_list b = a;
  b[0].samples.push_back(sample("m", {}, 4, 2000));
  const family_list* parts[] = {&b, &a};
  merge_stats stats;
  const auto merged = merge(parts, &stats);
  EXPECT_EQ(stats.duplicate_series, 4u);
  EXPECT_EQ(text(merged), "# TYPE m untyped\nm 1 1000\nm 2 2000\nm 3\n");
}

TEST(Merge, ManyFamiliesKeepTheirIndex) {
  // Enough families that any reallocation of the result would show.
  std::string body;
  for (int i = 0; i < 500; ++i) {
    const std::string n = std::to_string(i);
    body.append("f").append(n).append(" ").append(n).append("\n");
  }
  const auto a = parse_ok(body);
  const auto b = parse_ok(body);
  const family_list* parts[] = {&a, &b};
  merge_stats stats;
  const auto merged = merge(parts, &stats);
  EXPECT_EQ(merged.size(), 500u);
  EXPECT_EQ(stats.duplicate_series, 500u);
  EXPECT_TRUE(equivalent(merged, a));
}

TEST(Equivalent, NanEqualsNanOnly) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const family_list x{family{"m", metric_type::gauge, {}, {sample{"m", {}, nan, {}}}}};
  family_list y = x;
  EXPECT_TRUE(equivalent(x, y));
  y[0].samples[0].value = 0;
  EXPECT_FALSE(equivalent(x, y));
  y = x;
  y[0].help = "";
  EXPECT_FALSE(equivalent(x, y));
}

}  // namespace
}  // namespace cmp::exposition
