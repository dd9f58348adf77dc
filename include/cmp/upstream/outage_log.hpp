#pragma once
// What the log says about one upstream's polls, decided without I/O: the
// story once, not a line per poll.
//
//   * The first snapshot, at info, with what it holds (families, series,
//     endpoints): a new user watching the journal sees that it works.
//   * The change to down, at warn, with its reason; within that outage each
//     further reason once (a 503 turning into a 401 is news, the tenth 503
//     is not: debug).
//   * The change back to up, at info, with how long it was down and how
//     many polls failed.
//   * Everything else at debug.
//
// Pure: time passed in. Not thread-safe: one per poller.

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace cmp::upstream {

// What a snapshot holds, for the log.
struct snapshot_counts {
  std::size_t families = 0;
  std::size_t series = 0;
  std::size_t endpoints = 0;  // distinct values of the upstream's `endpoint` label
};

class outage_log {
 public:
  enum class level { debug, info, warn };
  struct line {
    level at = level::debug;
    std::string text;
  };

  // A poll that gave no snapshot: `kind` names the reason (the
  // classification's report_kind, or "parse"), `message` says it.
  [[nodiscard]] line on_failure(std::string_view kind, std::string_view message,
                                std::chrono::system_clock::time_point now);
  // A poll that published a snapshot.
  [[nodiscard]] line on_success(const snapshot_counts& counts, std::chrono::system_clock::time_point now);

 private:
  bool had_snapshot_ = false;
  std::uint64_t failures_ = 0;  // of the current outage
  std::optional<std::chrono::system_clock::time_point> down_since_;
  std::set<std::string, std::less<>> told_;  // reasons logged in the current outage
};

}  // namespace cmp::upstream
