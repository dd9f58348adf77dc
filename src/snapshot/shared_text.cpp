#include "cmp/snapshot/shared_text.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <ostream>

namespace cmp::snapshot {

namespace {

std::atomic<std::size_t> g_files{0};

// A sealed memfd holding `bytes`, mapped read-only; -1 / null on any failure.
struct mapped {
  int fd = -1;
  const char* data = nullptr;
};

mapped map_sealed(std::string_view bytes) {
  mapped m;
  const int fd = ::memfd_create("cmp-snapshot-text", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return m;
  std::size_t done = 0;
  while (done < bytes.size()) {
    const auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return m;
    }
    done += static_cast<std::size_t>(n);
  }
  // Sealed before anyone can see it: nothing (not even a bug of ours) can
  // change the bytes that renders and sendfile rely on, or truncate the file
  // under a mapping (which would turn reads into SIGBUS).
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    ::close(fd);
    return m;
  }
  void* p = ::mmap(nullptr, bytes.size(), PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    ::close(fd);
    return m;
  }
  m.fd = fd;
  m.data = static_cast<const char*>(p);
  return m;
}

}  // namespace

struct shared_text::storage {
  std::string heap;
  int fd = -1;
  const char* map = nullptr;
  std::size_t map_size = 0;

  storage() = default;
  storage(const storage&) = delete;
  storage& operator=(const storage&) = delete;
  ~storage() {
    if (fd < 0) return;
    ::munmap(const_cast<char*>(map), map_size);
    ::close(fd);
    g_files.fetch_sub(1, std::memory_order_relaxed);
  }
};

std::size_t shared_text::default_max_files() noexcept {
  std::size_t cap = 32;
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur != RLIM_INFINITY)
    cap = std::min<std::size_t>(cap, static_cast<std::size_t>(r.rlim_cur) / 32);
  return cap;
}

std::size_t shared_text::files_alive() noexcept { return g_files.load(std::memory_order_relaxed); }

shared_text::shared_text(std::string bytes) {
  if (bytes.empty()) return;
  auto s = std::make_shared<storage>();
  s->heap = std::move(bytes);
  data_ = s->heap.data();
  size_ = s->heap.size();
  storage_ = std::move(s);
}

shared_text shared_text::make(std::string bytes, const policy& p) {
  if (bytes.empty() || bytes.size() < p.min_size) return shared_text(std::move(bytes));
  // Take a slot first, so that racing poll threads cannot overshoot the cap.
  if (g_files.fetch_add(1, std::memory_order_relaxed) >= p.max_files) {
    g_files.fetch_sub(1, std::memory_order_relaxed);
    return shared_text(std::move(bytes));
  }
  const auto m = map_sealed(bytes);
  if (m.fd < 0) {
    g_files.fetch_sub(1, std::memory_order_relaxed);
    return shared_text(std::move(bytes));
  }
  auto s = std::make_shared<storage>();
  s->fd = m.fd;
  s->map = m.data;
  s->map_size = bytes.size();
  shared_text t;
  t.data_ = m.data;
  t.size_ = bytes.size();
  t.storage_ = std::move(s);
  return t;
}

file_extent shared_text::file() const noexcept {
  if (!storage_ || storage_->fd < 0) return {};
  return {data_, size_, storage_->fd, 0};
}

std::ostream& operator<<(std::ostream& os, const shared_text& t) { return os << t.view(); }

}  // namespace cmp::snapshot
