#pragma once
// Key rotation for `api_key_file`: when to re-read the file and what a read
// means, as a pure decision object. The poller does the I/O (a stat before
// every poll, a read only when told) and reports back.
//
// Why stat before each poll rather than a timer or inotify: a poll is the
// only moment the key matters, a stat costs nothing next to a TLS handshake,
// and Kubernetes secrets, Vault agent and systemd credentials all rotate by
// replacing the file (new inode, or a symlink swap that stat follows). The
// identity includes ctime so that a chmod making the file readable again is
// noticed too.
//
// A 401 re-reads the file whatever its identity (a same-second rewrite on a
// coarse file system keeps mtime and size); if that read brings a new key,
// the poll may be retried once per window, through the planner and the
// budget ledger like any retry. Without a new key a 401 waits for the next
// scheduled poll as before: no retry storm is possible, and the budget is
// never touched here.
//
// A file that cannot be read (missing, unreadable, empty, bad content)
// keeps the key in use; `unreadable` and `readable_again` are each reported
// once per change of state so the log says it once.
//
// Pure and not thread-safe: one poller owns it.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "cmp/config/config.hpp"
#include "cmp/config/secret.hpp"

namespace cmp::upstream {

// What stat(2) says about the key file: enough to tell that it changed.
struct key_file_stat {
  bool ok = false;  // stat succeeded; the fields below are meaningful
  int error = 0;    // errno when !ok (a file that vanishes and one that
                    // becomes inaccessible are different states)
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::int64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;

  friend bool operator==(const key_file_stat&, const key_file_stat&) = default;
};

// stat(2) of `path`, following symlinks (Kubernetes' ..data swap).
[[nodiscard]] key_file_stat stat_key_file(const std::filesystem::path& path) noexcept;

class api_key_watch {
 public:
  using time_point = std::chrono::system_clock::time_point;

  enum class cause : std::uint8_t { before_poll, unauthorized };
  enum class read_result : std::uint8_t {
    same_key,  // read fine, the key in use
    new_key,   // read fine, another key: now in use
    failed     // missing, unreadable, empty or invalid: the old key stays
  };
  enum class event : std::uint8_t {
    none,            // nothing worth a log line
    rotated,         // a new key is in use (count it, log it without the key)
    unreadable,      // the file just became unusable; the old key stays
    readable_again,  // usable again, with the same key
  };

  // `loaded`: the file's stat when the key in use was read.
  explicit api_key_watch(key_file_stat loaded) noexcept : seen_(loaded) {}

  // Whether to read the file now.
  [[nodiscard]] bool should_read(cause why, const key_file_stat& now) const noexcept;
  // The outcome of a read of the file whose stat was `st`.
  event on_read(const key_file_stat& st, read_result r) noexcept;
  // After a 401 and its re-read (`e`): whether the failed poll may be retried
  // with the new key, inside the window ending at `window_end`. At most once
  // per window.
  [[nodiscard]] bool retry_after_unauthorized(event e, time_point window_end) noexcept;

  [[nodiscard]] bool unreadable() const noexcept { return unreadable_; }

 private:
  key_file_stat seen_;  // stat at the last read, successful or not
  bool unreadable_ = false;
  std::optional<time_point> retried_window_;
};

// Reads the upstream's api_key_file (relative paths next to `config_source`)
// and compares it with `key`: new_key (then `key` holds it), same_key, or
// failed, with `problem` naming the file and the reason, never the content.
[[nodiscard]] api_key_watch::read_result reread_key(const config::upstream& cfg,
                                                    const std::string& config_source,
                                                    config::secret& key, std::string& problem);

// The log line of an event (empty for `none`); names the file, never the key.
[[nodiscard]] std::string describe(api_key_watch::event e, api_key_watch::cause why,
                                   const std::filesystem::path& file, std::string_view problem);

}  // namespace cmp::upstream
