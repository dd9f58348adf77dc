#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
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
  std::string report_kind;  // the reason outage_log tells once per outage
};

TEST(Classify, EveryFaultAndStatusHasItsCodeOutcomeAndReportKind) {
  const std::vector<row> table = {
      {faulted(errc::timeout), "timeout", kind::retryable, "the upstream request timed out"},
      {faulted(errc::dns), "dns", kind::retryable, "the upstream host name did not resolve"},
      {faulted(errc::connect), "connect", kind::retryable, "connecting to the upstream failed"},
      {faulted(errc::tls), "tls", kind::retryable, "the TLS handshake failed"},
      // Retrying cannot make a certificate trusted or a body smaller.
      {faulted(errc::tls_untrusted), "tls", kind::final_for_slot, "the upstream's certificate is not trusted"},
      {faulted(errc::protocol), "protocol", kind::retryable, "the upstream's response is not usable HTTP"},
      {faulted(errc::body_too_large), "protocol", kind::final_for_slot, "the upstream's response body is over the limit"},
      // Other credentials, not a retry, fix a 407.
      {faulted(errc::proxy_auth), "connect", kind::final_for_slot, "the proxy refused the credentials"},
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

// The API's own words end the message; each status keeps its hint.
TEST(Classify, MessagesCarryTheApisErrorTextAndAHint) {
  struct hint_row {
    unsigned status;
    std::string hint;
  };
  const std::vector<hint_row> table = {
      {401, "check api_key_env/api_key_file"},
      {403, "may not be enabled for this organization"},
      {404, "check the organization id at the end of url"},
      {429, "waiting as told"},
      {503, "upstream error: HTTP 503"},
      {400, "upstream answered HTTP 400"},
  };
  for (const auto& r : table) {
    SCOPED_TRACE(r.status);
    auto result = answered(r.status);
    const auto bare = classify(result, now).message;
    EXPECT_NE(bare.find(r.hint), std::string::npos) << bare;
    EXPECT_EQ(bare.find("the API says"), std::string::npos) << bare;
    result.api_message = R"({"message":"Organization 'org_x' not found"})";
    const auto told = classify(result, now).message;
    EXPECT_EQ(told, bare + "; the API says: " + result.api_message);
  }
}

TEST(QuoteApiMessage, ShortPrintableEscapedNeverTheKey) {
  struct quote_row {
    std::string body;
    std::string key;
    std::string quote;
  };
  const std::string long_text(300, 'a');
  const std::vector<quote_row> table = {
      {"", "k", ""},
      {"  \r\n", "k", ""},
      {"{\"message\":\"Wrong API Key\"}\n", "k", "{\"message\":\"Wrong API Key\"}"},
      {"line one\nline two\ttab\r", "k", "line one\\nline two\\ttab"},
      {std::string("nul\0bell\x07" "del\x7f", 13), "k", "nul\\x00bell\\x07del\\x7f"},
      {"caf\xc3\xa9 \xe2\x82\xac", "k", "caf\xc3\xa9 \xe2\x82\xac"},  // UTF-8 kept
      {"bad \xc3 \xff \xed\xa0\x80", "k", "bad \\xc3 \\xff \\xed\\xa0\\x80"},  // not UTF-8: escaped
      {"key sk-123 echoed: sk-123", "sk-123", "key <redacted> echoed: <redacted>"},
      {long_text, "k", std::string(197, 'a') + "..."},
      {std::string(200, 'a'), "k", std::string(200, 'a')},  // exactly the limit: not cut
      // Cut between escapes, never inside one.
      {std::string(100, '\x01'), "k", [] {
         std::string s;
         for (int i = 0; i < 49; ++i) s += "\\x01";
         return s + "...";
       }()},
      // Cut before a character, never inside it.
      {std::string(196, 'a') + "\xe2\x82\xac" + "tail", "k", std::string(196, 'a') + "..."},
      // The key straddling the cut is replaced before cutting.
      {std::string(195, 'a') + "sk-123", "sk-123", std::string(195, 'a') + "<r..."},
  };
  for (const auto& r : table) {
    SCOPED_TRACE(r.body.substr(0, 40));
    const auto q = quote_api_message(r.body, r.key);
    EXPECT_EQ(q, r.quote);
    EXPECT_LE(q.size(), api_message_limit);
  }
  // A body that is mostly key: no piece of the key survives the cut.
  std::string keys;
  for (int i = 0; i < 50; ++i) keys += "sk-0123456789abcdef ";
  EXPECT_EQ(quote_api_message(keys, "sk-0123456789abcdef").find("sk-"), std::string::npos);
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

TEST(ParseHttpDate, TheThreeFormsOfRfc9110) {
  struct date_row {
    std::string text;
    std::optional<std::time_t> unix_time;
  };
  const std::vector<date_row> table = {
      {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777},   // IMF-fixdate
      {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777},  // RFC 850
      {"Sun Nov  6 08:49:37 1994", 784111777},        // asctime
      {"Thu, 01 Jan 2026 00:00:00 GMT", 1767225600},
      {"Thu, 01 Jan 2026 00:00:00", std::nullopt},    // no zone
      {"Thu, 01 Jan 2026 00:00:00 GMT trailing", std::nullopt},
      {"2026-01-01T00:00:00Z", std::nullopt},
      {"", std::nullopt},
  };
  for (const auto& r : table) {
    SCOPED_TRACE(r.text);
    const auto t = parse_http_date(r.text);
    ASSERT_EQ(t.has_value(), r.unix_time.has_value());
    if (t) {
      EXPECT_EQ(wall_clock::to_time_t(*t), *r.unix_time);
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
  EXPECT_EQ(make_error_code(errc::proxy_auth).message(), "the proxy refused the credentials");
}

}  // namespace
}  // namespace cmp::upstream
