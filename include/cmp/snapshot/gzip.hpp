#pragma once
// gzip for prepared bodies, in two parts that make one gzip member.
//
// A /metrics answer is a view's bytes (compressed whole, once per rebuild:
// a `gzip_head`) followed by the daemon's own metrics or OpenMetrics'
// `# EOF` (compressed once per second: a `gzip_end`). The head ends on a
// byte-aligned, non-final deflate block (a sync flush), the end piece is a
// raw deflate stream whose last block is final, and gzip_trailer() joins
// their CRCs: head + end + trailer is one ordinary gzip member, which every
// client decodes as one stream. Pure functions; reentrant.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cmp/snapshot/body.hpp"

namespace cmp::snapshot {

struct gzip_head {
  std::string bytes;       // gzip header + deflate blocks, ends on a sync flush
  std::uint32_t crc = 0;   // CRC-32 of the uncompressed bytes
  std::uint64_t size = 0;  // their length
};

struct gzip_end {
  std::string bytes;       // raw deflate blocks, the last one final
  std::uint32_t crc = 0;
  std::uint64_t size = 0;
};

// Compresses `plain` (every segment, in order) into a head.
[[nodiscard]] gzip_head gzip_begin(const body& plain, int level = 6);
[[nodiscard]] gzip_head gzip_begin(std::string_view plain, int level = 6);
// Compresses `plain` into an end piece that can follow any head.
[[nodiscard]] gzip_end gzip_finish(std::string_view plain, int level = 6);
// The 8 bytes after head + end: CRC-32 and length of both, as RFC 1952 wants.
[[nodiscard]] std::array<char, 8> gzip_trailer(const gzip_head& head, const gzip_end& end);

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
