#include "cmp/snapshot/gzip.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace cmp::snapshot {

namespace {

constexpr int raw_deflate_bits = -15;  // raw deflate: we write gzip framing ourselves
constexpr int gzip_bits = 15 + 16;

// RFC 1952 header: magic, CM=deflate, no flags, no mtime, XFL=0, OS=unix.
constexpr std::array<char, 10> gzip_header = {'\x1f', '\x8b', 8, 0, 0, 0, 0, 0, 0, 3};

void append_le32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

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
    if (z.avail_in == 0 && z.avail_out != 0) break;  // sync flush complete
  }
  out.resize(used);
}

gzip_head deflate_sync(std::string_view body, int level, std::string prefix) {
  z_stream z{};
  if (deflateInit2(&z, level, Z_DEFLATED, raw_deflate_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  gzip_head head;
  head.bytes = std::move(prefix);
  try {
    deflate_all(z, body, Z_SYNC_FLUSH, head.bytes);
  } catch (...) {
    deflateEnd(&z);
    throw;
  }
  deflateEnd(&z);
  head.bytes.shrink_to_fit();
  head.crc = static_cast<std::uint32_t>(
      crc32_z(crc32(0, nullptr, 0), in_ptr(body), body.size()));
  head.size = body.size();
  return head;
}

}  // namespace

gzip_head gzip_begin(std::string_view body, int level) {
  return deflate_sync(body, level, std::string(gzip_header.begin(), gzip_header.end()));
}

gzip_head gzip_piece(std::string_view body, int level) { return deflate_sync(body, level, {}); }

void gzip_finish(const gzip_head& head, std::string_view tail, std::string& out) {
  gzip_finish(gzip_sum{head.crc, head.size}, tail, out);
}

gzip_sum gzip_sum_of(const gzip_head& head, const gzip_head& piece) {
  const auto crc = crc32_combine(head.crc, piece.crc, static_cast<z_off_t>(piece.size));
  return {static_cast<std::uint32_t>(crc), head.size + piece.size};
}

void gzip_finish(gzip_sum before, std::string_view tail, std::string& out) {
  // RFC 1951 3.2.4: what precedes ends byte-aligned (sync flush), so each
  // stored block is one header byte (BFINAL, BTYPE=00), LEN and NLEN, then
  // the bytes.
  constexpr std::size_t max_block = 65535;
  out.clear();
  std::size_t done = 0;
  do {
    const std::size_t n = std::min(max_block, tail.size() - done);
    const bool last = done + n == tail.size();
    out.push_back(last ? '\x01' : '\x00');
    for (unsigned v : {static_cast<unsigned>(n), static_cast<unsigned>(~n & 0xffffu)}) {
      out.push_back(static_cast<char>(v & 0xff));
      out.push_back(static_cast<char>((v >> 8) & 0xff));
    }
    out.append(tail.substr(done, n));
    done += n;
  } while (done < tail.size());
  // A CRC continues over more data; no combine needed for the tail.
  const auto crc = crc32_z(before.crc, in_ptr(tail), tail.size());
  append_le32(out, static_cast<std::uint32_t>(crc));
  append_le32(out, static_cast<std::uint32_t>((before.size + tail.size()) & 0xffffffffu));
}

gzip_sum gzip_sum_of(const gzip_body& head, const gzip_head& piece) {
  const auto crc = crc32_combine(head.crc, piece.crc, static_cast<z_off_t>(piece.size));
  return {static_cast<std::uint32_t>(crc), head.size + piece.size};
}

void gzip_finish(const gzip_body& head, std::string_view tail, std::string& out) {
  gzip_finish(head.sum(), tail, out);
}

gzip_builder::gzip_builder() : crc_(static_cast<std::uint32_t>(crc32(0, nullptr, 0))) {
  bytes_.copy(std::string_view(gzip_header.data(), gzip_header.size()));
}

void gzip_builder::stored(std::string_view raw) {
  // As in gzip_finish: what precedes ends byte-aligned, so a stored block
  // is one header byte (BFINAL=0, BTYPE=00), LEN, NLEN, then the bytes.
  constexpr std::size_t max_block = 65535;
  for (std::size_t done = 0; done < raw.size();) {
    const std::size_t n = std::min(max_block, raw.size() - done);
    const char block[5] = {'\x00', static_cast<char>(n & 0xff), static_cast<char>((n >> 8) & 0xff),
                           static_cast<char>(~n & 0xff), static_cast<char>((~n >> 8) & 0xff)};
    bytes_.copy(std::string_view(block, sizeof block));
    bytes_.copy(raw.substr(done, n));
    done += n;
  }
  crc_ = static_cast<std::uint32_t>(crc32_z(crc_, in_ptr(raw), raw.size()));
  size_ += raw.size();
}

void gzip_builder::piece(const gzip_head& p) {
  if (p.size == 0) return;
  bytes_.copy(p.bytes);
  crc_ = static_cast<std::uint32_t>(crc32_combine(crc_, p.crc, static_cast<z_off_t>(p.size)));
  size_ += p.size;
}

void gzip_builder::refer(std::string_view deflated, std::uint32_t crc, std::uint64_t size) {
  if (size == 0) return;
  bytes_.refer(deflated);
  crc_ = static_cast<std::uint32_t>(crc32_combine(crc_, crc, static_cast<z_off_t>(size)));
  size_ += size;
}

void gzip_builder::refer_stored(std::string_view blocks, std::string_view raw) {
  bytes_.refer(blocks);
  crc_ = static_cast<std::uint32_t>(crc32_z(crc_, in_ptr(raw), raw.size()));
  size_ += raw.size();
}

gzip_body gzip_builder::finish() && { return {std::move(bytes_).finish(), crc_, size_}; }

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
