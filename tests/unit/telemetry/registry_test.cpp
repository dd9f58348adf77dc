#include "cmp/telemetry/registry.hpp"

#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

namespace cmp::telemetry {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr auto text = exposition::format::text;
constexpr auto openmetrics = exposition::format::openmetrics;
const wall_clock::time_point t0 = wall_clock::time_point(std::chrono::seconds(1795608000));

TEST(Registry, RendersEveryContractNameWithUpstreamLabels) {
  registry r(t0);
  auto& u = r.upstream("org-a");
  u.count_request("200", 0.3);
  u.count_request("200", 2);
  u.count_request("timeout", 5);
  u.set_up(true, t0 + 5s);
  u.snapshot_fetched_at = t0 + 5s;
  u.rate_limit_remaining = [](wall_clock::time_point) { return 4u; };
  r.count_scrape(200);
  std::string out;
  r.render(out, text, t0 + 35s);
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_requests_total{upstream=\"org-a\",code=\"200\"} 2\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_requests_total{upstream=\"org-a\",code=\"timeout\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_up{upstream=\"org-a\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_last_success_timestamp_seconds{upstream=\"org-a\"} 1795608005\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_snapshot_age_seconds{upstream=\"org-a\"} 30\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_rate_limit_remaining{upstream=\"org-a\"} 4\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_request_duration_seconds_bucket{upstream=\"org-a\",le=\"0.25\"} 0\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_request_duration_seconds_bucket{upstream=\"org-a\",le=\"0.5\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_request_duration_seconds_bucket{upstream=\"org-a\",le=\"1.0\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_request_duration_seconds_bucket{upstream=\"org-a\",le=\"+Inf\"} 3\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_request_duration_seconds_bucket{upstream=\"org-a\",le=\"2.5\"} 2\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_request_duration_seconds_sum{upstream=\"org-a\"} 7.3\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_request_duration_seconds_count{upstream=\"org-a\"} 3\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_parse_errors_total{upstream=\"org-a\"} 0\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_scrapes_total{code=\"200\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_build_info{version=\"" CMP_VERSION "\",revision=\""));
  EXPECT_THAT(out, HasSubstr("# TYPE cerebras_proxy_upstream_requests_total counter\n"));
  EXPECT_THAT(out, HasSubstr("# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes "));
  EXPECT_THAT(out, HasSubstr("process_open_fds "));
}

// Absent until an answer with a Date header arrived; then the last value,
// negative when the API is behind.
TEST(Registry, ClockSkewIsAGaugeOnceKnown) {
  registry r(t0);
  auto& u = r.upstream("org-a");
  std::string out;
  r.render(out, text, t0);
  EXPECT_THAT(out, HasSubstr("# TYPE cerebras_proxy_upstream_clock_skew_seconds gauge\n"));
  EXPECT_THAT(out, Not(HasSubstr("cerebras_proxy_upstream_clock_skew_seconds{")));
  u.set_clock_skew(-9.2);
  out.clear();
  r.render(out, text, t0);
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_clock_skew_seconds{upstream=\"org-a\"} -9.2\n"));
}

TEST(Registry, NormalizationsAreCountedByKindAndFirstOfAKindIsSaid) {
  registry r(t0);
  auto& u = r.upstream("org-a");
  EXPECT_TRUE(u.count_normalizations("family_merged", 2));
  EXPECT_FALSE(u.count_normalizations("family_merged", 3));
  EXPECT_TRUE(u.count_normalizations("duplicate_help", 1));
  std::string out;
  r.render(out, text, t0);
  EXPECT_THAT(out, HasSubstr("# TYPE cerebras_proxy_upstream_normalizations_total counter\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_normalizations_total{upstream=\"org-a\",kind=\"family_merged\"} 5\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_upstream_normalizations_total{upstream=\"org-a\",kind=\"duplicate_help\"} 1\n"));
}

TEST(Registry, OpenMetricsNamesCounterFamiliesWithoutTotal) {
  registry r(t0);
  r.upstream("a").count_request("503", 0.1);
  std::string out;
  r.render(out, openmetrics, t0);
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
  r.render(out, text, t0 + 1s);
  EXPECT_THAT(out, Not(HasSubstr("cerebras_proxy_snapshot_age_seconds{upstream=\"a\"}")));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_snapshot_age_seconds{upstream=\"b\"} 1\n"));
  r.retain_upstreams({"b"});
  out.clear();
  r.render(out, text, t0 + 1s);
  EXPECT_THAT(out, Not(HasSubstr("upstream=\"a\"")));
  EXPECT_EQ(r.find_upstream("a"), nullptr);
}

