#pragma once
// An upstream's series text, held once where the kernel can send it from.
//
// Large texts live in a sealed memfd mapped read-only: the mapping's pages
// are the file's page-cache pages, so `sendfile` from the fd hands the very
// bytes that the renders refer to to the socket, without the copy from user
// memory that a write of the mapping costs (on the issue-14 machine that
// copy was a quarter of the daemon's CPU for a ~100 KB body). The bytes
// exist once: the heap string they were written into is freed.
//
// Small texts (below `file_threshold`), texts made while `max_files` others
// are alive, and any text when memfd is unavailable stay an ordinary heap
// string: the bytes are the same, only the way they can be written differs.
// The cap keeps descriptors for connections: the systemd unit allows 1024
// and accept() must never fail because of us.
//
// Immutable once made; safe to read from any number of threads. The fd and
// mapping live until the last copy of the text is destroyed.

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>

namespace cmp::snapshot {

// Where a range of memory is also a range of a file: bytes
// [data, data + size) are the file `fd` at `offset`.
struct file_extent {
  const char* data = nullptr;
  std::size_t size = 0;
  int fd = -1;
  std::uint64_t offset = 0;
};

class shared_text {
 public:
  // Texts smaller than this stay on the heap: a descriptor and a mapping
  // are not worth it when the copy is a few microseconds.
  static constexpr std::size_t file_threshold = 64 * 1024;

  struct policy {
    std::size_t min_size = file_threshold;
    // File-backed texts alive at once, process-wide; beyond: heap.
    std::size_t max_files = default_max_files();
  };
  // 32, or RLIMIT_NOFILE / 32 when that is less (the rest is for sockets).
  [[nodiscard]] static std::size_t default_max_files() noexcept;
  // File-backed texts alive now (all threads).
  [[nodiscard]] static std::size_t files_alive() noexcept;

  shared_text() = default;
  // On the heap (tests, tools, small texts).
  shared_text(std::string bytes);  // NOLINT(google-explicit-constructor): a text is assigned like a string
  shared_text(const char* bytes) : shared_text(std::string(bytes)) {}  // NOLINT

  // In a sealed memfd when `p` allows it, else on the heap. Never fails.
  [[nodiscard]] static shared_text make(std::string bytes, const policy& p);
  [[nodiscard]] static shared_text make(std::string bytes) { return make(std::move(bytes), policy{}); }

  [[nodiscard]] std::string_view view() const noexcept { return {data_, size_}; }
  operator std::string_view() const noexcept { return view(); }  // NOLINT
  [[nodiscard]] const char* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t find(std::string_view what, std::size_t from = 0) const noexcept {
    return view().find(what, from);
  }
  // The file the bytes are in, when they are in one (extent.fd >= 0).
  [[nodiscard]] file_extent file() const noexcept;
  [[nodiscard]] bool in_file() const noexcept { return file().fd >= 0; }

  friend bool operator==(const shared_text& a, std::string_view b) noexcept { return a.view() == b; }

 private:
  struct storage;  // a heap string, or a descriptor and its mapping
  std::shared_ptr<const storage> storage_;
  const char* data_ = "";
  std::size_t size_ = 0;
};

std::ostream& operator<<(std::ostream& os, const shared_text& t);

}  // namespace cmp::snapshot
