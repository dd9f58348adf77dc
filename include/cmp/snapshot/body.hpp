#pragma once
// The bytes of a rendered body as a list of ranges (segments), for one
// scatter write. Each segment lies in a buffer that the body keeps alive:
// its own, or one it shares (a merged view refers to its upstreams' bodies
// and an upstream's text body to its snapshot's text instead of copying
// them: with N organizations the copies were most of the daemon's memory).
//
// A segment may also lie in a file (a snapshot's text in a sealed memfd,
// shared_text.hpp): then file(i) says where, so that a plain-TCP write can
// `sendfile` it instead of copying it from memory. That is worked out once,
// when the body is built, never per scrape; a segment never spans two files
// (or a file and other memory), however the ranges lie in memory.
//
// Immutable once built; safe to read from any number of threads. Copying a
// body copies the segment list and shares the buffers.

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cmp/snapshot/shared_text.hpp"

namespace cmp::snapshot {

// Where a segment's bytes are in a file; fd -1: only in memory.
struct segment_file {
  int fd = -1;
  std::uint64_t offset = 0;
};

class body {
 public:
  body() = default;
  // One segment over `bytes`, which the body owns.
  explicit body(std::string bytes);

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::span<const std::string_view> segments() const noexcept { return segments_; }
  // Where segment `i` lies in a file, if it does (fd -1 otherwise). The fd
  // stays open while this body (or a copy) lives.
  [[nodiscard]] segment_file file(std::size_t i) const noexcept {
    return i < files_.size() ? files_[i] : segment_file{};
  }
  // True when some segment lies in a file.
  [[nodiscard]] bool has_files() const noexcept { return !files_.empty(); }
  // The bytes when they are one segment (an upstream's own view, a body
  // built from one string); empty otherwise.
  [[nodiscard]] std::string_view contiguous() const noexcept {
    return segments_.size() == 1 ? segments_.front() : std::string_view{};
  }
  // All bytes in one string: a copy, for tests and tools.
  [[nodiscard]] std::string str() const;
  // The `size` bytes at `offset`, when they lie in one segment (as every
  // range the builder was given in one call does); empty otherwise.
  [[nodiscard]] std::string_view slice(std::size_t offset, std::size_t size) const noexcept;

  friend bool operator==(const body& a, std::string_view b) noexcept;
  friend bool operator==(const body& a, const body& b) noexcept { return a == std::string_view(b.str()); }

  // Builds a body from copied bytes and ranges of buffers kept alive by an
  // owner. Adjacent ranges that touch in memory become one segment, so a
  // body that refers to another's bytes in order is that body again. Not
  // thread-safe.
  class builder {
   public:
    builder();
    // Reserve room for `bytes` copied bytes (no reallocation below that).
    void reserve(std::size_t bytes);
    void copy(std::string_view bytes);
    // `bytes` must stay valid while some owner passed to keep() lives.
    void refer(std::string_view bytes);
    void keep(std::shared_ptr<const void> owner);
    // Keeps what `other` keeps alive: to refer to its bytes. Also learns
    // which of them lie in files (as with mapped()).
    void keep(const body& other);
    // The bytes of `e` are also the file e.fd at e.offset: segments referred
    // within it get file positions. The file must be kept alive by an owner.
    void mapped(const file_extent& e);
    // The files that `other`'s bytes lie in (without keeping them alive).
    void mapped(const body& other);
    // The bytes appended so far, copied and referred to: the offset the
    // next bytes will have in the body (for slice()).
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] body finish() &&;

   private:
    // Copied bytes are recorded as offsets into `own_` (it may still grow
    // and move) and resolved to pointers in finish().
    struct range {
      const char* data;  // null: copied, `offset` into own_
      std::size_t offset, size;
    };
    std::shared_ptr<std::string> own_;
    std::vector<range> ranges_;
    std::vector<std::shared_ptr<const void>> owners_;
    std::vector<file_extent> extents_;
    std::size_t size_ = 0;
  };

 private:
  std::vector<std::string_view> segments_;
  std::vector<segment_file> files_;  // by segment; empty when none lies in a file
  std::vector<file_extent> extents_;  // the files its bytes may lie in, sorted by address
  std::vector<std::shared_ptr<const void>> owners_;
  std::size_t size_ = 0;
};

// gtest and logs print the bytes.
void PrintTo(const body& b, std::ostream* os);

}  // namespace cmp::snapshot
