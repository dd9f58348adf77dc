// validate() on structs, without YAML: the rules hold for values that come
// from anywhere (a command-line override re-validates the same way).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cmp/config/config.hpp"

namespace cmp::config {
namespace {

upstream valid() {
  upstream u;
  u.url = "https://cloud.cerebras.ai/api/v1/metrics/organizations/org_1";
  return u;
}

std::string describe(const std::vector<problem>& ps) {
  std::string out;
  for (const auto& p : ps) {
    out.append("\n  ").append(p.key).append(": ").append(p.reason);
    if (p.warning) out.append(" (warning)");
  }
  return out;
}

// Passes when one finding has this key, severity and reason fragment.
::testing::AssertionResult finds(const std::vector<problem>& ps, std::string_view key,
                                 std::string_view reason, bool warning = false) {
  for (const auto& p : ps) {
    if (p.key == key && p.warning == warning && p.reason.find(reason) != std::string::npos) {
      return ::testing::AssertionSuccess();
    }
  }
  return ::testing::AssertionFailure() << "no " << (warning ? "warning" : "error") << " `" << key
                                       << ": ..." << reason << "...` among:" << describe(ps);
}

TEST(Validate, TheDefaultsWithAUrlAreValid) {
  EXPECT_TRUE(validate(valid()).empty()) << describe(validate(valid()));
}

struct rule_case {
  const char* name;
  void (*change)(upstream&);
  const char* key;
  const char* reason;
  bool warning;
};

const rule_case rule_cases[] = {
    {"name", [](upstream& u) { u.name = "a b"; }, "name", "must match [a-zA-Z0-9_-]+", false},
    {"url_missing", [](upstream& u) { u.url.clear(); }, "url", "is required", false},
    {"env_not_a_name", [](upstream& u) { u.api_key_env = "csk-abc"; }, "api_key_env",
     "value not shown", false},
    {"no_key_source", [](upstream& u) { u.api_key_env.clear(); }, "api_key_env", "both empty",
     false},
    {"env_and_file",
     [](upstream& u) {
       u.api_key_env = "MY_KEY";
       u.api_key_file = "/run/key";
     },
     "api_key_env", "ignored, api_key_file is set and wins", true},
    {"proxy_scheme", [](upstream& u) { u.proxy_url = "socks5://p:1080"; }, "proxy_url",
     "an HTTP CONNECT proxy is http://", false},
    {"timeout_zero", [](upstream& u) { u.timeout = duration::zero(); }, "timeout",
     "must be greater than 0", false},
    {"offset_past_interval", [](upstream& u) { u.poll_offset = 60s; }, "poll_offset",
     "must be less than poll_interval", false},
    {"offset_plus_timeout", [](upstream& u) { u.poll_offset = 55s; }, "timeout",
     "must fit in poll_interval", false},
    {"staleness", [](upstream& u) { u.max_staleness = 30s; }, "max_staleness",
     "must be at least poll_interval", false},
    {"requests_zero", [](upstream& u) { u.limit.requests = 0; }, "rate_limit.requests",
     "must be at least 1", false},
    {"thin_budget",
     [](upstream& u) {
       u.limit = {2, 5min};
     },
     "rate_limit", "some polls will be skipped", true},
    {"replica_index",
     [](upstream& u) {
       u.replicas = {2, 2};
     },
     "replicas.index", "2 must be less than replicas.count (2)", false},
    {"replica_count_zero",
     [](upstream& u) {
       u.replicas = {0, 0};
     },
     "replicas.count", "must be at least 1", false},
    {"replica_slices",
     [](upstream& u) {
       u.replicas = {60, 0};
       u.limit.requests = 1;
       u.timestamps = timestamp_mode::window;
     },
     "replicas", "need at least 1s each", false},
    {"replicas_overspend",
     [](upstream& u) {
       u.replicas = {2, 1};
       u.timestamps = timestamp_mode::window;
     },
     "rate_limit", "may send 12 requests in one minute", true},
    {"replicas_without_window",
     [](upstream& u) {
       u.replicas = {2, 1}, u.limit.requests = 3;
     },
     "replicas", "timestamps: window makes the replicas' samples identical", true},
    {"label_reserved", [](upstream& u) { u.extra_labels.emplace("upstream", "x"); },
     "extra_labels.upstream", "the proxy sets it", false},
    {"rename_reserved", [](upstream& u) { u.rename_labels.emplace("endpoint", "__x"); },
     "rename_labels.endpoint", "reserved for Prometheus", false},
};

class ValidateRule : public ::testing::TestWithParam<rule_case> {};

TEST_P(ValidateRule, ReportsTheKeyAndReason) {
  upstream u = valid();
  GetParam().change(u);
  EXPECT_TRUE(finds(validate(u), GetParam().key, GetParam().reason, GetParam().warning));
}

INSTANTIATE_TEST_SUITE_P(All, ValidateRule, ::testing::ValuesIn(rule_cases),
                         [](const auto& p) { return std::string(p.param.name); });

TEST(Validate, ComparisonsSkipFieldsThatCouldNotBeRead) {
  // poll_interval 5s against the default timeout (10s) would be an error,
  // but the user's timeout did not parse: the default is not theirs.
  upstream u = valid();
  u.poll_interval = 5s;
  EXPECT_TRUE(finds(validate(u), "timeout", "must be less than poll_interval"));
  EXPECT_TRUE(validate(u, {"timeout"}).empty()) << describe(validate(u, {"timeout"}));
  // A block that was not a mapping counts for each of its fields.
  u = valid();
  u.replicas = {2, 5};
  EXPECT_TRUE(validate(u, {"replicas"}).empty()) << describe(validate(u, {"replicas"}));
}

TEST(Validate, ReportsEveryProblemAtOnce) {
  upstream u = valid();
  u.name = "";
  u.timeout = duration::zero();
  u.limit.requests = 0;
  const auto ps = validate(u);
  EXPECT_TRUE(finds(ps, "name", "must match"));
  EXPECT_TRUE(finds(ps, "timeout", "greater than 0"));
  EXPECT_TRUE(finds(ps, "rate_limit.requests", "at least 1"));
  EXPECT_EQ(ps.size(), 3U) << describe(ps);
}

}  // namespace
}  // namespace cmp::config
