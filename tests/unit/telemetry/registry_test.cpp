#include "cmp/telemetry/registry.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cmp::telemetry {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

const wall_clock::time_point t0 = wall_clock::time_point(std::chrono::seconds(1795608000));

TEST(Registry, RendersEveryContractNameWithUpstreamLabels) {
  registry r(t0);
  auto& u = r.upstream("org-a");
  u.count_request("200");
  u.count_request("200");
  u.count_request("timeout");
  u.up = true;
  u.last_success = t0 + 5s;
  u.snapshot_fetched_at = t0 + 5s;
  u.rate_limit_remaining = [](wall_clock::time_point) { return 4u; };
  u.request_duration.observe(0.3);
  r.count_scrape(200);
  std::string out;
  r.render(out, false, t0 + 35s);
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_requests_total{upstream=\"org-a\",code=\"200\"} 2\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_requests_total{upstream=\"org-a\",code=\"timeout\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_up{upstream=\"org-a\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_last_success_timestamp_seconds{upstream=\"org-a\"} 1795608005\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_snapshot_age_seconds{upstream=\"org-a\"} 30\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_rate_limit_remaining{upstream=\"org-a\"} 4\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_request_duration_seconds_bucket{upstream=\"org-a\",le=\"0.25\"} 0\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_request_duration_seconds_bucket{upstream=\"org-a\",le=\"0.5\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_request_duration_seconds_bucket{upstream=\"org-a\",le=\"1.0\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_request_duration_seconds_bucket{upstream=\"org-a\",le=\"+Inf\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_parse_errors_total{upstream=\"org-a\"} 0\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_scrapes_total{code=\"200\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_build_info{version=\"" CMP_VERSION "\",revision=\""));
  EXPECT_THAT(out, HasSubstr("# TYPE cerebras_proxy_upstream_requests_total counter\n"));
  EXPECT_THAT(out, HasSubstr("# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes "));
  EXPECT_THAT(out, HasSubstr("process_open_fds "));
}

TEST(Registry, OpenMetricsNamesCounterFamiliesWithoutTotal) {
  registry r(t0);
  r.upstream("a").count_request("503");
  std::string out;
  r.render(out, true, t0);
  EXPECT_THAT(out, HasSubstr("# TYPE cerebras_proxy_upstream_requests counter\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_requests_total{upstream=\"a\",code=\"503\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("# TYPE process_cpu_seconds counter\n"));
  EXPECT_THAT(out, Not(HasSubstr("# EOF")));
}

TEST(Registry, AbsentSnapshotHasNoAgeAndRetainDropsUpstreams) {
  registry r(t0);
  r.upstream("a");
  r.upstream("b").snapshot_fetched_at = t0;
  std::string out;
  r.render(out, false, t0 + 1s);
  EXPECT_THAT(out, Not(HasSubstr("cerebras_proxy_snapshot_age_seconds{upstream=\"a\"}")));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_snapshot_age_seconds{upstream=\"b\"} 1\n"));
  r.retain_upstreams({"b"});
  out.clear();
  r.render(out, false, t0 + 1s);
  EXPECT_THAT(out, Not(HasSubstr("upstream=\"a\"")));
  EXPECT_EQ(r.find_upstream("a"), nullptr);
}

TEST(Registry, ReloadFailureIsVisibleAndKeepsLastSuccessTime) {
  registry r(t0);
  r.set_reload_result(false, t0 + 10s);
  std::string out;
  r.render(out, false, t0 + 10s);
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_config_last_reload_successful 0\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_config_last_reload_success_timestamp_seconds 1795608000\n"));
}

TEST(ProcessMetrics, ReadsPlausibleValues) {
  auto s = read_process_sample();
  EXPECT_GT(s.resident_bytes, 1e5);
  EXPECT_GT(s.open_fds, 2);
  EXPECT_GT(s.max_fds, s.open_fds);
  EXPECT_GT(s.start_time_seconds, 1.6e9);
}

}  // namespace
}  // namespace cmp::telemetry
