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

TEST(Gzip, HeadPlusTailIsOneValidGzipMemberOfBothParts) {
  std::string tail_bytes;
  // Tails past 65535 bytes take several stored blocks.
  for (std::size_t body_size : {0u, 1u, 100u, 70'000u, 1'000'000u}) {
    for (std::size_t tail_size : {0u, 10u, 3000u, 65'535u, 65'536u, 140'000u}) {
      const auto body = some_text(body_size, 1);
      const auto tail = some_text(tail_size, 2);
      const auto head = gzip_begin(body);
      gzip_finish(head, tail, tail_bytes);
      const auto whole = head.bytes + tail_bytes;
      auto out = gzip_decompress(whole, 1u << 26);
      ASSERT_TRUE(out.has_value()) << body_size << "+" << tail_size;
      EXPECT_EQ(*out, body + tail);
    }
  }
}

// The cached self-metrics: one piece behind whichever head is current. The
// piece repeats text of the heads, which it must not refer back to.
TEST(Gzip, OnePieceFollowsAnyHead) {
  std::string tail_bytes;
  for (std::size_t piece_size : {0u, 1u, 4000u, 200'000u}) {
    const auto piece_text = some_text(piece_size, 1);
    const auto piece = gzip_piece(piece_text);
    EXPECT_EQ(piece.size, piece_size);
    for (std::size_t body_size : {0u, 5000u, 300'000u}) {
      const auto body = some_text(body_size, 1);
      const auto head = gzip_begin(body);
      const auto tail = some_text(900, 4);
      gzip_finish(gzip_sum_of(head, piece), tail, tail_bytes);
      auto out = gzip_decompress(head.bytes + piece.bytes + tail_bytes, 1u << 26);
      ASSERT_TRUE(out.has_value()) << body_size << "+" << piece_size;
      EXPECT_EQ(*out, body + piece_text + tail);
    }
  }
}

TEST(Gzip, TailBufferIsReusableAcrossHeads) {
  std::string t;
  const auto a = gzip_begin("first body\n");
  const auto b = gzip_begin("second body\n");
  gzip_finish(a, "tail a\n", t);
  EXPECT_EQ(gzip_decompress(a.bytes + t, 1000).value(), "first body\ntail a\n");
  gzip_finish(b, "tail b\n", t);
  EXPECT_EQ(gzip_decompress(b.bytes + t, 1000).value(), "second body\ntail b\n");
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

TEST(GzipBuilder, PiecesAndStoredBytesDecodeToTheirConcatenation) {
  const std::string a = some_text(5000, 1), b = some_text(70000, 2), c = some_text(300, 3);
  const std::string header(70000, 'h');  // more than one stored block
  gzip_builder builder;
  builder.stored("# TYPE x gauge\n");
  builder.piece(gzip_piece(a));
  builder.piece(gzip_piece(""));  // nothing, and no bytes
  builder.stored(header);
  builder.piece(gzip_piece(b));
  builder.stored("");
  builder.piece(gzip_piece(c));
  const gzip_body head = std::move(builder).finish();
  const std::string body = "# TYPE x gauge\n" + a + header + b + c;
  EXPECT_EQ(head.size, body.size());
  // Completed like any head, with a tail.
  std::string tail;
  gzip_finish(head, "# EOF\n", tail);
  EXPECT_EQ(gzip_decompress(head.bytes.str() + tail, 1 << 24).value(), body + "# EOF\n");
  // An empty builder is a valid empty head.
  gzip_finish(gzip_builder{}.finish(), "", tail);
  EXPECT_EQ(gzip_decompress(gzip_builder{}.finish().bytes.str() + tail, 1 << 20).value(), "");
}

TEST(GzipBuilder, ReferredPiecesAndStoredBlocksAreNotCopied) {
  const std::string a = some_text(5000, 1), b = some_text(300, 3);
  const gzip_head pa = gzip_piece(a), pb = gzip_piece(b);
  gzip_builder first;
  const std::size_t head_at = first.offset();
  first.stored("# TYPE x gauge\n");
  const std::size_t head_end = first.offset();
  first.piece(pa);
  const gzip_body own = std::move(first).finish();
  const std::string_view stored_head = own.bytes.slice(head_at, head_end - head_at);

  gzip_builder merged;
  merged.refer_stored(stored_head, "# TYPE x gauge\n");
  merged.refer(pa.bytes, pa.crc, pa.size);
  merged.refer(pb.bytes, pb.crc, pb.size);
  const gzip_body got = std::move(merged).finish();
  // The gzip header is the builder's own; everything else refers.
  ASSERT_EQ(got.bytes.segments().size(), 4u);
  EXPECT_EQ(got.bytes.segments()[1].data(), stored_head.data());
  EXPECT_EQ(got.bytes.segments()[2].data(), pa.bytes.data());
  std::string tail;
  gzip_finish(got, "# EOF\n", tail);
  EXPECT_EQ(gzip_decompress(got.bytes.str() + tail, 1 << 24).value(), "# TYPE x gauge\n" + a + b + "# EOF\n");
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
