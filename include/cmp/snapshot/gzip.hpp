#pragma once
// gzip for pre-rendered bodies, in two parts.
//
// A scrape serves the upstream series (rendered and compressed once per poll)
// followed by the daemon's own metrics (a few KiB, fresh per scrape). Instead
// of recompressing everything per scrape, the body is compressed once into a
// `gzip_head` that ends on a byte-aligned, non-final deflate block; a scrape
// then only appends its small tail as a final (stored) block and writes the
// gzip trailer, combining the CRCs. The result is one ordinary gzip member.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cmp/snapshot/body.hpp"

namespace cmp::snapshot {

struct gzip_head {
  std::string bytes;       // gzip header + deflate blocks, ends on a sync flush
  std::uint32_t crc = 0;   // CRC-32 of the uncompressed body
  std::uint64_t size = 0;  // uncompressed length
};

// Compresses `body` into a head that gzip_finish can complete.
[[nodiscard]] gzip_head gzip_begin(std::string_view body, int level = 6);

// Compresses `body` into deflate blocks (no gzip header) that can follow
// any head in the same member: compressed on its own, it refers to nothing
// before it, so one piece serves every head (the self-metrics that change
// only on events, behind whichever snapshot is current).
[[nodiscard]] gzip_head gzip_piece(std::string_view body, int level = 6);

// Replaces `out` with the bytes that follow head.bytes: `tail` as stored
// (uncompressed) deflate blocks, the last one final, then the gzip trailer
// for head + tail. Stored, not deflated: compressing the few KiB of
// self-metrics cost ~25 us a scrape (zlib level 6; level 1 ~15 us), most of
// a gzip scrape's CPU, for ~4 KiB less on the wire; this is a memcpy and a
// CRC (bench/scrape_bench.cpp, bm_gzip_tail_finish). No state: reentrant.
void gzip_finish(const gzip_head& head, std::string_view tail, std::string& out);

// CRC-32 and length of the uncompressed data before a tail.
struct gzip_sum {
  std::uint32_t crc = 0;
  std::uint64_t size = 0;
};
// Of head followed by piece (a gzip_piece). Combining CRCs is not free (~0.2
// us, 4 % of a gzip scrape): callers cache it for a pair they serve often.
[[nodiscard]] gzip_sum gzip_sum_of(const gzip_head& head, const gzip_head& piece);
// gzip_finish for a tail that follows data summed up in `before`.
void gzip_finish(gzip_sum before, std::string_view tail, std::string& out);

// A gzip head whose bytes are a scatter list (snapshot::body): a merged
// view's refers to its upstreams' compressed pieces instead of copying them.
struct gzip_body {
  body bytes;              // gzip header + deflate blocks, ends on a sync flush
  std::uint32_t crc = 0;   // CRC-32 of the uncompressed body
  std::uint64_t size = 0;  // uncompressed length
  [[nodiscard]] gzip_sum sum() const noexcept { return {crc, size}; }
};
[[nodiscard]] gzip_sum gzip_sum_of(const gzip_body& head, const gzip_head& piece);
void gzip_finish(const gzip_body& head, std::string_view tail, std::string& out);

// Builds a gzip head from pieces compressed earlier (gzip_piece) and small
// raw bytes written as stored blocks, without compressing anything: a view
// merged from per-upstream renders costs CRC combines, not a deflate of
// every upstream's bytes again, and refers to the pieces rather than
// copying them. The result decodes to the concatenation; gzip_finish
// completes it like any head. Not thread-safe; the pieces are only read.
class gzip_builder {
 public:
  gzip_builder();
  void reserve(std::size_t bytes) { bytes_.reserve(bytes); }
  // `raw` as stored (uncompressed) non-final blocks: for a few header lines.
  void stored(std::string_view raw);
  // A copy of a piece's bytes.
  void piece(const gzip_head& p);
  // Deflate blocks that decode to `size` bytes with CRC-32 `crc` (a
  // gzip_piece, or bytes that end on a sync flush and depend on nothing
  // before them), not copied: they must stay valid while an owner passed to
  // keep() lives.
  void refer(std::string_view deflated, std::uint32_t crc, std::uint64_t size);
  // Stored blocks that another builder's stored(raw) wrote, not copied.
  void refer_stored(std::string_view blocks, std::string_view raw);
  void keep(std::shared_ptr<const void> owner) { bytes_.keep(std::move(owner)); }
  // Where the next bytes go in the finished body (its copied bytes and
  // referred ranges counted), e.g. to record where a piece lies.
  [[nodiscard]] std::size_t offset() const noexcept { return bytes_.size(); }
  [[nodiscard]] gzip_body finish() &&;

 private:
  body::builder bytes_;
  std::uint32_t crc_;
  std::uint64_t size_ = 0;
};

// One-shot gzip (the mock upstream and tests use it).
[[nodiscard]] std::string gzip_compress(std::string_view body, int level = 6);

// Inflates gzip data as Go's gzip.Reader does (every member of a multi-member
// body, in order; anything else after a member is corrupt input; no zlib),
// refusing output larger than `limit` bytes: a small compressed body can
// expand to gigabytes. nullopt on corrupt input or when the limit is hit;
// `too_large` tells which.
[[nodiscard]] std::optional<std::string> gzip_decompress(std::string_view in, std::size_t limit,
                                                         bool* too_large = nullptr);

}  // namespace cmp::snapshot
