// Merged views (merge_views, driven by snapshot_store's rebuild jobs)
// against the models they stand for: exposition::merge() and the writers.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "cmp/exposition/parser.hpp"
#include "cmp/exposition/transform.hpp"
#include "cmp/exposition/writer.hpp"
#include "cmp/snapshot/snapshot.hpp"

namespace cmp::snapshot {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

const wall_clock::time_point t0 = wall_clock::time_point{} + std::chrono::seconds(1'800'000'000);

std::shared_ptr<const snapshot> make_snapshot(std::string name, wall_clock::time_point fetched,
                                              std::string_view body) {
  return render_snapshot(std::move(name), exposition::parse_text(body).value(), fetched, fetched);
}

std::string body_of(const std::string& org, int requests) {
  const std::string u = "upstream=\"" + org + "\"";
  return "# HELP requests_total Requests.\n# TYPE requests_total counter\n"
         "requests_total{" + u + "} " + std::to_string(requests) + "\n"
         "# TYPE tokens gauge\ntokens{" + u + "} 7\n";
}

std::shared_ptr<const snapshot> org(const std::string& name, wall_clock::time_point fetched,
                                    int requests = 1) {
  return make_snapshot(name, fetched, body_of(name, requests));
}

std::string decode(const gzip_head& head) {
  const auto end = gzip_finish("");
  const auto trailer = gzip_trailer(head, end);
  return gzip_decompress(head.bytes + end.bytes + std::string(trailer.data(), trailer.size()), 1u << 26).value();
}

// What a merged view stands for: the parts' models merged (each on its own
// first, as its snapshot was), written by the writers.
struct reference {
  std::string text, om;
  std::size_t series = 0, dropped = 0;
};
reference reference_of(const std::vector<exposition::family_list>& models) {
  reference r;
  std::vector<exposition::family_list> own;
  for (const auto& m : models) {
    const exposition::family_list* p = &m;
    exposition::merge_stats st;
    own.push_back(exposition::merge({&p, 1}, &st));
    r.dropped += st.samples_dropped + st.duplicate_series;
  }
  std::vector<const exposition::family_list*> ptrs;
  for (const auto& m : own) ptrs.push_back(&m);
  exposition::merge_stats st;
  const auto merged = exposition::merge(ptrs, &st);
  r.dropped += st.samples_dropped + st.duplicate_series;
  for (const auto& f : merged) r.series += f.samples.size();
  exposition::write_text(merged, r.text);
  exposition::write_openmetrics(merged, r.om);
  return r;
}

void expect_view_is(const exposition_view& got, const reference& want) {
  EXPECT_EQ(got.text.plain, want.text);
  EXPECT_EQ(got.openmetrics.plain, want.om);
  EXPECT_EQ(decode(got.text.gzip), want.text);
  EXPECT_EQ(decode(got.openmetrics.gzip), want.om);
  EXPECT_EQ(got.series, want.series);
  EXPECT_EQ(got.dropped_series, want.dropped);
}

// True when `bytes` lie inside one of the snapshots' rendered bytes:
// referred to, not copied.
bool inside_a_part(std::string_view bytes, const std::vector<std::shared_ptr<const snapshot>>& parts) {
  for (const auto& p : parts) {
    for (const std::string* s : {&p->rendered->text, &p->rendered->openmetrics}) {
      if (bytes.data() >= s->data() && bytes.data() + bytes.size() <= s->data() + s->size()) return true;
    }
  }
  return false;
}

// Random upstream bodies over a small shared vocabulary of family names, so
// that families merge across upstreams, types conflict, counter stems clash
// with other families, HELP comes and goes and needs escaping, timestamps
// and special values appear. With `distinct`, every sample carries the
// upstream's own label (the usual multi-organization config); without, two
// upstreams may export the very same series.
std::string random_body(std::mt19937& rng, const std::string& org, bool distinct) {
  static const char* names[] = {"a_total", "a", "b_total", "c", "d_total", "e", "f_total"};
  static const char* types[] = {"counter", "gauge", "untyped", "counter"};
  static const char* helps[] = {"", "plain help", "with \\\\ back\\nslash", "quote \" here"};
  static const char* values[] = {"1", "0", "-3", "2.5", "NaN", "+Inf", "1e+30", "42"};
  auto pick = [&](auto& arr) { return arr[rng() % std::size(arr)]; };
  std::string body;
  std::vector<std::string> used;
  const int families = 1 + static_cast<int>(rng() % 5);
  for (int f = 0; f < families; ++f) {
    const std::string name = pick(names);
    if (std::find(used.begin(), used.end(), name) != used.end()) continue;
    used.push_back(name);
    const std::string type = pick(types);
    if (rng() % 2) body += "# HELP " + name + " " + pick(helps) + "\n";
    body += "# TYPE " + name + " " + type + "\n";
    const int samples = static_cast<int>(rng() % 4);
    for (int i = 0; i < samples; ++i) {
      // A counter sample named otherwise makes the family no OpenMetrics counter.
      const std::string sample_name = (type == "counter" && rng() % 6 == 0) ? name + "_x" : name;
      std::string labels = "model=\"m" + std::to_string(rng() % 3) + "\",q=\"x\\\"y" +
                           std::to_string(i) + "\"";
      if (distinct) labels += ",upstream=\"" + org + "\"";
      // Appended piece by piece: GCC 12 sees a bogus overlap (-Wrestrict)
      // in the chain of operator+.
      body.append(sample_name).append("{").append(labels).append("} ").append(pick(values));
      if (rng() % 4 == 0) body.append(" ").append(std::to_string(1'700'000'000'123LL + rng() % 2000));
      body += "\n";
    }
  }
  return body;
}

TEST(MergeViews, IsWhatTheModelsMergedAndWrittenAreOnRandomInputs) {
  std::mt19937 rng(14);
  int merged_rounds = 0;  // that the generator makes what the test is about
  for (int round = 0; round < 400; ++round) {
    const bool distinct = round % 3 != 0;
    std::vector<std::shared_ptr<const snapshot>> snaps;
    std::vector<exposition::family_list> models;
    const int n = static_cast<int>(rng() % 5);
    for (int i = 0; i < n; ++i) {
      const std::string name = "org" + std::to_string(i);
      auto parsed = exposition::parse_text(random_body(rng, name, distinct));
      if (!parsed) continue;  // e.g. a sample named outside its family: not what a poll publishes
      snaps.push_back(render_snapshot(name, *parsed, t0 + std::chrono::seconds(rng() % 100), t0));
      models.push_back(std::move(*parsed));
    }
    SCOPED_TRACE("round " + std::to_string(round));
    const auto got = snaps.empty() ? empty_view() : merge_views(snaps);
    expect_view_is(*got, reference_of(models));
    // The series are ranges of the parts' bytes: only family headers are
    // the merged view's own.
    for (const body* b : {&got->text.plain, &got->openmetrics.plain}) {
      for (auto seg : b->segments()) {
        if (!inside_a_part(seg, snaps)) {
          EXPECT_EQ(seg.front(), '#') << "a copied range: " << seg;
        }
      }
    }
    if (HasFailure()) break;
    if (got->served.size() >= 2 && !got->text.plain.empty()) ++merged_rounds;
  }
  EXPECT_GT(merged_rounds, 100);
}

// One organization (the common deployment): its bytes are kept once, by its
// snapshot; its own view and the merged view are one and the same.
TEST(MergeViews, OneUpstreamsViewIsItsOwnOneSegmentView) {
  const auto s = org("x", t0, 3);
  EXPECT_EQ(merge_views({s}), s->own);
  ASSERT_EQ(s->own->text.plain.segments().size(), 1u);
  EXPECT_EQ(s->own->text.plain.segments()[0].data(), s->rendered->text.data());
  expect_view_is(*s->own, reference_of({exposition::parse_text(body_of("x", 3)).value()}));
  EXPECT_THAT(s->own->served, ElementsAre("x"));
  EXPECT_EQ(s->own->last_modified, t0);
}

TEST(MergeViews, AMergedViewKeepsItsPartsBytesAlive) {
  std::shared_ptr<const exposition_view> v;
  {
    auto a = org("a", t0), b = org("b", t0);
    v = merge_views({a, b});
  }
  expect_view_is(*v, reference_of({exposition::parse_text(body_of("a", 1)).value(),
                                   exposition::parse_text(body_of("b", 1)).value()}));
}

TEST(MergeViews, SharedFamiliesAreWrittenOnceWithOneHeader) {
  const auto v = merge_views({org("a", t0), org("b", t0 + 1s)});
  EXPECT_EQ(v->text.plain,
            "# HELP requests_total Requests.\n# TYPE requests_total counter\n"
            "requests_total{upstream=\"a\"} 1\nrequests_total{upstream=\"b\"} 1\n"
            "# TYPE tokens gauge\ntokens{upstream=\"a\"} 7\ntokens{upstream=\"b\"} 7\n");
  EXPECT_THAT(v->openmetrics.plain.str(), HasSubstr("# TYPE requests counter\n"));
  EXPECT_THAT(v->served, ElementsAre("a", "b"));
  EXPECT_EQ(v->last_modified, t0 + 1s);
}

// A hundred organizations told apart by a label (o0 ... o99): every one is
// served whole. Series whose hashes are equal but that are not the same
// series (o1 and o10, o2 and o23 collide in the parser's hash) are both kept.
TEST(MergeViews, EveryOrganizationOfAHundredIsServed) {
  std::vector<std::shared_ptr<const snapshot>> parts;
  std::vector<exposition::family_list> models;
  for (int i = 0; i < 100; ++i) {
    std::string name = "o";
    name += std::to_string(i);
    parts.push_back(org(name, t0));
    models.push_back(exposition::parse_text(body_of(name, 1)).value());
  }
  const auto v = merge_views(parts);
  EXPECT_EQ(v->dropped_series, 0u);
  EXPECT_EQ(v->series, 200u);
  expect_view_is(*v, reference_of(models));
}

TEST(MergeViews, SameSeriesInTwoUpstreamsIsServedOnceAndCounted) {
  const auto a = make_snapshot("a", t0, "# TYPE x gauge\nx{k=\"1\"} 1\n");
  const auto b = make_snapshot("b", t0, "# TYPE x gauge\nx{k=\"1\"} 2\nx{k=\"2\"} 3\n");
  const auto v = merge_views({a, b});
  EXPECT_EQ(v->text.plain, "# TYPE x gauge\nx{k=\"1\"} 1\nx{k=\"2\"} 3\n");
  EXPECT_EQ(v->dropped_series, 1u);
  // Label order does not make another series.
  const auto c = make_snapshot("c", t0, "x{k=\"1\",j=\"2\"} 1\n");
  const auto d = make_snapshot("d", t0, "x{j=\"2\",k=\"1\"} 5\n");
  EXPECT_EQ(merge_views({c, d})->text.plain, "# TYPE x untyped\nx{k=\"1\",j=\"2\"} 1\n");
}

// One upstream's points of a series at several timestamps are all served
// (Prometheus stores each); another upstream's sample of it is a duplicate.
TEST(MergeViews, PointsOfOneSeriesInOneUpstreamAreAllServed) {
  const auto a = make_snapshot("a", t0, "# TYPE x gauge\nx 1 1000\nx 2 2000\n");
  const auto b = make_snapshot("b", t0, "# TYPE x gauge\nx 3 3000\n");
  const auto v = merge_views({a, b});
  EXPECT_EQ(v->text.plain, "# TYPE x gauge\nx 1 1000\nx 2 2000\n");
  EXPECT_EQ(v->dropped_series, 1u);
}

// A store whose rebuilds the test runs by hand, as the daemon's rebuild
// thread would.
class RebuildJobs : public ::testing::Test {
 protected:
  RebuildJobs() {
    store.set_scheduler([this] { ++scheduled; });
    store.configure({{"a", 5min}, {"b", 5min}, {"c", 5min}}, t0);
    (void)run(t0);
  }
  // Runs one job if one is due; false if none was.
  bool run(wall_clock::time_point now) {
    auto job = store.begin_rebuild(now);
    if (!job) return false;
    again = store.finish_rebuild(snapshot_store::rebuild(*job));
    return true;
  }
  snapshot_store store;
  int scheduled = 0;
  bool again = false;
};

TEST_F(RebuildJobs, ABurstOfPublishesIsOneRebuild) {
  scheduled = 0;
  const auto before = store.views();
  store.publish(org("a", t0), t0);
  store.publish(org("b", t0), t0);
  store.publish(org("c", t0), t0);
  EXPECT_EQ(scheduled, 3);  // every change is told: the scheduler waits for the pause
  EXPECT_EQ(store.views(), before);  // nothing merged on the publishing thread
  EXPECT_TRUE(run(t0));
  EXPECT_THAT(store.views()->all->served, ElementsAre("a", "b", "c"));
  EXPECT_FALSE(again);
  EXPECT_FALSE(store.begin_rebuild(t0));  // nothing left to do
}

TEST_F(RebuildJobs, PublishesDuringARebuildAreCoalescedIntoTheNext) {
  store.publish(org("a", t0), t0);
  scheduled = 0;
  auto job = store.begin_rebuild(t0);
  ASSERT_TRUE(job);
  store.publish(org("b", t0), t0);
  store.publish(org("c", t0), t0);
  EXPECT_EQ(scheduled, 0);                // one rebuild at a time...
  EXPECT_FALSE(store.begin_rebuild(t0));  // ...even if asked
  EXPECT_TRUE(store.finish_rebuild(snapshot_store::rebuild(*job)));  // ...but another is due
  EXPECT_THAT(store.views()->all->served, ElementsAre("a"));
  EXPECT_TRUE(run(t0));
  EXPECT_THAT(store.views()->all->served, ElementsAre("a", "b", "c"));
}

TEST_F(RebuildJobs, AChangeOfOneUpstreamKeepsTheOthersOwnViews) {
  store.publish(org("a", t0), t0);
  store.publish(org("b", t0), t0);
  store.publish(org("c", t0), t0);
  (void)run(t0);
  const auto before = store.views();
  store.publish(org("b", t0 + 10s, 99), t0 + 10s);
  (void)run(t0 + 10s);
  const auto v = store.views();
  EXPECT_THAT(v->all->text.plain.str(), HasSubstr("requests_total{upstream=\"b\"} 99\n"));
  EXPECT_EQ(v->all->text.plain, merge_views({store.latest("a"), store.latest("b"), store.latest("c")})->text.plain);
  // The untouched upstreams' own views are the very same objects.
  EXPECT_EQ(v->upstream("a"), before->upstream("a"));
  EXPECT_NE(v->upstream("b"), before->upstream("b"));
}

TEST_F(RebuildJobs, ARemovedUpstreamDisappears) {
  store.publish(org("a", t0), t0);
  store.publish(org("b", t0), t0);
  (void)run(t0);
  store.configure({{"a", 5min}}, t0 + 1s);
  EXPECT_TRUE(run(t0 + 1s));
  EXPECT_THAT(store.views()->all->served, ElementsAre("a"));
  EXPECT_THAT(store.views()->all->text.plain.str(), Not(HasSubstr("upstream=\"b\"")));
  EXPECT_EQ(store.views()->upstream("b"), nullptr);
}

TEST_F(RebuildJobs, StaleSnapshotsExpireThroughARebuild) {
  store.publish(org("a", t0), t0);
  store.publish(org("b", t0 + 4min), t0 + 4min);
  (void)run(t0 + 4min);
  scheduled = 0;
  EXPECT_EQ(store.refresh(t0 + 5min), t0 + 9min);
  EXPECT_EQ(scheduled, 1);
  EXPECT_TRUE(run(t0 + 5min));
  EXPECT_THAT(store.views()->all->served, ElementsAre("b"));
  EXPECT_EQ(store.views()->upstream("a")->text.plain, "");
  EXPECT_FALSE(store.views()->upstream("a")->last_modified);
  // Nothing changed since: no rebuild.
  scheduled = 0;
  store.refresh(t0 + 6min);
  EXPECT_EQ(scheduled, 0);
}

TEST_F(RebuildJobs, TheViewIsCatchingUpOnlyUntilANewUpstreamIsMerged) {
  EXPECT_FALSE(store.catching_up());
  store.publish(org("a", t0), t0);
  EXPECT_TRUE(store.catching_up());  // a is up, its series not served yet
  (void)run(t0);
  EXPECT_FALSE(store.catching_up());
  // A new snapshot of a served upstream: the view is older, not incomplete.
  store.publish(org("a", t0 + 10s, 2), t0 + 10s);
  EXPECT_FALSE(store.catching_up());
  (void)run(t0 + 10s);
  store.configure({{"b", 5min}}, t0 + 11s);  // a reload drops a
  EXPECT_TRUE(store.catching_up());
  (void)run(t0 + 11s);
  EXPECT_FALSE(store.catching_up());
}

TEST_F(RebuildJobs, EveryConfiguredUpstreamHasItsOwnView) {
  store.publish(org("b", t0, 5), t0);
  (void)run(t0);
  const auto v = store.views();
  ASSERT_EQ(v->upstreams.size(), 3u);
  EXPECT_EQ(v->upstreams[0].first, "a");
  EXPECT_EQ(v->upstream("b"), store.latest("b")->own);
  EXPECT_EQ(v->upstream("a")->text.plain, "");
  EXPECT_EQ(v->upstream("nope"), nullptr);
}

}  // namespace
}  // namespace cmp::snapshot
