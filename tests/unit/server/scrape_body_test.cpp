#include "cmp/server/scrape_body.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cmp/exposition/parser.hpp"
#include "cmp/snapshot/gzip.hpp"

namespace cmp::server {
namespace {

using namespace std::chrono_literals;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const telemetry::wall_clock::time_point t0{std::chrono::seconds(1800000000)};

std::shared_ptr<const snapshot::snapshot> make_snapshot(const std::string& org, std::string_view body) {
  return snapshot::render_snapshot(org, exposition::parse_text(body).value(), t0, t0);
}

std::shared_ptr<const snapshot::exposition_view> make_view() {
  return make_snapshot("prod",
                       "# TYPE requests_count_total gauge\n"
                       "requests_count_total{endpoint=\"llama3.1-8b\"} 12\n"
                       "# TYPE ttft_seconds gauge\n"
                       "ttft_seconds{endpoint=\"llama3.1-8b\",statistic=\"p99\"} 0.25\n")
      ->own;
}

std::string joined(const scrape_body& b) {
  std::string out;
  for (auto p : b.parts) out += p;
  return out;
}

std::string plain_of(const snapshot::exposition_view& v, exposition_format f) {
  return (f == exposition_format::openmetrics ? v.openmetrics.plain : v.text.plain).str();
}

class ScrapeBody : public ::testing::Test {
 protected:
  ScrapeBody() {
    auto& u = metrics.upstream("prod");
    u.count_request("200", 0.3);
    u.set_up(true, t0);
    u.snapshot_fetched_at = t0;
  }
  std::string rendered(exposition_format f, telemetry::wall_clock::time_point now) {
    std::string out;
    metrics.render(out, f, now);
    return out + (f == exposition_format::openmetrics ? "# EOF\n" : "");
  }
  telemetry::registry metrics{t0};
  self_metrics self{metrics, 1s};
  std::shared_ptr<const snapshot::exposition_view> view = make_view();
};

TEST_F(ScrapeBody, PlainIsTheViewThenAllSelfMetrics) {
  for (auto format : {exposition_format::text, exposition_format::openmetrics}) {
    scrape_body b;
    b.assemble(view, self.get(format, t0 + 5s), format, false);
    EXPECT_EQ(joined(b), plain_of(*view, format) + rendered(format, t0 + 5s));
    EXPECT_EQ(b.size, joined(b).size());
  }
  scrape_body b;
  b.assemble(view, self.get(exposition_format::text, t0 + 5s), exposition_format::text, false);
  const auto parsed = exposition::parse_text(joined(b));
  EXPECT_TRUE(parsed.has_value()) << parsed.error().message();
}

TEST_F(ScrapeBody, GzipIsOneMemberThatDecodesToThePlainBody) {
  for (auto format : {exposition_format::text, exposition_format::openmetrics}) {
    for (bool alone : {false, true}) {
      scrape_body plain, packed;
      const auto tail = alone ? nullptr : self.get(format, t0 + 5s);
      plain.assemble(view, tail, format, false);
      packed.assemble(view, tail, format, true);
      EXPECT_EQ(packed.size, joined(packed).size());
      const auto body = snapshot::gzip_decompress(joined(packed), 1u << 20);
      ASSERT_TRUE(body.has_value());
      EXPECT_EQ(*body, joined(plain));
    }
  }
}

// One upstream's view alone (/metrics?upstream=NAME): no self-metrics, and
// OpenMetrics still ends with `# EOF`.
TEST_F(ScrapeBody, AViewAloneEndsTheBodyWithoutSelfMetrics) {
  scrape_body text, om;
  text.assemble(view, nullptr, exposition_format::text, false);
  om.assemble(view, nullptr, exposition_format::openmetrics, false);
  EXPECT_EQ(joined(text), plain_of(*view, exposition_format::text));
  EXPECT_EQ(joined(om), plain_of(*view, exposition_format::openmetrics) + "# EOF\n");
}

// Several organizations: the view is a scatter list over their snapshots'
// bytes; the scrape sends every range, in order, plain and gzip.
TEST_F(ScrapeBody, AMergedViewIsSentRangeByRange) {
  std::vector<std::shared_ptr<const snapshot::snapshot>> parts;
  for (const std::string org : {"a", "b", "c"}) {
    parts.push_back(make_snapshot(org, "# HELP requests_count_total Requests.\n# TYPE requests_count_total counter\n"
                                       "requests_count_total{org=\"" + org + "\"} 12\n"
                                       "# TYPE ttft_seconds gauge\nttft_seconds{org=\"" + org + "\"} 0.25\n"));
  }
  const auto merged = snapshot::merge_views(parts);
  ASSERT_GT(merged->text.plain.segments().size(), 3u);  // what this test is about
  for (auto format : {exposition_format::text, exposition_format::openmetrics}) {
    scrape_body plain, packed;
    plain.assemble(merged, self.get(format, t0 + 5s), format, false);
    packed.assemble(merged, self.get(format, t0 + 5s), format, true);
    EXPECT_EQ(joined(plain), plain_of(*merged, format) + rendered(format, t0 + 5s));
    EXPECT_EQ(plain.size, joined(plain).size());
    EXPECT_EQ(snapshot::gzip_decompress(joined(packed), 1u << 20).value(), joined(plain));
  }
}

// The self-metrics are prepared at most once per max_age: within it a
// scrape gets the same object, with the live values of when it was made.
TEST_F(ScrapeBody, LiveValuesAreAtMostMaxAgeOld) {
  metrics.count_scrape(200);
  const auto first = self.get(exposition_format::text, t0 + 5s);
  metrics.count_scrape(200);
  metrics.set_open_connections(3);
  EXPECT_EQ(self.get(exposition_format::text, t0 + 5s + 999ms), first);
  EXPECT_THAT(first->plain, HasSubstr("cerebras_proxy_scrapes_total{code=\"200\"} 1\n"));
  const auto second = self.get(exposition_format::text, t0 + 6s);
  EXPECT_NE(second, first);
  EXPECT_EQ(second->plain, rendered(exposition_format::text, t0 + 6s));
  EXPECT_THAT(second->plain, HasSubstr("cerebras_proxy_scrapes_total{code=\"200\"} 2\n"));
  EXPECT_THAT(second->plain, HasSubstr("cerebras_proxy_snapshot_age_seconds{upstream=\"prod\"} 6\n"));
  EXPECT_THAT(second->plain, HasSubstr("cerebras_proxy_http_connections_open 3\n"));
}

// A value that changes on events (a poll) is served at once, and a write
// still in flight keeps the bytes it was assembled from.
TEST_F(ScrapeBody, AStableChangeIsServedAtOnceAndLeavesEarlierBodiesIntact) {
  int failures = 0;
  for (bool gzip : {false, true}) {
    scrape_body in_flight;
    in_flight.assemble(view, self.get(exposition_format::text, t0 + 5s), exposition_format::text, gzip);
    const std::string before = joined(in_flight);

    metrics.upstream("prod").count_request("503", 0.1);
    scrape_body next;
    next.assemble(view, self.get(exposition_format::text, t0 + 5s), exposition_format::text, gzip);

    EXPECT_NE(in_flight.tail, next.tail);
    EXPECT_EQ(joined(in_flight), before);
    const auto text = gzip ? snapshot::gzip_decompress(joined(next), 1u << 20).value() : joined(next);
    EXPECT_THAT(text, HasSubstr("cerebras_proxy_upstream_requests_total{upstream=\"prod\",code=\"503\"} " +
                                std::to_string(++failures) + "\n"));
  }
}

TEST_F(ScrapeBody, KeepsTheViewItWasAssembledFromUntilReleased) {
  scrape_body b;
  std::weak_ptr<const snapshot::exposition_view> held;
  {
    auto v = make_view();
    held = v;
    b.assemble(std::move(v), self.get(exposition_format::openmetrics, t0), exposition_format::openmetrics, false);
  }
  EXPECT_FALSE(held.expired());
  EXPECT_THAT(std::string(b.parts.front()), StartsWith("# TYPE requests_count_total gauge\n"));
  EXPECT_THAT(joined(b), EndsWith("\n# EOF\n"));
  b.release();
  EXPECT_TRUE(held.expired());
  EXPECT_EQ(b.size, 0u);
}

}  // namespace
}  // namespace cmp::server
