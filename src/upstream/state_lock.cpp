#include "cmp/upstream/state_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include <fmt/format.h>

namespace cmp::upstream {

namespace {

// 0644: the file holds nothing, and a daemon running as another user than
// the one who ran a probe first must still open it to lock it.
int open_lock_file(const std::filesystem::path& dir, std::string* why) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const auto path = dir / "lock";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 && why != nullptr) *why = fmt::format("cannot open {}: {}", path.string(), std::strerror(errno));
  return fd;
}

}  // namespace

state_lock::state_lock(state_lock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

state_lock& state_lock::operator=(state_lock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

state_lock::~state_lock() {
  if (fd_ >= 0) ::close(fd_);
}

state_lock state_lock::shared(const std::filesystem::path& dir) {
  const int fd = open_lock_file(dir, nullptr);
  if (fd < 0) return state_lock(-1);
  int rc = 0;
  while ((rc = ::flock(fd, LOCK_SH)) != 0 && errno == EINTR) {
  }
  if (rc != 0) {
    ::close(fd);
    return state_lock(-1);
  }
  return state_lock(fd);
}

std::optional<state_lock> state_lock::exclusive(const std::filesystem::path& dir, std::string& why,
                                                bool* busy) {
  if (busy != nullptr) *busy = false;
  const int fd = open_lock_file(dir, &why);
  if (fd < 0) return std::nullopt;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (busy != nullptr) *busy = err == EWOULDBLOCK;
    why = err == EWOULDBLOCK
              ? fmt::format("a running daemon (or another probe) uses state_dir {}", dir.string())
              : fmt::format("cannot lock {}: {}", (dir / "lock").string(), std::strerror(err));
    return std::nullopt;
  }
  return state_lock(fd);
}

}  // namespace cmp::upstream
