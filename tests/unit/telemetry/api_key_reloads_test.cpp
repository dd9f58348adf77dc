// cerebras_proxy_api_key_reloads_total: one line per upstream, from 0, and
// part of the stable rendering (a reload must show in the next scrape).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cmp/telemetry/registry.hpp"

namespace cmp::telemetry {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

TEST(ApiKeyReloads, CountedPerUpstreamAndRenderedAsACounter) {
  registry r(wall_clock::time_point(std::chrono::seconds(1795608000)));
  auto& a = r.upstream("a");
  (void)r.upstream("b");
  for (auto f : {exposition::format::text, exposition::format::openmetrics}) {
    const bool om = f == exposition::format::openmetrics;
    std::string out;
    r.render(out, f, {});
    EXPECT_THAT(out, HasSubstr("# TYPE cerebras_proxy_api_key_reloads" +
                               std::string(om ? " counter\n" : "_total counter\n")));
    EXPECT_THAT(out, HasSubstr("cerebras_proxy_api_key_reloads_total{upstream=\"a\"} 0\n"));
  }
  const auto before = r.stable_generation();
  a.count_api_key_reload();
  a.count_api_key_reload();
  EXPECT_NE(r.stable_generation(), before);
  std::string out;
  r.render(out, exposition::format::text, {});
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_api_key_reloads_total{upstream=\"a\"} 2\n"));
  EXPECT_THAT(out, HasSubstr("cerebras_proxy_api_key_reloads_total{upstream=\"b\"} 0\n"));
}

}  // namespace
}  // namespace cmp::telemetry
