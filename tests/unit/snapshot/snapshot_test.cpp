#include "cmp/snapshot/snapshot.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cmp/exposition/parser.hpp"
#include "cmp/exposition/transform.hpp"
#include "cmp/exposition/writer.hpp"

namespace cmp::snapshot {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

const wall_clock::time_point t0 = wall_clock::time_point{} + std::chrono::seconds(1'800'000'000);

exposition::family_list parse(std::string_view text) { return exposition::parse_text(text).value(); }

// What an upstream named `org` sends (after its `upstream` label was added).
std::string org_body(const std::string& org, int requests) {
  const std::string u = "upstream=\"" + org + "\"";
  return "# HELP requests_count_total Requests per model.\n"
         "# TYPE requests_count_total gauge\n"
         "requests_count_total{model=\"llama3.1-8b\"," + u + "} " + std::to_string(requests) + "\n"
         "requests_count_total{model=\"qwen-3-32b\"," + u + "} " + std::to_string(requests * 2) + "\n"
         "# HELP tokens_total Tokens.\n"
         "# TYPE tokens_total counter\n"
         "tokens_total{" + u + "} 1234\n";
}

std::shared_ptr<const snapshot> make_snapshot(std::string name, wall_clock::time_point fetched,
                                              std::string_view body) {
  return render_snapshot(std::move(name), parse(body), fetched, fetched - 5s);
}

std::shared_ptr<const snapshot> org(std::string name, wall_clock::time_point fetched, int requests = 1) {
  const auto body = org_body(name, requests);
  return make_snapshot(std::move(name), fetched, body);
}

std::string decode(const gzip_head& head) {
  const auto end = gzip_finish("");
  const auto trailer = gzip_trailer(head, end);
  return gzip_decompress(head.bytes + end.bytes + std::string(trailer.data(), trailer.size()), 1u << 26).value();
}

// The bodies a reader of the exposition writers would expect for `parts`.
std::pair<std::string, std::string> expected_bodies(std::vector<exposition::family_list> parts) {
  std::vector<const exposition::family_list*> ptrs;
  for (const auto& p : parts) ptrs.push_back(&p);
  const auto merged = exposition::merge(ptrs);
  std::string text, om;
  exposition::write_text(merged, text);
  exposition::write_openmetrics(merged, om);
  return {text, om};
}

std::size_t occurrences(std::string_view hay, std::string_view needle) {
  std::size_t n = 0;
  for (auto pos = hay.find(needle); pos != std::string_view::npos; pos = hay.find(needle, pos + 1)) ++n;
  return n;
}

TEST(MergeViews, EmptyViewHasEmptyBodiesAndNoLastModified) {
  const auto v = merge_views({});
  EXPECT_EQ(v->text.plain, "");
  EXPECT_EQ(v->openmetrics.plain, "");
  EXPECT_EQ(decode(v->text.gzip), "");
  EXPECT_EQ(decode(v->openmetrics.gzip), "");
  EXPECT_FALSE(v->last_modified);
  EXPECT_THAT(v->served, IsEmpty());
  EXPECT_EQ(v->series, 0u);
}

TEST(MergeViews, OneUpstreamBodiesAreTheWritersOutput) {
  const auto s = org("prod", t0);
  const auto v = merge_views({s});
  const auto [text, om] = expected_bodies({parse(org_body("prod", 1))});
  EXPECT_EQ(v->text.plain, text);
  EXPECT_EQ(v->openmetrics.plain, om);
  EXPECT_THAT(v->openmetrics.plain.str(), Not(HasSubstr("# EOF")));
  EXPECT_EQ(v->last_modified, t0);
  EXPECT_THAT(v->served, ElementsAre("prod"));
  EXPECT_EQ(v->series, 3u);
  EXPECT_EQ(v->dropped_series, 0u);
  // What Prometheus would read back is what the upstream sent.
  EXPECT_TRUE(exposition::equivalent(parse(v->text.plain.str()), parse(org_body("prod", 1))));
}

TEST(MergeViews, TwoUpstreamsMergeIntoOneFamilyPerName) {
  const auto a = org("a", t0 - 30s, 1);
  const auto b = org("b", t0 - 10s, 7);
  const auto v = merge_views({a, b});
  EXPECT_EQ(occurrences(v->text.plain.str(), "# TYPE requests_count_total "), 1u);
  EXPECT_EQ(occurrences(v->text.plain.str(), "# HELP requests_count_total "), 1u);
  EXPECT_EQ(occurrences(v->text.plain.str(), "# TYPE tokens_total "), 1u);
  EXPECT_EQ(occurrences(v->openmetrics.plain.str(), "# TYPE tokens counter"), 1u);
  EXPECT_THAT(v->text.plain.str(), HasSubstr("upstream=\"a\""));
  EXPECT_THAT(v->text.plain.str(), HasSubstr("upstream=\"b\""));
  EXPECT_EQ(v->series, 6u);
  EXPECT_THAT(v->served, ElementsAre("a", "b"));
  EXPECT_EQ(v->last_modified, t0 - 10s);  // the newest fetch

  const auto [text, om] = expected_bodies({parse(org_body("a", 1)), parse(org_body("b", 7))});
  EXPECT_EQ(v->text.plain, text);
  EXPECT_EQ(v->openmetrics.plain, om);
  // The merged text is valid exposition (each family once, contiguous).
  auto reparsed = exposition::parse_text(v->text.plain.str());
  ASSERT_TRUE(reparsed.has_value()) << reparsed.error().message();
  EXPECT_EQ(reparsed->size(), 2u);
}

TEST(MergeViews, DuplicateSeriesAcrossUpstreamsAreDroppedAndCounted) {
  // Same series from both (no distinguishing label): served once, from the first.
  const auto a = make_snapshot("a", t0, "x 1\ny{k=\"v\"} 2\n");
  const auto b = make_snapshot("b", t0, "x 9\ny{k=\"w\"} 3\n");
  const auto v = merge_views({a, b});
  EXPECT_THAT(v->text.plain.str(), HasSubstr("x 1\n"));
  EXPECT_THAT(v->text.plain.str(), Not(HasSubstr("x 9")));
  EXPECT_EQ(v->series, 3u);
  EXPECT_EQ(v->dropped_series, 1u);
}

// A snapshot is kept for as long as it is served: its bytes hold no spare
// capacity (a string grown by doubling kept up to twice its bytes).
TEST(RenderSnapshot, KeepsNoSpareCapacity) {
  std::string body;
  for (int i = 0; i < 3000; ++i) body += "requests_total{endpoint=\"e" + std::to_string(i) + "\"} 1\n";
  const auto s = make_snapshot("a", t0, body);
  const auto& text = s->rendered->text;
  ASSERT_GT(text.size(), 60'000u);
  EXPECT_LE(text.capacity(), text.size() + 64);
  EXPECT_LE(s->rendered->openmetrics.capacity(), s->rendered->openmetrics.size() + 64);
}

// A snapshot's text always parses back, even when a label rename made two
// series one (the render drops the second, and counts it).
TEST(RenderSnapshot, IsTheModelWrittenOnceWithDuplicatesDropped) {
  auto fams = parse("m{a=\"1\",percentile=\"p50\"} 1\nm{a=\"1\",statistic=\"p50\"} 2\nn 3\n");
  exposition::rename_label(fams, "percentile", "statistic");
  const auto s = render_snapshot("a", fams, t0, t0);
  EXPECT_EQ(s->series, 2u);
  EXPECT_EQ(s->own->dropped_series, 1u);
  const auto& text = s->rendered->text;
  const auto back = exposition::parse_text(text);
  ASSERT_TRUE(back.has_value()) << back.error().message();
  EXPECT_THAT(text, HasSubstr("m{a=\"1\",statistic=\"p50\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("} 2\n")));
  EXPECT_THAT(text, HasSubstr("n 3\n"));
}

// Both formats keep the sample lines once when they are the same bytes.
TEST(RenderSnapshot, OpenMetricsSharesTheTextsSampleLinesUnlessTimestampsDiffer) {
  const auto plain = make_snapshot("a", t0, org_body("a", 1));
  EXPECT_THAT(plain->rendered->openmetrics, Not(HasSubstr("requests_count_total{")));
  const auto stamped = make_snapshot("a", t0, "x 1 1799999940000\n");
  EXPECT_THAT(stamped->rendered->openmetrics, HasSubstr("x 1 1799999940\n"));
}

TEST(MergeViews, ConflictingTypesKeepTheFirstFamily) {
  const auto a = make_snapshot("a", t0, "# TYPE m gauge\nm{u=\"a\"} 1\n");
  const auto b = make_snapshot("b", t0, "# TYPE m counter\nm{u=\"b\"} 2\n");
  const auto v = merge_views({a, b});
  EXPECT_THAT(v->text.plain.str(), HasSubstr("# TYPE m gauge\n"));
  EXPECT_THAT(v->text.plain.str(), Not(HasSubstr("u=\"b\"")));
  EXPECT_EQ(v->series, 1u);
  EXPECT_EQ(v->dropped_series, 1u);
}

TEST(MergeViews, GzipHeadsDecodeToThePlainBodies) {
  std::string big;
  for (int i = 0; i < 5000; ++i)
    big += "big_series{n=\"" + std::to_string(i) + "\"} " + std::to_string(i * 3) + "\n";
  for (const auto& parts : std::vector<std::vector<std::shared_ptr<const snapshot>>>{
           {}, {org("a", t0)}, {org("a", t0), org("b", t0, 3)}, {make_snapshot("big", t0, big)}}) {
    const auto v = merge_views(parts);
    EXPECT_EQ(decode(v->text.gzip), v->text.plain);
    EXPECT_EQ(decode(v->openmetrics.gzip), v->openmetrics.plain);
    EXPECT_EQ(v->text.gzip.size, v->text.plain.size());
    EXPECT_EQ(v->openmetrics.gzip.size, v->openmetrics.plain.size());
  }
}

TEST(MergeViews, TimestampsAreServedInBothFormats) {
  const auto s = make_snapshot("a", t0, "x 1 1799999940000\n");
  const auto v = merge_views({s});
  EXPECT_THAT(v->text.plain.str(), HasSubstr("x 1 1799999940000\n"));
  EXPECT_THAT(v->openmetrics.plain.str(), HasSubstr("x 1 1799999940\n"));
}

class SnapshotStore : public ::testing::Test {
 protected:
  SnapshotStore() { store.configure({{"a", 5min}, {"b", 2min}}, t0); }
  snapshot_store store;
};

TEST_F(SnapshotStore, StartsWithAnEmptyView) {
  snapshot_store fresh;
  ASSERT_NE(fresh.views()->all, nullptr);
  EXPECT_EQ(fresh.views()->all->text.plain, "");
  EXPECT_FALSE(fresh.views()->all->last_modified);
  EXPECT_FALSE(store.views()->all->last_modified);
  EXPECT_EQ(store.latest("a"), nullptr);
  EXPECT_FALSE(store.is_fresh("a", t0));
  EXPECT_EQ(store.max_staleness("a"), 5min);
  EXPECT_EQ(store.max_staleness("b"), 2min);
  EXPECT_EQ(store.max_staleness("nope"), 0ms);
}

TEST_F(SnapshotStore, PublishedSnapshotsAreServedInConfigOrder) {
  store.publish(org("b", t0, 2), t0);
  EXPECT_THAT(store.views()->all->served, ElementsAre("b"));
  store.publish(org("a", t0 + 1s, 1), t0 + 1s);
  const auto v = store.views()->all;
  EXPECT_THAT(v->served, ElementsAre("a", "b"));
  EXPECT_EQ(v->last_modified, t0 + 1s);
  EXPECT_EQ(v->text.plain, merge_views({store.latest("a"), store.latest("b")})->text.plain);
}

TEST_F(SnapshotStore, APublishReplacesThatUpstreamsSnapshot) {
  store.publish(org("a", t0, 1), t0);
  store.publish(org("a", t0 + 60s, 42), t0 + 60s);
  EXPECT_THAT(store.views()->all->text.plain.str(), HasSubstr("} 42\n"));
  EXPECT_THAT(store.views()->all->text.plain.str(), Not(HasSubstr("} 1\n")));
  EXPECT_EQ(store.latest("a")->fetched_at, t0 + 60s);
}

TEST_F(SnapshotStore, SnapshotsOfUnknownUpstreamsAreNotServed) {
  store.publish(org("ghost", t0), t0);
  EXPECT_THAT(store.views()->all->served, IsEmpty());
  EXPECT_EQ(store.latest("ghost"), nullptr);
}

TEST_F(SnapshotStore, AnAlreadyStaleSnapshotIsKeptButNotServed) {
  // e.g. restored from state_dir after a long downtime.
  store.publish(org("a", t0 - 10min), t0);
  EXPECT_THAT(store.views()->all->served, IsEmpty());
  EXPECT_NE(store.latest("a"), nullptr);
  EXPECT_FALSE(store.is_fresh("a", t0));
  EXPECT_EQ(store.refresh(t0), std::nullopt);
}

TEST_F(SnapshotStore, RefreshDropsSnapshotsOlderThanMaxStaleness) {
  store.publish(org("a", t0), t0);
  store.publish(org("b", t0), t0);
  EXPECT_EQ(store.refresh(t0), t0 + 2min);  // b expires first

  EXPECT_EQ(store.refresh(t0 + 2min - 1ms), t0 + 2min);
  EXPECT_THAT(store.views()->all->served, ElementsAre("a", "b"));
  EXPECT_TRUE(store.is_fresh("b", t0 + 2min - 1ms));

  EXPECT_EQ(store.refresh(t0 + 2min), t0 + 5min);
  EXPECT_THAT(store.views()->all->served, ElementsAre("a"));
  EXPECT_THAT(store.views()->all->text.plain.str(), Not(HasSubstr("upstream=\"b\"")));
  EXPECT_FALSE(store.is_fresh("b", t0 + 2min));
  EXPECT_NE(store.latest("b"), nullptr);  // kept for /-/ready and the status page

  EXPECT_EQ(store.refresh(t0 + 5min), std::nullopt);
  EXPECT_THAT(store.views()->all->served, IsEmpty());
  EXPECT_EQ(store.views()->all->text.plain, "");
  EXPECT_FALSE(store.views()->all->last_modified);
}

TEST_F(SnapshotStore, RefreshWithNothingChangedKeepsTheSameView) {
  store.publish(org("a", t0), t0);
  const auto before = store.views()->all;
  store.refresh(t0 + 1s);
  EXPECT_EQ(store.views()->all, before);
}

TEST_F(SnapshotStore, ARepublishAfterStalenessIsServedAgain) {
  store.publish(org("b", t0), t0);
  store.refresh(t0 + 3min);
  EXPECT_THAT(store.views()->all->served, IsEmpty());
  store.publish(org("b", t0 + 3min), t0 + 3min);
  EXPECT_THAT(store.views()->all->served, ElementsAre("b"));
  EXPECT_EQ(store.refresh(t0 + 3min), t0 + 5min);
}

TEST_F(SnapshotStore, ConfigureKeepsRemainingUpstreamsAndDropsOthers) {
  store.publish(org("a", t0), t0);
  store.publish(org("b", t0), t0);
  const auto a = store.latest("a");
  store.configure({{"c", 1min}, {"a", 10min}}, t0 + 1s);
  EXPECT_EQ(store.latest("a"), a);
  EXPECT_EQ(store.latest("b"), nullptr);
  EXPECT_EQ(store.latest("c"), nullptr);
  EXPECT_EQ(store.max_staleness("a"), 10min);
  EXPECT_THAT(store.views()->all->served, ElementsAre("a"));
  EXPECT_THAT(store.views()->all->text.plain.str(), Not(HasSubstr("upstream=\"b\"")));
  // The new max_staleness applies: a is fresh until t0 + 10min now.
  EXPECT_EQ(store.refresh(t0 + 6min), t0 + 10min);
  EXPECT_THAT(store.views()->all->served, ElementsAre("a"));
  // An upstream that comes back starts without a snapshot.
  store.configure({{"a", 10min}, {"b", 2min}}, t0 + 6min);
  EXPECT_EQ(store.latest("b"), nullptr);
}

TEST_F(SnapshotStore, ShorterMaxStalenessOnConfigureDropsAtOnce) {
  store.publish(org("a", t0), t0);
  store.configure({{"a", 1min}}, t0 + 90s);
  EXPECT_THAT(store.views()->all->served, IsEmpty());
}

}  // namespace
}  // namespace cmp::snapshot
