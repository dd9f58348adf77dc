#pragma once
// How a plain-TCP response is written, decided without I/O: which bytes go
// by `sendfile` from a file (a snapshot's sealed memfd, snapshot/shared_text.hpp)
// and which by one gathered write from memory, and whether more follows
// (MSG_MORE: the head and a few bytes must not leave as packets of their
// own when a file range follows). The server's I/O loop asks next(), does
// the one syscall, and reports how many bytes went out with advance().
//
// Why: writev of a ~100 KB body spent a quarter of the daemon's CPU in the
// kernel copying it into socket buffers (bench/README.md, "HTTP on the
// issue-14 machine"); sendfile hands the page-cache pages over instead.
// Small file ranges (an OpenMetrics family's samples, a merged view's
// per-upstream pieces) are cheaper to copy than a syscall each: they go in
// the gathered write, read from the mapping.
//
// Not thread-safe; the parts must outlive it. No allocation.

#include <boost/asio/buffer.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "cmp/snapshot/body.hpp"

namespace cmp::server {

class send_plan {
 public:
  // File ranges at least this long are sent with sendfile.
  static constexpr std::size_t sendfile_min = 16 * 1024;
  // At most this many bytes per syscall, so that one large response lets
  // other connections' in between (as the scatter write did).
  static constexpr std::size_t max_step = 256 * 1024;

  struct step {
    // sendfile: fd >= 0, `size` bytes of it at `offset`.
    int fd = -1;
    std::uint64_t offset = 0;
    std::size_t size = 0;
    // a gathered write: buffers [0, count) of the array given to next().
    std::size_t count = 0;
    // More bytes of this response follow this step.
    bool more = false;
  };

  // `files[i]` says where parts[i] lies in a file (fd -1: memory only);
  // `files` may be shorter than `parts` (the rest are memory).
  send_plan(std::span<const std::string_view> parts, std::span<const snapshot::segment_file> files) noexcept
      : parts_(parts), files_(files) {
    skip_empty();
  }

  [[nodiscard]] bool done() const noexcept { return part_ == parts_.size(); }
  // True if any part goes by sendfile: else a plain scatter write will do.
  [[nodiscard]] bool uses_sendfile() const noexcept;
  // The next syscall. `iov` receives the buffers of a gathered write.
  [[nodiscard]] step next(std::span<boost::asio::const_buffer> iov) const noexcept;
  // `n` bytes of the last step went out.
  void advance(std::size_t n) noexcept;

 private:
  [[nodiscard]] bool by_sendfile(std::size_t i) const noexcept {
    return i < files_.size() && files_[i].fd >= 0 && parts_[i].size() >= sendfile_min;
  }
  void skip_empty() noexcept {
    while (part_ < parts_.size() && at_ == parts_[part_].size()) {
      ++part_;
      at_ = 0;
    }
  }

  std::span<const std::string_view> parts_;
  std::span<const snapshot::segment_file> files_;
  std::size_t part_ = 0;  // the first part not sent completely
  std::size_t at_ = 0;    // bytes of it already sent
};

}  // namespace cmp::server
