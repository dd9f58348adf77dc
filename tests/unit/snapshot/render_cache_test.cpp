// The incremental render path (render_upstream + merge_renders, driven by
// snapshot_store's render jobs) against the full render it replaces.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include "cmp/exposition/parser.hpp"
#include "cmp/snapshot/snapshot.hpp"
#include "test_support.hpp"

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
  auto s = std::make_shared<snapshot>();
  s->upstream = std::move(name);
  s->text = series_text(exposition::parse_text(body).value(), &s->series);
  s->fetched_at = fetched;
  return s;
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

std::string decode(const gzip_body& head) {
  std::string tail;
  gzip_finish(head, "", tail);
  return gzip_decompress(head.bytes.str() + tail, 1u << 26).value();
}

std::shared_ptr<const exposition_view> incremental(
    const std::vector<std::shared_ptr<const snapshot>>& snaps) {
  std::vector<std::shared_ptr<const upstream_render>> parts;
  for (const auto& s : snaps) parts.push_back(render_upstream(s));
  return merge_renders(parts);
}

// True when `bytes` lie inside one of `parts`' bodies (text or OpenMetrics,
// plain or gzip) or their snapshots' text: referred to, not copied.
bool inside_a_part(std::string_view bytes, const std::vector<std::shared_ptr<const upstream_render>>& parts) {
  auto within = [&](const body& b) {
    for (auto seg : b.segments())
      if (bytes.data() >= seg.data() && bytes.data() + bytes.size() <= seg.data() + seg.size()) return true;
    return false;
  };
  for (const auto& p : parts) {
    const auto& v = *p->view;
    if (within(v.text.plain) || within(v.openmetrics.plain) || within(v.text.gzip.bytes) ||
        within(v.openmetrics.gzip.bytes))
      return true;
  }
  return false;
}

// The merged view's series are ranges of its parts' bytes: only family
// headers (and the gzip framing) are its own.
void expect_refers_to_parts(const exposition_view& v,
                            const std::vector<std::shared_ptr<const upstream_render>>& parts) {
  for (const body* b : {&v.text.plain, &v.openmetrics.plain}) {
    for (auto seg : b->segments()) {
      if (!inside_a_part(seg, parts)) {
        EXPECT_EQ(seg.front(), '#') << "a copied range: " << seg;
      }
    }
  }
}

void expect_same_view(const exposition_view& got, const exposition_view& want) {
  EXPECT_EQ(got.text.plain, want.text.plain);
  EXPECT_EQ(got.openmetrics.plain, want.openmetrics.plain);
  EXPECT_EQ(decode(got.text.gzip), want.text.plain);
  EXPECT_EQ(decode(got.openmetrics.gzip), want.openmetrics.plain);
  EXPECT_EQ(got.served, want.served);
  EXPECT_EQ(got.last_modified, want.last_modified);
  EXPECT_EQ(got.series, want.series);
  EXPECT_EQ(got.dropped_series, want.dropped_series);
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
      body += sample_name + "{" + labels + "} " + pick(values);
      if (rng() % 4 == 0) body += " " + std::to_string(1'700'000'000'123LL + rng() % 2000);
      body += "\n";
    }
  }
  return body;
}

TEST(MergeRenders, IsByteIdenticalToTheFullRenderOnRandomInputs) {
  std::mt19937 rng(14);
  int merged_rounds = 0;  // that the generator makes what the test is about
  for (int round = 0; round < 400; ++round) {
    const bool distinct = round % 3 != 0;
    std::vector<std::shared_ptr<const snapshot>> snaps;
    const int n = static_cast<int>(rng() % 5);
    for (int i = 0; i < n; ++i) {
      const std::string name = "org" + std::to_string(i);
      auto parsed = exposition::parse_text(random_body(rng, name, distinct));
      if (!parsed) continue;  // e.g. a sample named outside its family: not what a poll publishes
      auto s = std::make_shared<snapshot>();
      s->upstream = name;
      s->text = series_text(*parsed, &s->series);
      s->fetched_at = t0 + std::chrono::seconds(rng() % 100);
      snaps.push_back(s);
    }
    SCOPED_TRACE("round " + std::to_string(round));
    const auto want = render_view(snaps);
    std::vector<std::shared_ptr<const upstream_render>> parts;
    for (const auto& s : snaps) parts.push_back(render_upstream(s));
    const auto got = merge_renders(parts);
    expect_same_view(*got, *want);
    // The scatter form itself: segments joined are the body (what a write
    // sends), and with distinct upstreams (no fallback to the full render)
    // the series are not copied.
    std::string joined;
    for (auto seg : got->text.plain.segments()) joined.append(seg);
    EXPECT_EQ(joined, want->text.plain.str());
    if (distinct) expect_refers_to_parts(*got, parts);
    if (HasFailure()) break;
    if (want->served.size() >= 2 && !want->text.plain.empty()) ++merged_rounds;
  }
  EXPECT_GT(merged_rounds, 100);
}

