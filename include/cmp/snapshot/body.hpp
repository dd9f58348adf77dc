#pragma once
// The bytes of a rendered body as a list of ranges (segments), for one
// scatter write. Each segment lies in a buffer that the body keeps alive:
// its own, or one it shares (a merged view refers to its snapshots' bytes
// instead of copying them: with N organizations the copies would be most
// of the daemon's memory).
//
// Immutable once built; safe to read from any number of threads. Copying a
// body copies the segment list and shares the buffers.

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cmp::snapshot {

class body {
 public:
  body() = default;

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::span<const std::string_view> segments() const noexcept { return segments_; }
  // All bytes in one string: a copy, for tests and tools.
  [[nodiscard]] std::string str() const;

  friend bool operator==(const body& a, std::string_view b) noexcept;
  friend bool operator==(const body& a, const body& b) { return a == std::string_view(b.str()); }

  // Builds a body from copied bytes and ranges of buffers kept alive by an
  // owner. Ranges that touch in memory become one segment, so a body that
  // refers to another buffer's bytes in order is one segment. Not
  // thread-safe.
  class builder {
   public:
    void copy(std::string_view bytes);
    // `bytes` must stay valid while some owner passed to keep() lives.
    void refer(std::string_view bytes);
    void keep(std::shared_ptr<const void> owner) { owners_.push_back(std::move(owner)); }
    [[nodiscard]] body finish() &&;

   private:
    // Copied bytes are recorded as offsets into `own_` (it may still grow
    // and move) and resolved to pointers in finish().
    struct range {
      const char* data;  // null: copied, `offset` into own_
      std::size_t offset, size;
    };
    std::string own_;
    std::vector<range> ranges_;
    std::vector<std::shared_ptr<const void>> owners_;
    std::size_t size_ = 0;
  };

 private:
  std::vector<std::string_view> segments_;
  std::vector<std::shared_ptr<const void>> owners_;
  std::size_t size_ = 0;
};

// gtest and logs print the bytes.
void PrintTo(const body& b, std::ostream* os);

}  // namespace cmp::snapshot
