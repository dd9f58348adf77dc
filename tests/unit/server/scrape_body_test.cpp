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

std::shared_ptr<const snapshot::exposition_view> make_view() {
  auto s = std::make_shared<snapshot::snapshot>();
  s->upstream = "prod";
  s->text = snapshot::series_text(
      exposition::parse_text("# TYPE requests_count_total gauge\n"
                             "requests_count_total{endpoint=\"llama3.1-8b\"} 12\n"
                             "# TYPE ttft_seconds gauge\n"
                             "ttft_seconds{endpoint=\"llama3.1-8b\",statistic=\"p99\"} 0.25\n")
          .value());
  s->fetched_at = t0;
  return snapshot::render_view({s});
}

std::string joined(const scrape_body& b) {
  std::string out;
  for (auto p : b.parts) out += p;
  return out;
}

class ScrapeBody : public ::testing::Test {
 protected:
  ScrapeBody() {
    auto& u = metrics.upstream("prod");
    u.count_request("200", 0.3);
    u.set_up(true, t0);
    u.snapshot_fetched_at = t0;
  }
  telemetry::registry metrics{t0};
  scrape_assembler assembler{metrics};
  std::shared_ptr<const snapshot::exposition_view> view = make_view();
};

TEST_F(ScrapeBody, PlainIsTheViewThenAllSelfMetrics) {
  for (auto format : {exposition_format::text, exposition_format::openmetrics}) {
    const bool om = format == exposition_format::openmetrics;
    scrape_body b;
    assembler.assemble(view, format, false, t0 + 5s, b);
    std::string self;
    metrics.render(self, format, t0 + 5s);
    EXPECT_EQ(joined(b),
              (om ? view->openmetrics.plain : view->text.plain).str() + self + (om ? "# EOF\n" : ""));
    EXPECT_EQ(b.size(), joined(b).size());
  }
  scrape_body b;
  assembler.assemble(view, exposition_format::text, false, t0 + 5s, b);
  const auto parsed = exposition::parse_text(joined(b));
  EXPECT_TRUE(parsed.has_value()) << parsed.error().message();
}

TEST_F(ScrapeBody, GzipDecodesToThePlainBody) {
  for (auto format : {exposition_format::text, exposition_format::openmetrics}) {
    scrape_body plain, packed;
    assembler.assemble(view, format, false, t0 + 5s, plain);
    assembler.assemble(view, format, true, t0 + 5s, packed);
    const auto body = snapshot::gzip_decompress(joined(packed), 1u << 20);
    ASSERT_TRUE(body.has_value());
    EXPECT_EQ(*body, joined(plain));
  }
}

// Several organizations: the view is a scatter list over their renders
// (snapshot/body.hpp); the scrape sends every range, in order, plain and gzip.
TEST_F(ScrapeBody, AMergedViewIsSentRangeByRange) {
  std::vector<std::shared_ptr<const snapshot::upstream_render>> parts;
  for (const std::string org : {"a", "b", "c"}) {
    auto s = std::make_shared<snapshot::snapshot>();
    s->upstream = org;
    s->text = snapshot::series_text(
        exposition::parse_text("# HELP requests_count_total Requests.\n# TYPE requests_count_total counter\n"
                               "requests_count_total{org=\"" + org + "\"} 12\n"
                               "# TYPE ttft_seconds gauge\nttft_seconds{org=\"" + org + "\"} 0.25\n")
            .value());
    s->fetched_at = t0;
    parts.push_back(snapshot::render_upstream(s));
  }
  const std::shared_ptr<const snapshot::exposition_view> merged = snapshot::merge_renders(parts);
  ASSERT_GT(merged->text.plain.segments().size(), 3u);  // what this test is about
  for (auto format : {exposition_format::text, exposition_format::openmetrics}) {
    const bool om = format == exposition_format::openmetrics;
    scrape_body plain, packed;
    assembler.assemble(merged, format, false, t0 + 5s, plain);
    assembler.assemble(merged, format, true, t0 + 5s, packed);
    std::string self;
    metrics.render(self, format, t0 + 5s);
    EXPECT_EQ(joined(plain),
              (om ? merged->openmetrics.plain : merged->text.plain).str() + self + (om ? "# EOF\n" : ""));
    EXPECT_EQ(plain.size(), joined(plain).size());
    EXPECT_EQ(packed.size(), joined(packed).size());
    EXPECT_EQ(snapshot::gzip_decompress(joined(packed), 1u << 20).value(), joined(plain));
  }
}

