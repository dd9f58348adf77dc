#include "cmp/snapshot/gzip.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <tuple>
#include <utility>

namespace cmp::snapshot {

namespace {

constexpr int raw_deflate_bits = -15;  // raw deflate: we write gzip framing ourselves
constexpr int gzip_bits = 15 + 16;

// RFC 1952 header: magic, CM=deflate, no flags, no mtime, XFL=0, OS=unix.
constexpr std::array<char, 10> gzip_header = {'\x1f', '\x8b', 8, 0, 0, 0, 0, 0, 0, 3};

Bytef* in_ptr(std::string_view s) {
  return reinterpret_cast<Bytef*>(const_cast<char*>(s.data()));  // zlib never writes input
}

// Runs deflate over `in` with `flush`, appending everything produced to out.
void deflate_all(z_stream& z, std::string_view in, int flush, std::string& out) {
  z.next_in = in_ptr(in);
  z.avail_in = static_cast<uInt>(in.size());
  const std::size_t bound = deflateBound(&z, static_cast<uLong>(in.size())) + 16;
  std::size_t used = out.size();
  for (;;) {
    if (out.size() - used < bound / 2 + 64) out.resize(used + bound + 64);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    z.avail_out = static_cast<uInt>(out.size() - used);
    const int rc = deflate(&z, flush);
    used = out.size() - z.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("deflate failed");
    if (z.avail_in == 0 && z.avail_out != 0) break;  // this input is consumed and flushed
  }
  out.resize(used);
}

// Deflates the parts in order into `out`, the last with `last_flush`;
// returns their CRC-32 and length.
template <class Parts>
std::pair<std::uint32_t, std::uint64_t> deflate_parts(const Parts& parts, int level, int bits, int last_flush,
                                                      std::string& out) {
  z_stream z{};
  if (deflateInit2(&z, level, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  auto crc = crc32(0, nullptr, 0);
  std::uint64_t size = 0;
  try {
    std::size_t left = std::size(parts);
    if (left == 0) deflate_all(z, {}, last_flush, out);
    for (std::string_view p : parts) {
      deflate_all(z, p, --left == 0 ? last_flush : Z_NO_FLUSH, out);
      crc = crc32_z(crc, in_ptr(p), p.size());
      size += p.size();
    }
  } catch (...) {
    deflateEnd(&z);
    throw;
  }
  deflateEnd(&z);
  out.shrink_to_fit();
  return {static_cast<std::uint32_t>(crc), size};
}

void put_le32(char* out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

}  // namespace

gzip_head gzip_begin(const body& plain, int level) {
  gzip_head h;
  h.bytes.assign(gzip_header.begin(), gzip_header.end());
  std::tie(h.crc, h.size) = deflate_parts(plain.segments(), level, raw_deflate_bits, Z_SYNC_FLUSH, h.bytes);
  return h;
}

gzip_head gzip_begin(std::string_view plain, int level) {
  gzip_head h;
  h.bytes.assign(gzip_header.begin(), gzip_header.end());
  std::tie(h.crc, h.size) =
      deflate_parts(std::array{plain}, level, raw_deflate_bits, Z_SYNC_FLUSH, h.bytes);
  return h;
}

gzip_end gzip_finish(std::string_view plain, int level) {
  gzip_end e;
  std::tie(e.crc, e.size) = deflate_parts(std::array{plain}, level, raw_deflate_bits, Z_FINISH, e.bytes);
  return e;
}

std::array<char, 8> gzip_trailer(const gzip_head& head, const gzip_end& end) {
  std::array<char, 8> out{};
  put_le32(out.data(), static_cast<std::uint32_t>(crc32_combine(head.crc, end.crc, static_cast<z_off_t>(end.size))));
  put_le32(out.data() + 4, static_cast<std::uint32_t>((head.size + end.size) & 0xffffffffu));
  return out;
}

std::string gzip_compress(std::string_view body, int level) {
  z_stream z{};
  if (deflateInit2(&z, level, Z_DEFLATED, gzip_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  std::string out;
  try {
    deflate_all(z, body, Z_FINISH, out);
  } catch (...) {
    deflateEnd(&z);
    throw;
  }
  deflateEnd(&z);
  return out;
}

std::optional<std::string> gzip_decompress(std::string_view in, std::size_t limit,
                                           bool* too_large) {
  if (too_large) *too_large = false;
  z_stream z{};
  if (inflateInit2(&z, gzip_bits) != Z_OK) return std::nullopt;
  std::string out;
  z.next_in = in_ptr(in);
  z.avail_in = static_cast<uInt>(in.size());
  std::array<char, 64 * 1024> chunk{};
  bool complete = false;
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(chunk.data());
    z.avail_out = chunk.size();
    const int rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) break;
    const std::size_t n = chunk.size() - z.avail_out;
    if (out.size() + n > limit) {
      if (too_large) *too_large = true;
      break;
    }
    out.append(chunk.data(), n);
    if (rc == Z_STREAM_END) {
      // Go's gzip.Reader (multistream, its default, so Prometheus's scrape)
      // reads member after member: concatenated compressed chunks are one
      // body. What follows a member must be another one, or nothing.
      if (z.avail_in == 0) {
        complete = true;
        break;
      }
      if (inflateReset(&z) != Z_OK) break;
      continue;
    }
    if (n == 0 && z.avail_in == 0) break;  // truncated input
  }
  inflateEnd(&z);
  if (!complete) return std::nullopt;
  return out;
}

}  // namespace cmp::snapshot
