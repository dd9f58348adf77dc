#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "cmp/upstream/fetch_result.hpp"
#include "cmp/upstream/outcome.hpp"

namespace cmp::upstream {
namespace {

using namespace std::chrono_literals;
using wall_clock = std::chrono::system_clock;
using kind = poll_outcome::kind;

// 2026-01-01T00:00:00Z
const wall_clock::time_point now = wall_clock::from_time_t(1767225600);

fetch_result faulted(errc e) {
  fetch_result r;
  r.fault = e;
  r.error = "why";
  return r;
}

fetch_result answered(unsigned status) {
  fetch_result r;
  r.status = status;
  if (status != 200) r.error = std::string("HTTP ").append(std::to_string(status));
  return r;
}

struct row {
  fetch_result result;
  std::string code;         // the requests_total label
  kind what;
  std::string report_kind;  // state name for "log once per change"
};

TEST(Classify, EveryFaultAndStatusHasItsCodeOutcomeAndReportKind) {
  const std::vector<row> table = {
      {faulted(errc::timeout), "timeout", kind::retryable, "timeout"},
      {faulted(errc::dns), "dns", kind::retryable, "dns"},
      {faulted(errc::connect), "connect", kind::retryable, "connect"},
      {faulted(errc::tls), "tls", kind::retryable, "tls"},
      // Retrying cannot make a certificate trusted or a body smaller.
      {faulted(errc::tls_untrusted), "tls", kind::final_for_slot, "tls"},
      {faulted(errc::protocol), "protocol", kind::retryable, "protocol"},
      {faulted(errc::body_too_large), "protocol", kind::final_for_slot, "protocol"},
      {answered(200), "200", kind::success, ""},
      {answered(429), "429", kind::rate_limited, "429"},
      {answered(401), "401", kind::final_for_slot, "401"},
      {answered(403), "403", kind::final_for_slot, "403"},
      {answered(500), "500", kind::retryable, "500"},
      {answered(503), "503", kind::retryable, "503"},
      {answered(408), "408", kind::retryable, "408"},
      {answered(404), "404", kind::final_for_slot, "404"},
      {answered(301), "301", kind::final_for_slot, "301"},
  };
  for (const auto& r : table) {
    SCOPED_TRACE(r.code);
    EXPECT_EQ(request_code(r.result), r.code);
    const auto c = classify(r.result, now);
    EXPECT_EQ(c.outcome.what, r.what);
    EXPECT_EQ(c.report_kind, r.report_kind);
    EXPECT_TRUE(c.outcome.retry_allowed);
    if (r.what != kind::success) {
      EXPECT_FALSE(c.message.empty());
    }
  }
}

TEST(Classify, FaultMessagesAreTheFetchsReason) {
  auto r = faulted(errc::dns);
  r.error = "resolving cloud.cerebras.ai failed: Host not found";
  EXPECT_EQ(classify(r, now).message, r.error);
}

TEST(Classify, A401SaysWhatHappensNextForEachKeySource) {
  EXPECT_NE(classify(answered(401), now).message.find("retrying at the next scheduled poll"),
            std::string::npos);
  const auto from_file = classify(answered(401), now, true);
  EXPECT_EQ(from_file.outcome.what, kind::final_for_slot);  // the poller decides on a retry
  EXPECT_NE(from_file.message.find("api_key_file is read again"), std::string::npos);
}

TEST(Classify, XShouldRetryFalseForbidsRetries) {
  auto r = answered(503);
  r.should_retry = "false";
  EXPECT_FALSE(classify(r, now).outcome.retry_allowed);
  r.should_retry = "true";
  EXPECT_TRUE(classify(r, now).outcome.retry_allowed);
}

fetch_result rate_limited(std::string retry_after, std::string reset) {
  auto r = answered(429);
  r.retry_after = std::move(retry_after);
  r.ratelimit_reset = std::move(reset);
  return r;
}

TEST(Classify, A429WaitsForRetryAfterThenForTheRateLimitReset) {
  auto c = classify(rate_limited("7", "60"), now);
  ASSERT_TRUE(c.outcome.retry_after);
  EXPECT_EQ(*c.outcome.retry_after, now + 7s);
  EXPECT_NE(c.message.find("Retry-After 7"), std::string::npos);

  c = classify(rate_limited("", "6m0s"), now);
  ASSERT_TRUE(c.outcome.retry_after);
  EXPECT_EQ(*c.outcome.retry_after, now + 6min);

  EXPECT_FALSE(classify(rate_limited("", ""), now).outcome.retry_after);
}

struct delay_row {
  std::string value;
  std::optional<wall_clock::duration> after;  // from `now`; nullopt: not understood
};

TEST(ParseRetryAfter, SecondsOrAnHttpDate) {
  const std::vector<delay_row> table = {
      {"0", 0s},
      {"17", 17s},
      {"1.5", 1500ms},
      {"Thu, 01 Jan 2026 00:01:00 GMT", 60s},
      {"", std::nullopt},
      {"-1", std::nullopt},
      {"soon", std::nullopt},
      {"17s", std::nullopt},  // a duration is not Retry-After syntax
      {"1e300", std::nullopt},  // would overflow the millisecond count
      {"nan", std::nullopt},
  };
  for (const auto& r : table) {
    SCOPED_TRACE(r.value);
    const auto t = parse_retry_after(r.value, now);
    ASSERT_EQ(t.has_value(), r.after.has_value());
    if (t) {
      EXPECT_EQ(*t - now, *r.after);
    }
  }
}

TEST(ParseRatelimitReset, SecondsOrAGoDuration) {
  const std::vector<delay_row> table = {
      {"17", 17s},
      {"1.5", 1500ms},
      {"6m0s", 6min},
      {"1s", 1s},
      {"", std::nullopt},
      {"Thu, 01 Jan 2026 00:01:00 GMT", std::nullopt},
  };
  for (const auto& r : table) {
    SCOPED_TRACE(r.value);
    const auto t = parse_ratelimit_reset(r.value, now);
    ASSERT_EQ(t.has_value(), r.after.has_value());
    if (t) {
      EXPECT_EQ(*t - now, *r.after);
    }
  }
}

TEST(FetchCategory, FaultsAreErrorCodesWithReadableMessages) {
  const boost::system::error_code ec = errc::tls_untrusted;
  EXPECT_EQ(&ec.category(), &fetch_category());
  EXPECT_TRUE(ec.failed());
  EXPECT_EQ(ec.message(), "the upstream's certificate is not trusted");
  EXPECT_EQ(std::string(fetch_category().name()), "cmp.upstream.fetch");
}

}  // namespace
}  // namespace cmp::upstream
