#pragma once
// Who may spend a state_dir's budgets at the same time.
//
// A running daemon keeps each budget ledger in memory: it writes the file
// before every request but reads it only at start. A request that another
// process records there (`--probe`) would be invisible to it, and the two
// together could exceed the organization's limit. So a daemon holds a
// shared lock on `<state_dir>/lock` for its lifetime (several daemons on
// one state_dir keep working as before), and a probe needs the exclusive
// lock: it is refused while a daemon runs on that state_dir, and a daemon
// that starts during a probe waits for it (at most the probe's timeouts)
// and then reads what the probe recorded.
//
// flock(2): released when the process ends, however it ends. Movable, not
// copyable; not thread-safe.

#include <filesystem>
#include <optional>
#include <string>

namespace cmp::upstream {

class state_lock {
 public:
  state_lock(state_lock&& other) noexcept;
  state_lock& operator=(state_lock&& other) noexcept;
  state_lock(const state_lock&) = delete;
  state_lock& operator=(const state_lock&) = delete;
  ~state_lock();

  // For a daemon: waits while a probe holds the lock. Creates `dir` when
  // missing. Never fails the caller: without a usable lock file (state_dir
  // not writable, which the daemon reports on its own) it holds nothing.
  [[nodiscard]] static state_lock shared(const std::filesystem::path& dir);
  // For a probe: nullopt, with the reason in `why`, when a daemon (or
  // another probe) uses `dir` (then `busy` is set), or the lock file cannot
  // be made.
  [[nodiscard]] static std::optional<state_lock> exclusive(const std::filesystem::path& dir,
                                                           std::string& why, bool* busy = nullptr);

  [[nodiscard]] bool held() const noexcept { return fd_ >= 0; }

 private:
  explicit state_lock(int fd) noexcept : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace cmp::upstream