// The CRC of view + stable part is cached per view: a new view (a poll),
// even one allocated where the old one was, must not reuse it.
TEST_F(ScrapeBody, GzipStaysValidAcrossNewViews) {
  for (int i = 0; i < 4; ++i) {
    auto s = std::make_shared<snapshot::snapshot>();
    s->upstream = "prod";
    s->text = snapshot::series_text(
        exposition::parse_text("requests_count_total " + std::to_string(i) + "\n").value());
    s->fetched_at = t0;
    auto v = snapshot::render_view({s});
    scrape_body plain, packed;
    assembler.assemble(v, exposition_format::text, true, t0, packed);
    assembler.assemble(v, exposition_format::text, false, t0, plain);
    const auto body = snapshot::gzip_decompress(joined(packed), 1u << 20);
    ASSERT_TRUE(body.has_value()) << i;
    EXPECT_EQ(*body, joined(plain)) << i;
    if (i == 2) metrics.upstream("prod").count_parse_error();  // and a new stable part
  }
}

TEST_F(ScrapeBody, LiveValuesAreFreshWhileTheStablePartIsReused) {
  scrape_body first, second;
  metrics.count_scrape(200);
  assembler.assemble(view, exposition_format::text, false, t0 + 5s, first);
  metrics.count_scrape(200);
  metrics.set_open_connections(3);
  assembler.assemble(view, exposition_format::text, false, t0 + 9s, second);
  EXPECT_EQ(first.stable, second.stable);  // the same object: not rendered again
  EXPECT_THAT(std::string(first.parts.back()),
              HasSubstr("cerebras_proxy_scrapes_total{code=\"200\"} 1\n"));
  EXPECT_THAT(std::string(second.parts.back()),
              HasSubstr("cerebras_proxy_scrapes_total{code=\"200\"} 2\n"));
  EXPECT_THAT(std::string(second.parts.back()),
              HasSubstr("cerebras_proxy_snapshot_age_seconds{upstream=\"prod\"} 9\n"));
  EXPECT_THAT(std::string(second.parts.back()), HasSubstr("cerebras_proxy_http_connections_open 3\n"));
}

// A write still in flight points into the scrape_body it was assembled in:
// a change of the stable part must build a new one, not rewrite that one.
TEST_F(ScrapeBody, AStableChangeLeavesEarlierBodiesIntact) {
  int failures = 0;
  for (bool gzip : {false, true}) {
    scrape_body in_flight;
    assembler.assemble(view, exposition_format::text, gzip, t0 + 5s, in_flight);
    const std::string before = joined(in_flight);

    metrics.upstream("prod").count_request("503", 0.1);
    scrape_body next;
    assembler.assemble(view, exposition_format::text, gzip, t0 + 6s, next);

    EXPECT_NE(in_flight.stable, next.stable);
    EXPECT_EQ(joined(in_flight), before);
    const auto text =
        gzip ? snapshot::gzip_decompress(joined(next), 1u << 20).value() : joined(next);
    EXPECT_THAT(
        text, HasSubstr("cerebras_proxy_upstream_requests_total{upstream=\"prod\",code=\"503\"} " +
                        std::to_string(++failures) + "\n"));
  }
}

TEST_F(ScrapeBody, KeepsTheViewItWasAssembledFromUntilReleased) {
  scrape_body b;
  std::weak_ptr<const snapshot::exposition_view> held;
  {
    auto v = make_view();
    held = v;
    assembler.assemble(std::move(v), exposition_format::openmetrics, false, t0, b);
  }
  EXPECT_FALSE(held.expired());
  EXPECT_THAT(std::string(b.parts.front()), StartsWith("# TYPE requests_count_total gauge\n"));
  EXPECT_THAT(joined(b), EndsWith("\n# EOF\n"));
  b.release();
  EXPECT_TRUE(held.expired());
  EXPECT_EQ(b.size(), 0u);
}

}  // namespace
}  // namespace cmp::server
