#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <string>

#include <boost/url/parse.hpp>

#include "cmp/upstream/http_fetch.hpp"

namespace cmp::upstream {
namespace {

using env_map = std::map<std::string, std::string>;

std::string proxy_for(std::string_view url, const env_map& env, const std::string& configured = "") {
  const auto u = boost::urls::parse_uri(url).value();
  // Values built at run time, so a dangling view into them would show under ASan.
  const auto p = select_proxy(u, configured, [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
  return p ? p->host + ":" + p->port : "direct";
}

constexpr std::string_view api = "https://cloud.cerebras.ai/api/v1/metrics/organizations/o";

TEST(SelectProxy, NoVariablesMeansDirect) { EXPECT_EQ(proxy_for(api, {}), "direct"); }

TEST(SelectProxy, ConfiguredProxyUrlWinsOverTheEnvironment) {
  EXPECT_EQ(proxy_for(api, {{"HTTPS_PROXY", "http://env:1"}, {"NO_PROXY", "*"}}, "http://cfg:3128"),
            "cfg:3128");
}

TEST(SelectProxy, HttpsTargetsUseHttpsProxyLowerCaseFirst) {
  EXPECT_EQ(proxy_for(api, {{"HTTPS_PROXY", "http://upper:8080"}}), "upper:8080");
  EXPECT_EQ(proxy_for(api, {{"HTTPS_PROXY", "http://upper:8080"}, {"https_proxy", "lower:9090"}}),
            "lower:9090");
  EXPECT_EQ(proxy_for(api, {{"HTTP_PROXY", "http://plain:1"}}), "direct");
}

TEST(SelectProxy, HttpTargetsUseHttpProxyAndPortDefaultsTo80) {
  EXPECT_EQ(proxy_for("http://127.0.0.1:9/x", {{"http_proxy", "squid"}}), "squid:80");
}

TEST(SelectProxy, NoProxyMatchesHostsAndDomainSuffixesOnly) {
  const env_map base{{"HTTPS_PROXY", "http://p:3128"}};
  auto with = [&](std::string no_proxy) {
    auto env = base;
    env["NO_PROXY"] = std::move(no_proxy);
    return proxy_for(api, env);
  };
  EXPECT_EQ(with("cloud.cerebras.ai"), "direct");
  EXPECT_EQ(with("localhost, .cerebras.ai"), "direct");
  EXPECT_EQ(with("cerebras.ai"), "direct");
  EXPECT_EQ(with("CLOUD.Cerebras.AI:443"), "direct");
  EXPECT_EQ(with("*"), "direct");
  EXPECT_EQ(with("bras.ai,example.com"), "p:3128");  // not a label boundary
  EXPECT_EQ(with(""), "p:3128");
  EXPECT_EQ(with(" , ,"), "p:3128");
}

std::optional<proxy_endpoint> proxy_of(const env_map& env, const std::string& configured = "") {
  const auto u = boost::urls::parse_uri(api).value();
  return select_proxy(u, configured, [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

// user:password from the URL become the CONNECT's Proxy-Authorization,
// percent-decoded first (RFC 7617: base64 of user ":" password).
TEST(SelectProxy, CredentialsBecomeBasicProxyAuthorization) {
  struct row {
    std::string url;
    std::string authorization;
  };
  const std::vector<row> table = {
      {"http://proxy:3128", ""},
      {"http://alice:s3cret@proxy:3128", "Basic YWxpY2U6czNjcmV0"},           // alice:s3cret
      {"http://alice@proxy:3128", "Basic YWxpY2U6"},                         // alice:
      {"http://al%40ice:p%3Ass%2Fw%20rd@proxy:3128", "Basic YWxAaWNlOnA6c3MvdyByZA=="},  // al@ice:p:ss/w rd
      {"alice:s3cret@proxy:3128", "Basic YWxpY2U6czNjcmV0"},                 // no scheme
  };
  for (const auto& r : table) {
    SCOPED_TRACE(r.url);
    const auto p = proxy_of({}, r.url);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->host, "proxy");
    EXPECT_EQ(p->port, "3128");
    EXPECT_EQ(p->origin, "proxy_url");
    EXPECT_EQ(p->authorization.expose(), r.authorization);
    // It is a secret: printed, it redacts itself.
    EXPECT_EQ(fmt::format("{}", p->authorization), "<redacted>");
  }
}

TEST(SelectProxy, CredentialsFromTheEnvironmentNameTheirVariable) {
  auto p = proxy_of({{"HTTPS_PROXY", "http://bob:pw@upper:8080"}});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->origin, "HTTPS_PROXY");
  EXPECT_EQ(p->authorization.expose(), "Basic Ym9iOnB3");  // bob:pw
  p = proxy_of({{"https_proxy", "http://lower:9090"}});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->origin, "https_proxy");
  EXPECT_TRUE(p->authorization.empty());
}

TEST(SelectProxy, UnusableProxyValueIsNoProxy) {
  EXPECT_EQ(proxy_for(api, {{"HTTPS_PROXY", "http://"}}), "direct");
}

}  // namespace
}  // namespace cmp::upstream
