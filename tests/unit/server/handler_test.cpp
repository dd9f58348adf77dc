#include "cmp/server/handler.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace cmp::server {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

const wall_clock::time_point t0 = wall_clock::time_point{} + std::chrono::seconds(1'800'000'000);

std::string_view header(const response& r, std::string_view name) {
  for (const auto& [n, v] : r.headers)
    if (n == name) return v;
  return {};
}

bool has_header(const response& r, std::string_view name) {
  for (const auto& [n, v] : r.headers)
    if (n == name) return true;
  return false;
}

std::size_t count_lines(std::string_view s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

class Handler : public ::testing::Test {
 protected:
  Handler() {
    ctx.views = [] { return std::make_shared<const snapshot::served_views>(); };
    ctx.upstreams = [this](wall_clock::time_point) { return upstreams; };
    ctx.reload = [this] {
      ++reloads;
      return reload_error;
    };
  }

  answer ask(std::string_view target, method verb = method::get) {
    request_view r;
    r.verb = verb;
    r.target = target;
    return handle(r, ctx, t0);
  }
  // The answer of anything but a served /metrics.
  response get(std::string_view target, method verb = method::get) {
    auto a = ask(target, verb);
    EXPECT_TRUE(std::holds_alternative<response>(a)) << target;
    return std::holds_alternative<response>(a) ? std::get<response>(a) : response{};
  }
  // What a served /metrics is to serve.
  metrics_request scrape(const request_view& r) {
    auto a = handle(r, ctx, t0);
    EXPECT_TRUE(std::holds_alternative<metrics_request>(a)) << r.target;
    return std::holds_alternative<metrics_request>(a) ? std::get<metrics_request>(a) : metrics_request{};
  }
  metrics_request scrape(std::string_view target, method verb = method::get) {
    request_view r;
    r.verb = verb;
    r.target = target;
    return scrape(r);
  }

  upstream_status upstream(std::string name, std::optional<wall_clock::duration> age) {
    upstream_status u;
    u.name = std::move(name);
    u.url = "https://cloud.cerebras.ai/api/v1/metrics/organizations/org_abc";
    u.max_staleness = 5min;
    u.budget_left = 4;
    u.budget_limit = 6;
    if (age) {
      u.up = true;
      u.snapshot_fetched_at = t0 - *age;
      u.last_success = t0 - *age;
    }
    return u;
  }

  handler_context ctx;
  std::vector<upstream_status> upstreams;
  std::string reload_error;
  int reloads = 0;
};

TEST_F(Handler, MetricsGetAndHeadAreServedFromTheView) {
  for (auto verb : {method::get, method::head}) {
    auto r = scrape("/metrics", verb);
    EXPECT_EQ(r.format, exposition_format::text);
    EXPECT_FALSE(r.gzip);
    EXPECT_EQ(r.wait_for_first, 0ms);
  }
  // A query string does not change the route.
  EXPECT_TRUE(std::holds_alternative<metrics_request>(ask("/metrics?name[]=x")));
}

TEST_F(Handler, MetricsFollowsNegotiation) {
  request_view r;
  r.target = "/metrics";
  r.accept =
      "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
      "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
  r.accept_encoding = "gzip";
  auto m = scrape(r);
  EXPECT_EQ(m.format, exposition_format::openmetrics);
  EXPECT_TRUE(m.gzip);

  r.accept = "*/*";
  r.accept_encoding = "gzip;q=0";
  m = scrape(r);
  EXPECT_EQ(m.format, exposition_format::text);
  EXPECT_FALSE(m.gzip);
}

TEST_F(Handler, ScrapeTimeoutHeaderBoundsTheWaitForTheFirstSnapshot) {
  struct row {
    std::string_view header;
    std::chrono::milliseconds wait;
  };
  for (const auto& [h, wait] : std::vector<row>{{"10", 9500ms},
                                               {"9.5", 9000ms},
                                               {"0.75", 250ms},
                                               {"0.5", 0ms},
                                               {"0.2", 0ms},
                                               {"0", 0ms},
                                               {"-3", 0ms},
                                               {"", 0ms},
                                               {"abc", 0ms},
                                               {"10s", 0ms},
                                               {"inf", 0ms},
                                               {"nan", 0ms},
                                               {"1e9", 120s}}) {
    request_view r;
    r.target = "/metrics";
    r.scrape_timeout = h;
    EXPECT_EQ(scrape(r).wait_for_first, wait) << '"' << h << '"';
  }
}

TEST_F(Handler, MetricsForOneConfiguredUpstream) {
  auto v = std::make_shared<snapshot::served_views>();
  v->upstreams.emplace_back("org-a", std::make_shared<const snapshot::exposition_view>());
  v->upstreams.emplace_back("b c", std::make_shared<const snapshot::exposition_view>());
  ctx.views = [v] { return v; };
  for (auto verb : {method::get, method::head}) EXPECT_EQ(scrape("/metrics?upstream=org-a", verb).upstream, "org-a");
  EXPECT_EQ(scrape("/metrics?x=1&upstream=org%2Da").upstream, "org-a");
  EXPECT_EQ(scrape("/metrics?upstream=b+c").upstream, "b c");
  EXPECT_EQ(scrape("/metrics").upstream, "");  // every upstream and the self-metrics
  for (const auto* target : {"/metrics?upstream=nope", "/metrics?upstream=", "/metrics?upstream",
                             "/metrics?upstream=org%2", "/metrics?upstream=ORG-A"}) {
    EXPECT_EQ(get(target).status, 404u) << target;
  }
}

TEST(QueryParameter, FindsTheFirstValueAndDecodesIt) {
  struct row {
    std::string_view target;
    std::optional<std::string> value;
  };
  for (const auto& [target, value] : std::vector<row>{
           {"/metrics", std::nullopt},
           {"/metrics?", std::nullopt},
           {"/metrics?upstream=a", "a"},
           {"/metrics?upstream=a&upstream=b", "a"},
           {"/metrics?upstreams=a", std::nullopt},
           {"/metrics?x=upstream=a", std::nullopt},
           {"/metrics?a=1&upstream=x%41y", "xAy"},
           {"/metrics?upstream=a#upstream=b", "a"},
           {"/metrics?upstream=%zz", ""},
           {"/metrics?upstream=%4", ""},
           {"/metrics?upstream", ""},
       }) {
    EXPECT_EQ(query_parameter(target, "upstream"), value) << target;
  }
}

TEST_F(Handler, HealthyAndItsAliasAnswerOk) {
  for (auto path : {"/-/healthy", "/healthz"}) {
    for (auto verb : {method::get, method::head}) {
      auto r = get(path, verb);
      EXPECT_EQ(r.status, 200u) << path;
      EXPECT_EQ(r.body, "ok\n");
    }
  }
}

TEST_F(Handler, ReadyWhenEveryUpstreamHasAFreshSnapshot) {
  upstreams = {upstream("a", 10s), upstream("b", 4min)};
  for (auto path : {"/-/ready", "/readyz"}) {
    auto r = get(path);
    EXPECT_EQ(r.status, 200u) << path;
    EXPECT_EQ(r.body, "ok\n");
  }
}

TEST_F(Handler, NotReadyNamesEachUpstreamOnItsOwnLine) {
  upstreams = {upstream("fresh", 10s), upstream("never", std::nullopt), upstream("stale", 6min)};
  upstreams[1].last_error = "connect: connection refused";
  upstreams[2].last_error = "HTTP 503\nfrom upstream\r\n";  // must not break the one-line rule
  for (auto path : {"/-/ready", "/readyz"}) {
    auto r = get(path);
    EXPECT_EQ(r.status, 503u) << path;
    EXPECT_EQ(count_lines(r.body), 2u) << r.body;
    EXPECT_THAT(r.body, Not(HasSubstr("fresh")));
    EXPECT_THAT(r.body, HasSubstr("upstream never: no snapshot yet; last error: connect: connection refused\n"));
    EXPECT_THAT(r.body, HasSubstr("upstream stale: snapshot is 360s old (max_staleness 300s)"));
    EXPECT_THAT(r.body, HasSubstr("HTTP 503"));
    EXPECT_EQ(r.body.find('\r'), std::string::npos);
  }
}

TEST_F(Handler, ASnapshotExactlyMaxStalenessOldIsNotReady) {
  upstreams = {upstream("edge", 5min)};
  EXPECT_EQ(get("/-/ready").status, 503u);
  upstreams = {upstream("edge", 5min - 1ms)};
  EXPECT_EQ(get("/-/ready").status, 200u);
}

TEST_F(Handler, ReloadIsForbiddenWithoutLifecycle) {
  auto r = get("/-/reload", method::post);
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(reloads, 0);
}

TEST_F(Handler, ReloadReportsSuccessAndFailure) {
  ctx.lifecycle_enabled = true;
  auto r = get("/-/reload", method::post);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(reloads, 1);

  reload_error = "config.yml: upstreams[0].url: not a URL";
  r = get("/-/reload", method::post);
  EXPECT_EQ(r.status, 500u);
  EXPECT_THAT(r.body, HasSubstr("config.yml: upstreams[0].url: not a URL"));
  EXPECT_EQ(reloads, 2);
}

TEST_F(Handler, ReloadOnlyByPost) {
  ctx.lifecycle_enabled = true;
  for (auto verb : {method::get, method::head, method::other}) {
    auto r = get("/-/reload", verb);
    EXPECT_EQ(r.status, 405u);
    EXPECT_EQ(header(r, "Allow"), "POST");
  }
  EXPECT_EQ(reloads, 0);
}

TEST_F(Handler, OtherMethodsGet405WithAllow) {
  for (auto path : {"/metrics", "/-/ready", "/readyz", "/", "/-/healthy", "/healthz"}) {
    for (auto verb : {method::post, method::other}) {
      auto r = get(path, verb);
      EXPECT_EQ(r.status, 405u) << path;
      EXPECT_EQ(header(r, "Allow"), "GET, HEAD") << path;
    }
  }
}

TEST_F(Handler, UnknownPathsAre404) {
  for (auto path : {"/metric", "/metrics/", "/-/", "/-/healthy/x", "//metrics", "", "metrics",
                    "/index.html", "/METRICS"}) {
    for (auto verb : {method::get, method::post}) {
      auto r = get(path, verb);
      EXPECT_EQ(r.status, 404u) << '"' << path << '"';
    }
  }
}

TEST_F(Handler, StatusPageListsUpstreamsAndLinks) {
  upstreams = {upstream("prod", 65s), upstream("staging", std::nullopt)};
  upstreams[1].last_error = "HTTP 401";
  auto r = get("/");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_THAT(r.body, HasSubstr("<td>prod</td>"));
  EXPECT_THAT(r.body, HasSubstr("<td>staging</td>"));
  EXPECT_THAT(r.body, HasSubstr("65s ago"));
  EXPECT_THAT(r.body, HasSubstr("4 / 6"));
  EXPECT_THAT(r.body, HasSubstr("HTTP 401"));
  EXPECT_THAT(r.body, HasSubstr("2027-01-15 07:58:55 UTC"));  // last success of prod
  EXPECT_THAT(r.body, HasSubstr("never"));
  EXPECT_THAT(r.body, HasSubstr("href=\"/metrics\""));
  EXPECT_THAT(r.body, HasSubstr("href=\"/-/ready\""));
  EXPECT_THAT(r.body, HasSubstr(CMP_VERSION));
  EXPECT_EQ(get("/?refresh=1").status, 200u);
  EXPECT_EQ(get("/", method::head).status, 200u);
}

TEST_F(Handler, StatusPageEscapesNamesUrlsAndErrors) {
  upstreams = {upstream("<b>x</b>", std::nullopt)};
  upstreams[0].url = "https://h/?a=1&b=\"2\"";
  upstreams[0].last_error = "<script>alert('x')</script>";
  auto r = get("/");
  EXPECT_THAT(r.body, Not(HasSubstr("<script>")));
  EXPECT_THAT(r.body, Not(HasSubstr("<b>x")));
  EXPECT_THAT(r.body, HasSubstr("&lt;b&gt;x&lt;/b&gt;"));
  EXPECT_THAT(r.body, HasSubstr("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
  EXPECT_THAT(r.body, HasSubstr("https://h/?a=1&amp;b=&quot;2&quot;"));
}

class HandlerWithAuth : public Handler {
 protected:
  HandlerWithAuth() {
    ctx.lifecycle_enabled = true;
    ctx.authorize = [](std::string_view authorization) {
      return authorization == "Basic cHJvbTpzZWNyZXQ=";
    };
  }
  answer ask_as(std::string_view target, std::string_view authorization, method verb = method::get) {
    request_view r;
    r.verb = verb;
    r.target = target;
    r.authorization = authorization;
    return handle(r, ctx, t0);
  }
  response get_as(std::string_view target, std::string_view authorization, method verb = method::get) {
    auto a = ask_as(target, authorization, verb);
    EXPECT_TRUE(std::holds_alternative<response>(a)) << target;
    return std::holds_alternative<response>(a) ? std::get<response>(a) : response{};
  }
};

TEST_F(HandlerWithAuth, ProtectedEndpointsAsk401WithoutValidCredentials) {
  struct row {
    std::string_view path;
    method verb;
  };
  for (const auto& [path, verb] : std::vector<row>{{"/metrics", method::get},
                                                   {"/metrics", method::head},
                                                   {"/-/ready", method::get},
                                                   {"/readyz", method::get},
                                                   {"/", method::get},
                                                   {"/-/reload", method::post}}) {
    for (auto auth : {"", "Basic cHJvbTp3cm9uZw==", "Bearer x"}) {
      auto r = get_as(path, auth, verb);
      EXPECT_EQ(r.status, 401u) << path << " " << auth;
      EXPECT_EQ(header(r, "WWW-Authenticate"), "Basic realm=\"cerebras-metrics-proxy\"");
    }
  }
  EXPECT_EQ(reloads, 0);
}

TEST_F(HandlerWithAuth, ValidCredentialsOpenEverything) {
  const auto auth = "Basic cHJvbTpzZWNyZXQ=";
  EXPECT_TRUE(std::holds_alternative<metrics_request>(ask_as("/metrics", auth)));
  EXPECT_EQ(get_as("/-/ready", auth).status, 200u);
  EXPECT_EQ(get_as("/", auth).status, 200u);
  EXPECT_EQ(get_as("/-/reload", auth, method::post).status, 200u);
  EXPECT_EQ(reloads, 1);
}

TEST_F(HandlerWithAuth, UnknownPathsNeedCredentialsBeforeTheyAre404) {
  EXPECT_EQ(get_as("/admin", "").status, 401u);
  EXPECT_EQ(get_as("/admin", "Basic cHJvbTp3cm9uZw==").status, 401u);
  EXPECT_EQ(get_as("/admin", "Basic cHJvbTpzZWNyZXQ=").status, 404u);
}

TEST_F(HandlerWithAuth, HealthyStaysOpen) {
  for (auto path : {"/-/healthy", "/healthz"}) {
    auto r = get_as(path, "");
    EXPECT_EQ(r.status, 200u);
    EXPECT_FALSE(has_header(r, "WWW-Authenticate"));
  }
}

}  // namespace
}  // namespace cmp::server
