#include "cmp/upstream/clock_skew.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace cmp::upstream {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using wall_clock = std::chrono::system_clock;

// 2026-01-01T00:00:00Z, and its Date header.
const wall_clock::time_point t0 = wall_clock::from_time_t(1767225600);
const std::string d0 = "Thu, 01 Jan 2026 00:00:00 GMT";
const std::string d10 = "Thu, 01 Jan 2026 00:00:10 GMT";
const std::string d_minus10 = "Wed, 31 Dec 2025 23:59:50 GMT";

struct skew_row {
  std::string what;
  std::string date;
  wall_clock::duration sent;      // after t0, our clock
  wall_clock::duration received;  // after t0, our clock
  std::optional<milliseconds> skew;
};

TEST(ClockSkew, ACorrectClockReadsZeroWhateverTheFractionAndLatency) {
  const std::vector<skew_row> table = {
      {"written at once", d0, 0ms, 1ms, 0ms},
      // Date is rounded down: at 00:00:00.999 a correct API still says :00.
      {"late in the second", d0, 999ms, 999ms, 0ms},
      // A slow answer: the API may have written :00 at the very start.
      {"slow request", d0, -2500ms, 300ms, 0ms},
      {"slow, the second after", "Thu, 01 Jan 2026 00:00:01 GMT", 200ms, 1100ms, 0ms},
  };
  for (const auto& r : table) {
    SCOPED_TRACE(r.what);
    EXPECT_EQ(clock_skew(r.date, t0 + r.sent, t0 + r.received), r.skew);
  }
}

TEST(ClockSkew, ASkewedClockReadsTheSmallestSkewTheHeaderProves) {
  const std::vector<skew_row> table = {
      // The API says :10 while we are at :00.2-:00.4: it is at least 9.6 s ahead.
      {"API ahead", d10, 200ms, 400ms, 9600ms},
      // The API says 23:59:50 (before :51) while we are at :00.2 or later: 9.2 s behind at least.
      {"API behind", d_minus10, 200ms, 400ms, -9200ms},
      // Ahead by just over a second: still told.
      {"barely ahead", "Thu, 01 Jan 2026 00:00:02 GMT", 500ms, 600ms, 1400ms},
      {"no date", "", 0ms, 1ms, std::nullopt},
      {"not a date", "yesterday", 0ms, 1ms, std::nullopt},
      {"received before sent", d0, 5ms, 1ms, std::nullopt},
  };
  for (const auto& r : table) {
    SCOPED_TRACE(r.what);
    EXPECT_EQ(clock_skew(r.date, t0 + r.sent, t0 + r.received), r.skew);
  }
}

// Warned once per episode: beyond 2 s it begins, at 1 s or less it ends,
// and between the two nothing changes (no warning per poll near 2 s).
TEST(SkewWatch, OneWarningPerEpisodeWithAGapAgainstFlapping) {
  struct step {
    milliseconds skew;
    skew_watch::event event;
  };
  const std::vector<step> steps = {
      {0ms, skew_watch::event::none},        {2000ms, skew_watch::event::none},
      {2001ms, skew_watch::event::began},    {10000ms, skew_watch::event::none},
      {1500ms, skew_watch::event::none},     {2500ms, skew_watch::event::none},
      {1000ms, skew_watch::event::ended},    {1900ms, skew_watch::event::none},
      {-2500ms, skew_watch::event::began},   {-1001ms, skew_watch::event::none},
      {-1000ms, skew_watch::event::ended},
  };
  skew_watch w;
  for (const auto& s : steps) {
    SCOPED_TRACE(s.skew.count());
    EXPECT_EQ(w.observe(s.skew), s.event);
  }
  EXPECT_FALSE(w.skewed());
}

}  // namespace
}  // namespace cmp::upstream