TEST(Registry, ReloadFailureIsVisibleAndKeepsLastSuccessTime) {
  registry r(t0);
  r.set_reload_result(false, t0 + 10s);
  std::string out;
  r.render(out, text, t0 + 10s);
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_config_last_reload_successful 0\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_config_last_reload_success_timestamp_seconds 1795608000\n"));
}

// The self-metrics without the families that change with time or with the
// scrapes themselves: what must be served the moment it changes.
std::string stable_text(registry& r, exposition::format f = text) {
  static const std::vector<std::string_view> live = {
      "cerebras_proxy_snapshot_age_seconds", "cerebras_proxy_rate_limit_remaining", "cerebras_proxy_scrapes",
      "cerebras_proxy_event_loop_lag_seconds", "cerebras_proxy_http_connections", "process_"};
  std::string all, out;
  r.render(all, f, t0);
  std::size_t at = 0;
  while (at < all.size()) {
    const auto end = all.find('\n', at) + 1;
    const std::string_view line(all.data() + at, end - at);
    const auto name = line.starts_with("# ") ? line.substr(7) : line;
    if (std::none_of(live.begin(), live.end(), [&](auto l) { return name.starts_with(l); })) out.append(line);
    at = end;
  }
  return out;
}

// Every change that shows in the stable families moves the generation (or
// prepared self-metrics would serve old values for up to a second);
// changes that only show in the live ones leave it alone (or they would be
// prepared again at every scrape).
TEST(Registry, StableGenerationMovesExactlyWhenTheStablePartChanges) {
  registry r(t0);
  auto& a = r.upstream("a");
  const std::vector<std::pair<std::string, std::function<void()>>> steps = {
      {"request", [&] { a.count_request("200", 0.4); }},
      {"same code again", [&] { a.count_request("200", 0.4); }},
      {"new code", [&] { a.count_request("timeout", 5); }},
      {"up", [&] { a.set_up(true, t0 + 1s); }},
      {"up again, later", [&] { a.set_up(true, t0 + 61s); }},
      {"down", [&] { a.set_up(false, t0 + 62s); }},
      {"down again", [&] { a.set_up(false, t0 + 63s); }},
      {"served", [&] { a.set_snapshot_served(true); }},
      {"served again", [&] { a.set_snapshot_served(true); }},
      {"not served", [&] { a.set_snapshot_served(false); }},
      {"parse error", [&] { a.count_parse_error(); }},
      {"schema change", [&] { a.count_schema_change(); }},
      {"normalization", [&] { (void)a.count_normalizations("family_merged", 1); }},
      {"same normalization", [&] { (void)a.count_normalizations("family_merged", 2); }},
      {"api key reload", [&] { a.count_api_key_reload(); }},
      {"clock skew", [&] { a.set_clock_skew(10.5); }},
      {"same clock skew", [&] { a.set_clock_skew(10.5); }},
      {"clock skew back", [&] { a.set_clock_skew(0); }},
      {"reload failed", [&] { r.set_reload_result(false, t0 + 70s); }},
      {"reload ok", [&] { r.set_reload_result(true, t0 + 80s); }},
      {"new upstream", [&] { r.upstream("b"); }},
      {"existing upstream", [&] { r.upstream("a"); }},
      {"retain all", [&] { r.retain_upstreams({"a", "b"}); }},
      {"drop one", [&] { r.retain_upstreams({"a"}); }},
      {"scrape", [&] { r.count_scrape(200); }},
      {"connections", [&] { r.set_open_connections(7); }},
      {"refused", [&] { r.count_connection_refused(); }},
      {"snapshot time", [&] { r.upstream("a").snapshot_fetched_at = t0 + 90s; }},
  };
  for (const auto& [what, step] : steps) {
    const auto before_gen = r.stable_generation();
    const auto before = stable_text(r);
    const auto before_om = stable_text(r, openmetrics);
    step();
    const bool changed = stable_text(r) != before || stable_text(r, openmetrics) != before_om;
    EXPECT_EQ(r.stable_generation() != before_gen, changed) << what << ": the stable text "
                                                           << (changed ? "changed" : "did not change");
  }
}

TEST(ProcessMetrics, ReadsPlausibleValues) {
  auto s = read_process_sample();
  // qemu-user (the arm64 tests of scripts/release.sh) emulates /proc/self/stat
  // with a resident set size of 0; a native run must see the real one.
  if (std::getenv("CMP_TEST_EMULATOR") == nullptr) {
    EXPECT_GT(s.resident_bytes, 1e5);
  }
  EXPECT_GT(s.open_fds, 2);
  EXPECT_GT(s.max_fds, s.open_fds);
  EXPECT_GT(s.start_time_seconds, 1.6e9);
}

}  // namespace
}  // namespace cmp::telemetry
