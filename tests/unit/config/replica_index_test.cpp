// --replica.index: a number or a StatefulSet pod name, applied to every upstream.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "cmp/config/config.hpp"

namespace cmp::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ReplicaIndex, ParsesNumbersAndStatefulSetPodNames) {
  const struct {
    std::string_view text;
    std::optional<std::uint32_t> want;
  } cases[] = {
      {"0", 0u},
      {"1", 1u},
      {"007", 7u},
      {"4294967295", 4294967295u},
      {"cerebras-metrics-proxy-0", 0u},  // what $(POD_NAME) expands to in a StatefulSet
      {"cerebras-metrics-proxy-12", 12u},
      {"proxy-1-2", 2u},  // the ordinal is after the last dash
      {"", std::nullopt},
      {"-1", std::nullopt},  // a negative number, not a pod name
      {"+1", std::nullopt},
      {"1.0", std::nullopt},
      {" 1", std::nullopt},
      {"4294967296", std::nullopt},  // does not fit
      {"cerebras-metrics-proxy", std::nullopt},
      {"cerebras-metrics-proxy-", std::nullopt},
      {"cerebras-metrics-proxy-7b4f9c-x2x9z", std::nullopt},  // a Deployment's pod: no ordinal
      {"$(POD_NAME)", std::nullopt},  // a variable Kubernetes did not expand
  };
  for (const auto& c : cases) EXPECT_EQ(parse_replica_index(c.text), c.want) << c.text;
}

config two_upstreams(std::uint32_t count_a, std::uint32_t count_b) {
  return parse_config(
      fmt::format("upstreams:\n"
                  "  - name: a\n"
                  "    url: https://cloud.cerebras.ai/api/v1/metrics/organizations/org_1\n"
                  "    rate_limit: {{requests: 2, window: 60s}}\n"
                  "    replicas: {{count: {}}}\n"
                  "  - name: b\n"
                  "    url: https://cloud.cerebras.ai/api/v1/metrics/organizations/org_2\n"
                  "    rate_limit: {{requests: 2, window: 60s}}\n"
                  "    replicas: {{count: {}}}\n",
                  count_a, count_b),
      "shared.yml");
}

std::vector<std::string> errors_of(config c, std::uint32_t index) {
  try {
    set_replica_index(c, index);
  } catch (const config_error& e) {
    return e.problems();
  }
  return {};
}

TEST(ReplicaIndex, SetsTheIndexOfEveryUpstream) {
  auto c = two_upstreams(3, 3);
  set_replica_index(c, 2);
  EXPECT_EQ(c.upstreams[0].replicas.index, 2u);
  EXPECT_EQ(c.upstreams[1].replicas.index, 2u);
  EXPECT_THAT(summarize(c), HasSubstr("this is replica 2 of 3"));
}

TEST(ReplicaIndex, RefusesAnIndexAnUpstreamDoesNotCount) {
  // Replica 1 of a shared configuration polls org_2 too: with count 1 it
  // would spend org_2's whole budget beside replica 0.
  EXPECT_THAT(errors_of(two_upstreams(2, 1), 1),
              ElementsAre(HasSubstr("shared.yml: upstreams[1].replicas.index: 1 must be less than "
                                    "replicas.count (1); replicas are numbered from 0 (upstream b, "
                                    "--replica.index=1")));
}

TEST(ReplicaIndex, NamesEveryUpstreamOutOfRange) {
  EXPECT_EQ(errors_of(two_upstreams(2, 2), 2).size(), 2u);
}

TEST(ReplicaIndex, IndexZeroFitsASingleDaemon) {
  auto c = two_upstreams(1, 1);
  set_replica_index(c, 0);
  EXPECT_EQ(c.upstreams[0].replicas.index, 0u);
}

}  // namespace
}  // namespace cmp::config