TEST(MergeRenders, OneUpstreamsOwnViewIsItsFullRender) {
  const auto s = org("x", t0, 3);
  expect_same_view(*render_upstream(s)->view, *render_view({s}));
}

// One organization (the common deployment): its text is kept once, by its
// snapshot; its own view and the merged view are that string.
TEST(MergeRenders, OneUpstreamsBytesAreItsSnapshotsText) {
  const auto s = org("x", t0, 3);
  const auto part = render_upstream(s);
  ASSERT_EQ(part->view->text.plain.segments().size(), 1u);
  EXPECT_EQ(part->view->text.plain.contiguous().data(), s->text.data());
  const auto merged = merge_renders({part});
  ASSERT_EQ(merged->text.plain.segments().size(), 1u);
  EXPECT_EQ(merged->text.plain.contiguous().data(), s->text.data());
  // OpenMetrics shares the sample lines (no timestamps here) with the text.
  std::size_t shared = 0;
  for (auto seg : merged->openmetrics.plain.segments())
    if (seg.data() >= s->text.data() && seg.data() < s->text.data() + s->text.size()) shared += seg.size();
  EXPECT_GT(shared, 0u);
  expect_same_view(*merged, *render_view({s}));
}

TEST(MergeRenders, AMergedViewKeepsItsPartsAlive) {
  std::shared_ptr<const exposition_view> v;
  std::weak_ptr<const snapshot> watch;
  {
    auto a = org("a", t0), b = org("b", t0);
    watch = a;
    v = incremental({a, b});
  }
  EXPECT_FALSE(watch.expired());
  expect_same_view(*v, *render_view({org("a", t0), org("b", t0)}));
}

TEST(MergeRenders, SharedFamiliesAreWrittenOnceWithOneHeader) {
  const auto v = incremental({org("a", t0), org("b", t0 + 1s)});
  EXPECT_EQ(v->text.plain,
            "# HELP requests_total Requests.\n# TYPE requests_total counter\n"
            "requests_total{upstream=\"a\"} 1\nrequests_total{upstream=\"b\"} 1\n"
            "# TYPE tokens gauge\ntokens{upstream=\"a\"} 7\ntokens{upstream=\"b\"} 7\n");
  EXPECT_THAT(v->openmetrics.plain.str(), HasSubstr("# TYPE requests counter\n"));
}

TEST(MergeRenders, SameSeriesInTwoUpstreamsIsServedOnceAndCounted) {
  // No label tells the two apart: the duplicate check of the full merge runs.
  const auto a = make_snapshot("a", t0, "# TYPE x gauge\nx{k=\"1\"} 1\n");
  const auto b = make_snapshot("b", t0, "# TYPE x gauge\nx{k=\"1\"} 2\nx{k=\"2\"} 3\n");
  const auto v = incremental({a, b});
  EXPECT_EQ(v->text.plain, "# TYPE x gauge\nx{k=\"1\"} 1\nx{k=\"2\"} 3\n");
  EXPECT_EQ(v->dropped_series, 1u);
}

TEST(MergeRenders, AnUnreadableSnapshotIsLeftOutAndCounted) {
  auto bad = std::make_shared<snapshot>();
  bad->upstream = "bad";
  bad->text = "this is { not exposition\n";
  bad->series = 5;
  bad->fetched_at = t0;
  const std::vector<std::shared_ptr<const snapshot>> snaps{org("a", t0), bad};
  expect_same_view(*incremental(snaps), *render_view(snaps));
  EXPECT_THAT(incremental(snaps)->served, ElementsAre("a"));
}

