#include <gtest/gtest.h>

#include <map>
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

TEST(SelectProxy, UnusableProxyValueIsNoProxy) {
  EXPECT_EQ(proxy_for(api, {{"HTTPS_PROXY", "http://"}}), "direct");
}

}  // namespace
}  // namespace cmp::upstream
