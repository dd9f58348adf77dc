// rename_labels, derived_counters and the offset + timeout rule.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cmp/config/config.hpp"

namespace cmp::config {
namespace {

using ::testing::HasSubstr;

std::string with(const std::string& extra) {
  return "upstreams:\n"
         "  - name: a\n"
         "    url: https://cloud.cerebras.ai/api/v1/metrics/organizations/org_1\n" +
         extra;
}

std::string error_of(const std::string& yaml) {
  try {
    (void)parse_config(yaml, "t.yml");
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

TEST(UpstreamOptions, DefaultsAreOff) {
  const auto c = parse_config(with(""), "t.yml");
  EXPECT_FALSE(c.upstreams[0].derived_counters);
  EXPECT_TRUE(c.upstreams[0].rename_labels.empty());
}

TEST(UpstreamOptions, ReadsRenameLabelsAndDerivedCounters) {
  const auto c = parse_config(
      with("    derived_counters: true\n    rename_labels: {endpoint: cerebras_endpoint}\n"), "t.yml");
  EXPECT_TRUE(c.upstreams[0].derived_counters);
  EXPECT_EQ(c.upstreams[0].rename_labels.at("endpoint"), "cerebras_endpoint");
  EXPECT_THAT(summarize(c), HasSubstr("rename_labels: endpoint -> cerebras_endpoint"));
}

TEST(UpstreamOptions, RejectsBadValues) {
  EXPECT_THAT(error_of(with("    derived_counters: maybe\n")),
              HasSubstr("t.yml: upstreams[0].derived_counters"));
  EXPECT_THAT(error_of(with("    rename_labels: {endpoint: \"bad-name\"}\n")),
              HasSubstr("upstreams[0].rename_labels.endpoint: both names must be label names"));
  EXPECT_THAT(error_of(with("    rename_labels: {endpoint: __x}\n")), HasSubstr("reserved"));
}

TEST(UpstreamOptions, OffsetPlusTimeoutMustFitTheInterval) {
  EXPECT_THAT(error_of(with("    poll_interval: 60s\n    poll_offset: 55s\n    timeout: 10s\n")),
              HasSubstr("upstreams[0].timeout: poll_offset (55s) + timeout (10s) must fit in "
                        "poll_interval (1m)"));
  EXPECT_EQ(error_of(with("    poll_interval: 60s\n    poll_offset: 50s\n    timeout: 10s\n")), "");
}

}  // namespace
}  // namespace cmp::config