// A store whose renders the test runs by hand, as the daemon's render
// thread would.
class RenderJobs : public ::testing::Test {
 protected:
  RenderJobs() {
    store.set_scheduler([this] { ++scheduled; });
    store.configure({{"a", 5min}, {"b", 5min}, {"c", 5min}}, t0);
    (void)run(t0);
  }
  // Runs one job if one is due; returns the upstreams it rendered anew.
  std::vector<std::string> run(wall_clock::time_point now) {
    auto job = store.begin_render(now);
    if (!job) return {};
    auto result = snapshot_store::render(*job);
    auto rendered = result.rendered;
    again = store.finish_render(std::move(result));
    return rendered;
  }
  snapshot_store store;
  int scheduled = 0;
  bool again = false;
};

TEST_F(RenderJobs, ABurstOfPublishesIsOneRender) {
  scheduled = 0;
  const auto before = store.view();
  store.publish(org("a", t0), t0);
  store.publish(org("b", t0), t0);
  store.publish(org("c", t0), t0);
  EXPECT_EQ(scheduled, 1);
  EXPECT_EQ(store.view(), before);  // nothing rendered on the publishing thread
  EXPECT_THAT(run(t0), ElementsAre("a", "b", "c"));
  EXPECT_THAT(store.view()->served, ElementsAre("a", "b", "c"));
  EXPECT_FALSE(again);
  EXPECT_FALSE(store.begin_render(t0));  // nothing left to do
}

TEST_F(RenderJobs, PublishesDuringARenderAreCoalescedIntoTheNext) {
  store.publish(org("a", t0), t0);
  scheduled = 0;
  auto job = store.begin_render(t0);
  ASSERT_TRUE(job);
  store.publish(org("b", t0), t0);
  store.publish(org("c", t0), t0);
  EXPECT_EQ(scheduled, 0);               // one render at a time...
  EXPECT_FALSE(store.begin_render(t0));  // ...even if asked
  EXPECT_TRUE(store.finish_render(snapshot_store::render(*job)));  // ...but another is due
  EXPECT_THAT(store.view()->served, ElementsAre("a"));
  EXPECT_THAT(run(t0), ElementsAre("b", "c"));
  EXPECT_THAT(store.view()->served, ElementsAre("a", "b", "c"));
}

TEST_F(RenderJobs, AChangeOfOneUpstreamRerendersOnlyIt) {
  store.publish(org("a", t0), t0);
  store.publish(org("b", t0), t0);
  store.publish(org("c", t0), t0);
  (void)run(t0);
  store.publish(org("b", t0 + 10s, 99), t0 + 10s);
  EXPECT_THAT(run(t0 + 10s), ElementsAre("b"));
  const auto v = store.view();
  EXPECT_THAT(v->text.plain.str(), HasSubstr("requests_total{upstream=\"b\"} 99\n"));
  expect_same_view(*v, *render_view({store.latest("a"), store.latest("b"), store.latest("c")}));
  // The untouched upstreams' own views are the very same objects.
  EXPECT_EQ(v->upstream("a")->text.plain, render_view({store.latest("a")})->text.plain);
}

TEST_F(RenderJobs, ARemovedUpstreamDisappears) {
  store.publish(org("a", t0), t0);
  store.publish(org("b", t0), t0);
  (void)run(t0);
  store.configure({{"a", 5min}}, t0 + 1s);
  EXPECT_THAT(run(t0 + 1s), IsEmpty());  // a's render is reused
  EXPECT_THAT(store.view()->served, ElementsAre("a"));
  EXPECT_THAT(store.view()->text.plain.str(), Not(HasSubstr("upstream=\"b\"")));
  EXPECT_EQ(store.view()->upstream("b"), nullptr);
}

TEST_F(RenderJobs, StaleSnapshotsExpireThroughARender) {
  store.publish(org("a", t0), t0);
  store.publish(org("b", t0 + 4min), t0 + 4min);
  (void)run(t0 + 4min);
  scheduled = 0;
  EXPECT_EQ(store.refresh(t0 + 5min), t0 + 9min);
  EXPECT_EQ(scheduled, 1);
  EXPECT_THAT(run(t0 + 5min), IsEmpty());
  EXPECT_THAT(store.view()->served, ElementsAre("b"));
  EXPECT_EQ(store.view()->upstream("a")->text.plain, "");
  EXPECT_FALSE(store.view()->upstream("a")->last_modified);
  // Nothing changed since: no render.
  scheduled = 0;
  store.refresh(t0 + 6min);
  EXPECT_EQ(scheduled, 0);
}

