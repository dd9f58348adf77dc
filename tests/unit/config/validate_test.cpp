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

// The likely mistakes in `url`: a placeholder or empty organization id is an
// error; a URL that is not the Metrics API's a warning showing the expected
// form (a relay or test endpoint may be meant); loopback hosts stay quiet.
struct url_case {
  const char* url;
  const char* error;    // a fragment of the one finding, or nullptr
  const char* warning;  // a fragment of the one finding, or nullptr
};

constexpr const char* api = "https://cloud.cerebras.ai/api/v1/metrics/organizations/";

// Exactly the one finding (on `key`) that a case expects, or none.
void expect_findings(const std::vector<problem>& ps, std::string_view key, const url_case& c) {
  if (c.error == nullptr && c.warning == nullptr) {
    EXPECT_TRUE(ps.empty()) << describe(ps);
    return;
  }
  ASSERT_EQ(ps.size(), 1U) << describe(ps);
  const bool warning = c.error == nullptr;
  EXPECT_TRUE(finds(ps, key, warning ? c.warning : c.error, warning));
}

// gtest names: the case's index and the letters and digits of its URL.
std::string url_case_name(const ::testing::TestParamInfo<url_case>& info) {
  std::string name = std::to_string(info.index) + "_";
  for (const char c : std::string_view(info.param.url)) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) name += c;
  }
  return name;
}

const url_case url_cases[] = {
    {"org_abc123", nullptr, nullptr},
    {"org_5xk9q2x", nullptr, nullptr},
    {"org_replay7", nullptr, nullptr},
    {"org_x", nullptr, nullptr},
    {"org_xx", nullptr, nullptr},
    {"org_xxx", "is a placeholder", nullptr},
    {"org_", "is a placeholder", nullptr},
    {"org_REPLACE_ME",
     "organization id \"org_REPLACE_ME\" is a placeholder; put your organization's id (Cerebras cloud "
     "console) in its place: https://cloud.cerebras.ai/api/v1/metrics/organizations/<org-id>",
     nullptr},
    {"org_XXXXXXXX", "\"org_XXXXXXXX\" is a placeholder", nullptr},
    {"org_xxxx", "is a placeholder", nullptr},
    {"org_...", "is a placeholder", nullptr},
    {"<org-id>", "\"<org-id>\" is a placeholder", nullptr},
    {"${ORG_ID}", "is a placeholder", nullptr},
    {"{{org}}", "is a placeholder", nullptr},
    {"your-org-id", "is a placeholder", nullptr},
    {"YOUR_ORG", "is a placeholder", nullptr},
    {"CHANGEME", "is a placeholder", nullptr},
    {"org_placeholder", "is a placeholder", nullptr},
    {"org_id", "is a placeholder", nullptr},
    {"organization-id", "is a placeholder", nullptr},
    {"", "has no organization id after /api/v1/metrics/organizations/; put your organization's id", nullptr},
    {"?x=1", "has no organization id", nullptr},
    {"csk-4f9a8b7c6d5e", "looks like an API key (value not shown)", nullptr},
};

class ValidateOrganizationId : public ::testing::TestWithParam<url_case> {};

TEST_P(ValidateOrganizationId, PlaceholdersAndEmptyIdsAreErrors) {
  upstream u = valid();
  u.url = std::string(api) + GetParam().url;
  const auto ps = validate(u);
  expect_findings(ps, "url", GetParam());
  if (std::string_view(GetParam().url).starts_with("csk-") && !ps.empty()) {
    EXPECT_EQ(ps[0].reason.find(GetParam().url), std::string::npos) << "a key is never echoed";
  }
}

INSTANTIATE_TEST_SUITE_P(All, ValidateOrganizationId, ::testing::ValuesIn(url_cases), url_case_name);

const url_case form_cases[] = {
    {"https://cloud.cerebras.ai/api/v1/metrics/organizations/org_1", nullptr, nullptr},
    {"https://CLOUD.Cerebras.AI/api/v1/metrics/organizations/org_1", nullptr, nullptr},
    {"https://cloud.cerebras.ai/api/v1/metrics/organizations/org_1?x=1", nullptr, nullptr},
    {"https://api.cerebras.ai/v1/metrics", nullptr,
     "neither its host (api.cerebras.ai) nor its path is the Metrics API's, "
     "https://cloud.cerebras.ai/api/v1/metrics/organizations/<org-id>; fine for a relay or test "
     "endpoint, otherwise correct it"},
    {"https://relay.internal:8443/api/v1/metrics/organizations/org_1", nullptr,
     "its host (relay.internal) is not the Metrics API's"},
    {"https://cloud.cerebras.ai/api/v1/metrics/org_1", nullptr, "its path is not the Metrics API's"},
    {"https://cloud.cerebras.ai/api/v1/metrics/organizations/org_1/extra", nullptr,
     "its path is not the Metrics API's"},
    // Loopback is a test endpoint, the demo or a local relay: quiet...
    {"http://127.0.0.1:9900/anything", nullptr, nullptr},
    {"https://localhost:8443/api/v1/metrics/organizations/org_abc123", nullptr, nullptr},
    {"http://[::1]:9900/metrics", nullptr, nullptr},
    // ... but a placeholder there is still one.
    {"http://127.0.0.1:9900/api/v1/metrics/organizations/org_REPLACE_ME", "is a placeholder", nullptr},
    // A template that no URL parser takes: the placeholder says what to fix.
    {"https://cloud.cerebras.ai/api/v1/metrics/organizations/<your org>", "is a placeholder", nullptr},
};

class ValidateApiForm : public ::testing::TestWithParam<url_case> {};

TEST_P(ValidateApiForm, AnotherHostOrPathIsAWarningNamingTheForm) {
  upstream u = valid();
  u.url = GetParam().url;
  expect_findings(validate(u), "url", GetParam());
}

INSTANTIATE_TEST_SUITE_P(All, ValidateApiForm, ::testing::ValuesIn(form_cases), url_case_name);

// A proxy_url that cannot be used (or not as written).
const url_case proxy_cases[] = {
    {"http://proxy.corp:3128", nullptr, nullptr},
    {"http://user:pw@proxy.corp:3128/", nullptr, nullptr},
    {"http://proxy.corp", nullptr, "has no port, so 80 is used; proxies seldom listen there (Squid: 3128): "
                                   "write http://host:port"},
    {"http://proxy.corp:3128/proxy.pac", nullptr,
     "only the host and port are used: remove the path, query or fragment"},
    {"http://proxy.corp:3128?a=b", nullptr, "only the host and port are used"},
    {"https://proxy.corp:3128", "scheme \"https\" is not supported; an HTTP CONNECT proxy is http://",
     nullptr},
    {"proxy.corp:3128", "is not supported; an HTTP CONNECT proxy is http://", nullptr},
    {"http://:3128", "has no host; write http://host:port", nullptr},
    {"http://proxy.corp:0", "port \"0\" is not in 1-65535", nullptr},
    {"http://proxy corp:3128", "is not a valid absolute URL", nullptr},
};

class ValidateProxyUrl : public ::testing::TestWithParam<url_case> {};

TEST_P(ValidateProxyUrl, SaysWhyItCannotBeUsed) {
  upstream u = valid();
  u.proxy_url = GetParam().url;
  expect_findings(validate(u), "proxy_url", GetParam());
}

INSTANTIATE_TEST_SUITE_P(All, ValidateProxyUrl, ::testing::ValuesIn(proxy_cases), url_case_name);

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
