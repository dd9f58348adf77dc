#include "cmp/app/probe.hpp"

#include <gtest/gtest.h>

#include <string>

#include "cmp/upstream/outcome.hpp"

namespace cmp::app {
namespace {

upstream::fetch_result answered(unsigned status) {
  upstream::fetch_result r;
  r.status = status;
  return r;
}

upstream::fetch_result failed(upstream::errc e) {
  upstream::fetch_result r;
  r.fault = e;
  return r;
}

config::upstream org() {
  config::upstream u;
  u.name = "prod";
  u.url = "https://cloud.cerebras.ai/api/v1/metrics/organizations/org_x";
  return u;
}

TEST(ProbeHint, SaysWhatToFixNamingFileAndKey) {
  auto with_file = org();
  with_file.api_key_file = "/run/secrets/key";
  auto with_429 = answered(429);
  with_429.retry_after = "17";
  const struct {
    const char* what;
    upstream::fetch_result r;
    config::upstream u;
    std::string hint;
  } cases[] = {
      {"401, key from the environment", answered(401), org(),
       "the API key was refused: check the key in the environment variable CEREBRAS_API_KEY "
       "(c.yml: upstreams[name=prod].api_key_env)"},
      {"401, key from a file", answered(401), with_file,
       "the API key was refused: check the key in /run/secrets/key (c.yml: upstreams[name=prod].api_key_file)"},
      {"403", answered(403), org(),
       "the Metrics API is not enabled for this organization (a private preview: ask Cerebras to enable "
       "it), or the key belongs to another organization (c.yml: upstreams[name=prod].url)"},
      {"404", answered(404), org(),
       "the organization id is wrong: c.yml: upstreams[name=prod].url must be "
       "https://cloud.cerebras.ai/api/v1/metrics/organizations/<org-id> with your organization's id"},
      {"429", with_429, org(),
       "another client spends this organization's budget (the limit is per organization, not per "
       "client); the daemon waits for Retry-After (17)"},
      {"redirect", answered(302), org(), "fix c.yml: upstreams[name=prod].url"},
      {"5xx", answered(503), org(), "the API failed; the daemon retries such answers within the budget"},
      {"other 4xx: nothing to add", answered(400), org(), ""},
      {"untrusted certificate", failed(upstream::errc::tls_untrusted), org(),
       "behind a TLS-intercepting proxy, give its CA certificate in c.yml: upstreams[name=prod].ca_file"},
      {"dns", failed(upstream::errc::dns), org(), "check the host name in c.yml: upstreams[name=prod].url"},
      {"connect", failed(upstream::errc::connect), org(),
       "check the network path: c.yml: upstreams[name=prod].proxy_url, or HTTPS_PROXY/NO_PROXY in the "
       "environment"},
      {"protocol: nothing to add", failed(upstream::errc::protocol), org(), ""},
  };
  for (const auto& c : cases) EXPECT_EQ(probe_hint(c.r, c.u, "c.yml"), c.hint) << c.what;
}

probe_finding sent() {
  probe_finding f;
  f.name = "prod";
  f.url = "https://cloud.cerebras.ai/api/v1/metrics/organizations/org_x";
  f.used = 2;
  f.limit = 6;
  f.window = std::chrono::seconds(60);
  f.ledger_file = "/var/lib/cmp/0123.ledger";
  f.latency = std::chrono::milliseconds(84);
  return f;
}

TEST(ProbeDescribe, Success) {
  auto f = sent();
  f.answer = "HTTP 200";
  f.families = 11;
  f.series = 1;
  f.endpoints = 1;
  f.ok = true;
  EXPECT_EQ(describe(f),
            "upstream prod: https://cloud.cerebras.ai/api/v1/metrics/organizations/org_x\n"
            "  budget: request 2 of 6 allowed in any 1m, recorded in /var/lib/cmp/0123.ledger\n"
            "  answer: HTTP 200 in 84 ms\n"
            "  found: 11 families, 1 series, 1 endpoint\n"
            "  result: OK\n");
}

TEST(ProbeDescribe, ApiErrorWithHint) {
  auto f = sent();
  f.answer = "HTTP 404";
  f.api_error = "Organization 'org_x' not found";
  f.hint = "the organization id is wrong";
  EXPECT_EQ(describe(f),
            "upstream prod: https://cloud.cerebras.ai/api/v1/metrics/organizations/org_x\n"
            "  budget: request 2 of 6 allowed in any 1m, recorded in /var/lib/cmp/0123.ledger\n"
            "  answer: HTTP 404 in 84 ms\n"
            "  API error: Organization 'org_x' not found\n"
            "  hint: the organization id is wrong\n"
            "  result: FAILED\n");
}

TEST(ProbeDescribe, RefusedSaysNothingWasSent) {
  probe_finding f;
  f.name = "prod";
  f.url = "https://x/";
  f.ledger_note = "budget ledger unreadable, taken as spent: bad header";
  f.refused = "the budget is spent (...). No request sent.";
  EXPECT_EQ(describe(f),
            "upstream prod: https://x/\n"
            "  note: budget ledger unreadable, taken as spent: bad header\n"
            "  refused: the budget is spent (...). No request sent.\n"
            "  result: FAILED\n");
}

}  // namespace
}  // namespace cmp::app
