#include "cmp/upstream/api_error.hpp"

#include <gtest/gtest.h>

#include <string>

namespace cmp::upstream {
namespace {

struct error_case {
  const char* what;
  std::string body;
  std::string shown;
};

TEST(ApiErrorText, TakesTheApisOwnWords) {
  const error_case cases[] = {
      {"the Metrics API's shape",
       R"({"message":"Wrong API Key","type":"invalid_request_error","param":"api_key","code":"wrong_api_key"})",
       "Wrong API Key"},
      {"message after other members, nested values skipped",
       R"({"type":"x","param":null,"n":[1,{"a":"}"}],"ok":false, "message" : "Organization 'org_1' not found"})",
       "Organization 'org_1' not found"},
      {"OpenAI-style error object", R"({"error":{"type":"t","message":"quota exceeded"}})", "quota exceeded"},
      {"error as a string", R"({"error":"forbidden"})", "forbidden"},
      {"FastAPI detail", R"({"detail":"Not Found"})", "Not Found"},
      {"JSON escapes decoded", R"({"message":"a \"quoted\" \u00e9 \ud83d\ude00 /\/"})",
       "a \"quoted\" \xc3\xa9 \xf0\x9f\x98\x80 //"},
      {"a lone surrogate is U+FFFD", R"({"message":"x\ud800y"})", "x\xef\xbf\xbdy"},
      {"not JSON: the body, trimmed", "\n  Service Unavailable\r\n", "Service Unavailable"},
      {"JSON without a message: the body", R"({"code":7})", R"({"code":7})"},
      {"broken JSON: the body", R"({"message":"unterminated)", R"({"message":"unterminated)"},
      {"control characters escaped", "line1\nline2\t\x1b[31mred\x7f", "line1\\nline2\\t\\x1b[31mred\\x7f"},
      {"escaped controls inside JSON too", R"({"message":"a\nb\u0000c"})", "a\\nb\\x00c"},
      {"empty body", "", ""},
  };
  for (const auto& c : cases) EXPECT_EQ(api_error_text(c.body), c.shown) << c.what;
}

TEST(ApiErrorText, CutTo200BytesOnACharacterBoundary) {
  const std::string long_ascii(500, 'a');
  const auto shown = api_error_text(long_ascii);
  EXPECT_EQ(shown.size(), api_error_text_limit);
  EXPECT_EQ(shown, std::string(197, 'a') + "...");

  // 2-byte characters: the cut never splits one.
  std::string accents;
  for (int i = 0; i < 150; ++i) accents += "\xc3\xa9";
  const auto cut = api_error_text(accents);
  EXPECT_LE(cut.size(), api_error_text_limit);
  EXPECT_EQ(cut, accents.substr(0, 196) + "...");

  // Escaping counts: 100 newlines become 200 bytes of `\n`, then cut.
  const auto escaped = api_error_text("x" + std::string(150, '\x01'));
  EXPECT_LE(escaped.size(), api_error_text_limit);
  EXPECT_TRUE(escaped.ends_with("..."));
  EXPECT_EQ(escaped.find('\x01'), std::string::npos);

  EXPECT_EQ(api_error_text(std::string(200, 'b')), std::string(200, 'b'));
}

TEST(ApiErrorText, NeverShowsTheKey) {
  const config::secret key("csk-SECRET-123456");
  EXPECT_EQ(api_error_text(R"({"message":"key csk-SECRET-123456 is revoked; csk-SECRET-123456"})", key),
            "key <redacted> is revoked; <redacted>");
  EXPECT_EQ(api_error_text("Bearer csk-SECRET-123456\n", key), "Bearer <redacted>");
}

}  // namespace
}  // namespace cmp::upstream