TEST_F(RenderJobs, TheViewIsCatchingUpOnlyUntilANewUpstreamIsRendered) {
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

TEST_F(RenderJobs, EveryConfiguredUpstreamHasItsOwnView) {
  store.publish(org("b", t0, 5), t0);
  (void)run(t0);
  const auto v = store.view();
  ASSERT_EQ(v->upstreams.size(), 3u);
  EXPECT_EQ(v->upstreams[0].first, "a");
  expect_same_view(*v->upstream("b"), *render_view({store.latest("b")}));
  EXPECT_EQ(v->upstream("a")->text.plain, "");
  EXPECT_EQ(v->upstream("nope"), nullptr);
}

// --- snapshot texts in memfds (shared_text.hpp): the same bytes, and
// every segment said to lie in a file is that file's bytes at its offset.

// An organization's body large enough for a memfd (~150 KB of text).
std::string large_body_of(const std::string& org) {
  const std::string u = "upstream=\"" + org + "\"";
  std::string b;
  for (int f = 0; f < 6; ++f) {
    const std::string name = "family_" + std::to_string(f) + "_total";
    b += "# HELP " + name + " Requests per endpoint.\n# TYPE " + name + " counter\n";
    for (int i = 0; i < 500; ++i)
      b += name + "{endpoint=\"e" + std::to_string(i) + "\"," + u + "} " + std::to_string(i * 7 + f) + "\n";
  }
  return b;
}

std::shared_ptr<const snapshot> large_org(const std::string& name, bool in_file) {
  auto s = std::make_shared<snapshot>();
  s->upstream = name;
  auto text = series_text(exposition::parse_text(large_body_of(name)).value(), &s->series);
  shared_text::policy p;
  p.max_files = 1000;
  if (!in_file) p.min_size = std::string::npos;
  s->text = shared_text::make(std::move(text), p);
  EXPECT_EQ(s->text.in_file(), in_file);
  s->fetched_at = t0;
  return s;
}

TEST(FileBackedTexts, ViewsAreByteIdenticalToHeapTextsAndTheirFileSegmentsReadBack) {
  std::vector<std::shared_ptr<const snapshot>> files, heap;
  for (const auto* name : {"a", "b", "c"}) {
    files.push_back(large_org(name, true));
    heap.push_back(large_org(name, false));
  }
  // One organization: its text body is one segment, all of it the file.
  const auto one = render_upstream(files[0]);
  ASSERT_EQ(one->view->text.plain.segments().size(), 1u);
  EXPECT_EQ(one->view->text.plain.file(0).fd, files[0]->text.file().fd);
  EXPECT_EQ(one->view->text.plain.file(0).offset, 0u);
  EXPECT_EQ(test::expect_file_segments_read_back(one->view->text.plain), 1u);
  // OpenMetrics refers to the text's sample lines: in the file too.
  EXPECT_EQ(test::expect_file_segments_read_back(one->view->openmetrics.plain), 6u);
  expect_same_view(*one->view, *render_view({heap[0]}));

  // Merged views: the positions come along through every level.
  const auto merged = incremental(files);
  expect_same_view(*merged, *render_view(heap));
  EXPECT_GE(test::expect_file_segments_read_back(merged->text.plain), 18u);  // 6 families x 3 organizations
  EXPECT_GE(test::expect_file_segments_read_back(merged->openmetrics.plain), 18u);
  // Heap texts: the same bytes, nothing claims a file.
  const auto from_heap = incremental(heap);
  EXPECT_FALSE(from_heap->text.plain.has_files());
  EXPECT_FALSE(from_heap->openmetrics.plain.has_files());
  EXPECT_EQ(merged->text.plain, from_heap->text.plain);
  EXPECT_EQ(merged->openmetrics.plain, from_heap->openmetrics.plain);

  // Through the store, per-upstream views included.
  snapshot_store store;
  store.configure({{"a", 1h}, {"b", 1h}, {"c", 1h}}, t0);
  for (const auto& s : files) store.publish(s, t0);
  const auto v = store.view();
  expect_same_view(*v, *render_view(heap));
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto& own = *v->upstream(files[i]->upstream);
    EXPECT_EQ(own.text.plain, heap[i]->text.view());
    EXPECT_EQ(test::expect_file_segments_read_back(own.text.plain), 1u);
  }
}

}  // namespace
}  // namespace cmp::snapshot
