#pragma once
// What survives a restart, per upstream, in `state_dir`: the budget ledger
// (send times) and the last good snapshot (raw body + fetch time).
//
// The ledger is written and fsync'ed BEFORE each request is sent, so a
// crash loop (`kill -9`, systemd Restart=always) can never spend more than
// the budget. Files are replaced atomically (write temp, fsync, rename,
// fsync directory): a crash leaves the old or the new file, never half.
// Files are keyed by a hash of the upstream URL, because the budget belongs
// to the organization, not to the name it has in our config.
//
// Not thread-safe; blocking file I/O (the poller runs it on a state_writer,
// off the I/O thread, because an fsync can take tens of milliseconds).

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cmp::upstream {

struct stored_snapshot {
  std::chrono::system_clock::time_point fetched_at;
  std::chrono::system_clock::time_point window_end;
  std::string body;  // the upstream's Prometheus text, as received
  // Its Content-Type, as received: an OpenMetrics body must be parsed as
  // OpenMetrics again. Empty in files written before it was kept.
  std::string content_type;
};

class state_store {
 public:
  // `dir` may be empty: nothing is persisted (tests, or no state_dir).
  state_store(std::filesystem::path dir, const std::string& upstream_url);

  // nullopt: no ledger yet. Throws std::runtime_error when the file exists
  // but cannot be read or parsed (the caller then assumes the budget spent).
  [[nodiscard]] std::optional<std::vector<std::chrono::system_clock::time_point>> load_ledger() const;
  // Throws std::runtime_error (with the path and errno text) on failure.
  void save_ledger(const std::vector<std::chrono::system_clock::time_point>& sent) const;

  // nullopt when absent; throws std::runtime_error when unreadable/corrupt.
  [[nodiscard]] std::optional<stored_snapshot> load_snapshot() const;
  void save_snapshot(const stored_snapshot& s) const;

  // Free-form per-upstream state (the derived counters); same rules.
  [[nodiscard]] std::optional<std::string> load_counters() const;
  void save_counters(std::string_view text) const;

  [[nodiscard]] bool enabled() const noexcept { return !dir_.empty(); }
  [[nodiscard]] const std::filesystem::path& ledger_path() const noexcept { return ledger_; }
  [[nodiscard]] const std::filesystem::path& snapshot_path() const noexcept { return snapshot_; }

 private:
  std::filesystem::path dir_;
  std::filesystem::path ledger_;
  std::filesystem::path snapshot_;
  std::filesystem::path counters_;
};

// Writes `data` to `path` atomically and durably. Throws std::runtime_error.
void write_file_durably(const std::filesystem::path& path, std::string_view data);

}  // namespace cmp::upstream
