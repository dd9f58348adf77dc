#include "cmp/upstream/outage_log.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cmp::upstream {
namespace {

using namespace std::chrono_literals;
using wall_clock = std::chrono::system_clock;
using level = outage_log::level;

const wall_clock::time_point t0 = wall_clock::from_time_t(1767225600);
const snapshot_counts counts{13, 150, 2};

struct step {
  std::string kind;  // empty: a snapshot
  wall_clock::duration at;
  level expected;
  std::string text;
};

void play(const std::vector<step>& steps) {
  outage_log log;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const auto& s = steps[i];
    SCOPED_TRACE("step " + std::to_string(i) + " " + (s.kind.empty() ? "snapshot" : s.kind));
    const auto line = s.kind.empty() ? log.on_success(counts, t0 + s.at)
                                     : log.on_failure(s.kind, "failed with " + s.kind, t0 + s.at);
    EXPECT_EQ(line.at, s.expected);
    EXPECT_EQ(line.text, s.text);
  }
}

TEST(OutageLog, TheFirstSnapshotIsToldWithWhatItHolds) {
  play({
      {"", 0s, level::info, "first snapshot: 13 families, 150 series, 2 endpoints"},
      {"", 60s, level::debug, "snapshot: 13 families, 150 series, 2 endpoints"},
      {"", 120s, level::debug, "snapshot: 13 families, 150 series, 2 endpoints"},
  });
}

TEST(OutageLog, AnOutageIsToldWhenItBeginsAndEndsNotAtEveryFailure) {
  play({
      {"", 0s, level::info, "first snapshot: 13 families, 150 series, 2 endpoints"},
      {"503", 60s, level::warn, "failed with 503"},
      {"503", 61s, level::debug, "failed with 503"},
      {"timeout", 70s, level::warn, "still failing, now: failed with timeout"},
      // Alternating reasons: each was told once in this outage.
      {"503", 120s, level::debug, "failed with 503"},
      {"timeout", 130s, level::debug, "failed with timeout"},
      {"", 252s, level::info, "upstream recovered after 5 failed polls in 3m12s: 13 families, 150 series, 2 endpoints"},
      // A new outage tells its reason again.
      {"503", 300s, level::warn, "failed with 503"},
      {"", 3900s, level::info, "upstream recovered after 1 failed polls in 1h0m: 13 families, 150 series, 2 endpoints"},
  });
}

TEST(OutageLog, FailuresBeforeTheFirstSnapshotAreAnOutageToo) {
  play({
      {"404", 0s, level::warn, "failed with 404"},
      {"404", 60s, level::debug, "failed with 404"},
      {"", 120s, level::info, "first snapshot after 2 failed polls: 13 families, 150 series, 2 endpoints"},
  });
}

}  // namespace
}  // namespace cmp::upstream
