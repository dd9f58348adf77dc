// decode_body(): the gzip decode that fetch() used to do on the I/O thread,
// now run by the poller's worker. Each case gives the outcome fetch() gave
// before: the same status, fault, `code` label and reason.

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "cmp/snapshot/gzip.hpp"
#include "cmp/upstream/http_fetch.hpp"
#include "cmp/upstream/outcome.hpp"

namespace cmp::upstream {
namespace {

using kind = poll_outcome::kind;
const auto now = std::chrono::system_clock::from_time_t(1767225600);

const std::string text = "# TYPE a gauge\na 1\n";

fetch_result received(unsigned status, std::string body, bool gzip) {
  fetch_result r;
  r.status = status;
  r.body = std::move(body);
  r.gzip_encoded = gzip;
  r.content_type = "text/plain; version=0.0.4";
  if (status != 200) r.error = std::string("HTTP ").append(std::to_string(status));
  return r;
}

std::string gzipped(const std::string& s) { return snapshot::gzip_compress(s); }

TEST(DecodeBody, GzipBodyIsDecodedAndTheExchangeKept) {
  auto r = received(200, gzipped(text), true);
  decode_body(r, 1u << 20);
  EXPECT_FALSE(r.gzip_encoded);
  EXPECT_FALSE(r.fault);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, text);
  EXPECT_EQ(request_code(r), "200");
  EXPECT_EQ(classify(r, now, false).outcome.what, kind::success);
}

TEST(DecodeBody, AMultiMemberGzipBodyIsReadWhole) {
  auto r = received(200, gzipped(text) + gzipped("b 2\n"), true);
  decode_body(r, 1u << 20);
  EXPECT_FALSE(r.fault);
  EXPECT_EQ(r.body, text + "b 2\n");
}

TEST(DecodeBody, AnErrorStatusKeepsItsCodeAndReason) {
  auto r = received(503, gzipped("overloaded"), true);
  decode_body(r, 1u << 20);
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(r.body, "overloaded");
  EXPECT_EQ(r.error, "HTTP 503");
  EXPECT_EQ(request_code(r), "503");
}

// Over the limit once decompressed (the compressed body is far below it):
// refused as body_too_large, counted as code="protocol", not retried in the slot.
TEST(DecodeBody, DecompressedBodyOverTheLimitIsBodyTooLarge) {
  const std::string big(64 * 1024, 'a');
  auto r = received(200, gzipped(big), true);
  ASSERT_LT(r.body.size(), 16u * 1024);
  decode_body(r, 16 * 1024);
  EXPECT_EQ(r.fault, make_error_code(errc::body_too_large));
  EXPECT_EQ(r.status, 0u);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(r.error, "decompressed body exceeds the limit; refused");
  EXPECT_EQ(request_code(r), "protocol");
  EXPECT_EQ(classify(r, now, false).outcome.what, kind::final_for_slot);
}

TEST(DecodeBody, CorruptOrTruncatedGzipIsAProtocolFault) {
  auto truncated = gzipped(text);
  truncated.resize(truncated.size() / 2);
  for (auto body : {std::string("not gzip at all"), truncated}) {
    auto r = received(200, body, true);
    decode_body(r, 1u << 20);
    EXPECT_EQ(r.fault, make_error_code(errc::protocol)) << body;
    EXPECT_EQ(r.status, 0u);
    EXPECT_EQ(r.error, "gzip body is corrupt or truncated");
    EXPECT_EQ(request_code(r), "protocol");
    EXPECT_EQ(classify(r, now, false).outcome.what, kind::retryable);
  }
}

// A corrupt gzip body makes even an error status a failed exchange, as before.
TEST(DecodeBody, CorruptGzipOnAnErrorStatusIsStillAFault) {
  auto r = received(500, "garbage", true);
  decode_body(r, 1u << 20);
  EXPECT_EQ(r.status, 0u);
  EXPECT_EQ(request_code(r), "protocol");
  EXPECT_EQ(r.error, "gzip body is corrupt or truncated");
}

TEST(DecodeBody, APlainBodyIsLeftAlone) {
  auto r = received(200, "not gzip at all", false);
  decode_body(r, 4);  // the limit applies to decompressing only
  EXPECT_FALSE(r.fault);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "not gzip at all");
}

}  // namespace
}  // namespace cmp::upstream
