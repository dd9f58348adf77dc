#include "cmp/snapshot/gzip.hpp"

#include <gtest/gtest.h>

#include <random>

namespace cmp::snapshot {
namespace {

std::string some_text(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < n) s += "requests_count_total{endpoint=\"e" + std::to_string(rng() % 50) + "\"} " +
                           std::to_string(rng() % 100000) + ".0\n";
  s.resize(n);
  return s;
}

std::string whole(const gzip_head& head, const gzip_end& end) {
  const auto trailer = gzip_trailer(head, end);
  return head.bytes + end.bytes + std::string(trailer.data(), trailer.size());
}

body segmented(const std::string& text, std::size_t pieces) {
  body::builder b;
  b.keep(std::make_shared<const std::string>(text));
  const std::size_t step = text.size() / pieces + 1;
  for (std::size_t at = 0; at < text.size(); at += step) b.copy(std::string_view(text).substr(at, step));
  return std::move(b).finish();
}

TEST(Gzip, HeadEndAndTrailerAreOneValidGzipMemberOfBothParts) {
  for (std::size_t body_size : {0u, 1u, 100u, 70'000u, 1'000'000u}) {
    for (std::size_t end_size : {0u, 10u, 3000u, 140'000u}) {
      const auto text = some_text(body_size, 1);
      const auto tail = some_text(end_size, 2);
      const auto end = gzip_finish(tail);
      EXPECT_EQ(end.size, end_size);
      for (const auto& head : {gzip_begin(text), gzip_begin(segmented(text, 7))}) {
        EXPECT_EQ(head.size, body_size);
        auto out = gzip_decompress(whole(head, end), 1u << 26);
        ASSERT_TRUE(out.has_value()) << body_size << "+" << end_size;
        EXPECT_EQ(*out, text + tail);
      }
    }
  }
}

// The prepared self-metrics: one end piece behind whichever head is
// current. It repeats text of the heads, which it must not refer back to.
TEST(Gzip, OneEndFollowsAnyHead) {
  const auto tail = some_text(4000, 1);
  const auto end = gzip_finish(tail);
  for (std::size_t body_size : {0u, 5000u, 300'000u}) {
    const auto text = some_text(body_size, 1);
    EXPECT_EQ(gzip_decompress(whole(gzip_begin(text), end), 1u << 26).value(), text + tail);
  }
}

TEST(Gzip, DecompressRefusesOutputBeyondTheLimit) {
  const std::string big(1 << 20, 'a');
  const auto packed = gzip_compress(big);
  EXPECT_LT(packed.size(), 5000u);  // a bomb: tiny in, large out
  bool too_large = false;
  EXPECT_FALSE(gzip_decompress(packed, (1 << 20) - 1, &too_large).has_value());
  EXPECT_TRUE(too_large);
  EXPECT_EQ(gzip_decompress(packed, 1 << 20, &too_large).value(), big);
  EXPECT_FALSE(too_large);
}

// Concatenated gzip members (what joining compressed chunks gives) are one
// body to Go's gzip.Reader, so to Prometheus: every member is read.
TEST(Gzip, DecompressReadsEveryMember) {
  const std::string a = some_text(3000, 1), b = some_text(2000, 2);
  const std::string two = gzip_compress(a) + gzip_compress(b);
  EXPECT_EQ(gzip_decompress(two, 1 << 20).value(), a + b);
  EXPECT_EQ(gzip_decompress(two + gzip_compress(""), 1 << 20).value(), a + b);
  bool too_large = false;
  EXPECT_FALSE(gzip_decompress(two, a.size() + b.size() - 1, &too_large));  // the limit spans members
  EXPECT_TRUE(too_large);
  // After a member comes another one or nothing: trailing bytes (zero
  // padding included) and a truncated second member are corrupt, as in Go.
  EXPECT_FALSE(gzip_decompress(gzip_compress(a) + std::string(8, '\0'), 1 << 20));
  EXPECT_FALSE(gzip_decompress(two.substr(0, two.size() - 3), 1 << 20));
}

TEST(Gzip, DecompressRejectsZlibAsGoDoes) {
  const std::string zlib("\x78\x9c\x4b\x04\x00\x00\x62\x00\x62", 9);  // "a"
  EXPECT_FALSE(gzip_decompress(zlib, 1 << 20));
}

TEST(Gzip, DecompressRejectsCorruptAndTruncatedInput) {
  auto packed = gzip_compress(some_text(5000, 3));
  bool too_large = true;
  EXPECT_FALSE(gzip_decompress(packed.substr(0, packed.size() / 2), 1 << 20, &too_large));
  EXPECT_FALSE(too_large);
  packed[packed.size() - 5] ^= 0x55;  // CRC mismatch
  EXPECT_FALSE(gzip_decompress(packed, 1 << 20));
  EXPECT_FALSE(gzip_decompress("not gzip at all", 1 << 20));
}

}  // namespace
}  // namespace cmp::snapshot
