#include "cmp/upstream/poll_planner.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include "cmp/upstream/budget_ledger.hpp"

namespace cmp::upstream {
namespace {

using namespace std::chrono_literals;
using tp = poll_planner::time_point;
using kind = poll_outcome::kind;

// 2026-11-25 12:00:00 UTC, a minute boundary.
const tp noon = tp(std::chrono::seconds(1795608000));

poll_planner make() { return poll_planner(poll_planner::policy{60s, 5s, 10s, 1s, 15s}); }

TEST(PollPlanner, SleepsUntilTheDecisionButDecidesAgainAtLeastEvery30s) {
  const auto now = poll_planner::time_point{} + std::chrono::hours(490'000);
  poll_planner::decision d;
  d.wait_until = now + std::chrono::seconds(12);
  EXPECT_EQ(d.sleep_from(now), std::chrono::seconds(12));
  d.wait_until = now + std::chrono::minutes(5);  // a wall-clock step back would strand a long sleep
  EXPECT_EQ(d.sleep_from(now), std::chrono::seconds(30));
  d.wait_until = now - std::chrono::seconds(1);
  EXPECT_EQ(d.sleep_from(now), std::chrono::steady_clock::duration::zero());
}

TEST(PollPlanner, FirstPollWaitsForTheMinuteToBePublished) {
  auto p = make();
  p.start(noon + 2s, std::nullopt);
  auto d = p.decide(noon + 2s, noon + 2s);
  EXPECT_FALSE(d.fetch_now);
  EXPECT_EQ(d.wait_until, noon + 5s);
  EXPECT_TRUE(p.decide(noon + 5s, noon).fetch_now);
}

TEST(PollPlanner, FirstPollMidWindowGoesAtOnce) {
  auto p = make();
  p.start(noon + 30s, std::nullopt);
  EXPECT_TRUE(p.decide(noon + 30s, noon + 30s).fetch_now);
}

TEST(PollPlanner, NoStartSoCloseToTheBoundaryThatTheRequestCouldCrossIt) {
  auto p = make();
  p.start(noon + 51s, std::nullopt);
  auto d = p.decide(noon + 51s, noon + 51s);
  EXPECT_FALSE(d.fetch_now);
  EXPECT_EQ(d.wait_until, noon + 65s);
  p.start(noon + 50s, std::nullopt);
  EXPECT_TRUE(p.decide(noon + 50s, noon + 50s).fetch_now);
}

TEST(PollPlanner, RestoredSnapshotOfThisWindowSkipsToTheNextPoll) {
  auto p = make();
  p.start(noon + 20s, noon);  // restored snapshot already describes the window ending at noon
  auto d = p.decide(noon + 20s, noon + 20s);
  EXPECT_FALSE(d.fetch_now);
  EXPECT_EQ(d.wait_until, noon + 65s);
  p.start(noon + 20s, noon - 60s);  // an older one: poll now
  EXPECT_TRUE(p.decide(noon + 20s, noon + 20s).fetch_now);
}

TEST(PollPlanner, SuccessSchedulesTheNextMinute) {
  auto p = make();
  p.start(noon + 5s, std::nullopt);
  p.on_result(noon + 5300ms, {kind::success, {}, true}, 0.5);
  EXPECT_EQ(p.decide(noon + 6s, noon).wait_until, noon + 65s);
}

TEST(PollPlanner, RetryBacksOffExponentiallyWithJitterInsideTheWindow) {
  auto p = make();
  p.start(noon + 5s, std::nullopt);
  p.on_result(noon + 6s, {kind::retryable, {}, true}, 1.0);
  EXPECT_EQ(p.due(), noon + 7s);  // ceiling 1 s
  p.on_result(noon + 7s, {kind::retryable, {}, true}, 1.0);
  EXPECT_EQ(p.due(), noon + 9s);  // 2 s
  p.on_result(noon + 9s, {kind::retryable, {}, true}, 1.0);
  EXPECT_EQ(p.due(), noon + 13s);  // 4 s
  p.on_result(noon + 13s, {kind::retryable, {}, true}, 0.0);
  EXPECT_EQ(p.due(), noon + 13100ms);  // full jitter, 100 ms floor
  p.on_result(noon + 14s, {kind::retryable, {}, true}, 0.5);
  EXPECT_EQ(p.due(), noon + 21500ms);  // half of the 15 s cap (16 s uncapped)
  EXPECT_EQ(p.failed_attempts(), 5u);
}

TEST(PollPlanner, RetryThatCannotFinishInThisWindowBecomesTheNextPoll) {
  auto p = make();
  p.start(noon + 45s, std::nullopt);
  p.on_result(noon + 48s, {kind::retryable, {}, true}, 1.0);  // + 1 s = 49 s: fits
  EXPECT_EQ(p.due(), noon + 49s);
  p.on_result(noon + 49500ms, {kind::retryable, {}, true}, 1.0);  // + 2 s = 51.5 s > 50 s
  EXPECT_EQ(p.due(), noon + 65s);
  EXPECT_EQ(p.failed_attempts(), 0u);  // a fresh window starts a fresh backoff
}

TEST(PollPlanner, RateLimitedWaitsForRetryAfter) {
  auto p = make();
  p.start(noon + 5s, std::nullopt);
  p.on_result(noon + 6s, {kind::rate_limited, noon + 30s, true}, 0.0);
  EXPECT_EQ(p.due(), noon + 30s);
  EXPECT_FALSE(p.decide(noon + 29999ms, noon).fetch_now);
  EXPECT_TRUE(p.decide(noon + 30s, noon).fetch_now);
}

TEST(PollPlanner, RateLimitedWithoutRetryAfterWaitsForTheNextWindow) {
  auto p = make();
  p.start(noon + 5s, std::nullopt);
  p.on_result(noon + 6s, {kind::rate_limited, std::nullopt, true}, 0.0);
  EXPECT_EQ(p.due(), noon + 65s);
}

TEST(PollPlanner, RetryAfterBeyondTheNextPollIsHonoured) {
  auto p = make();
  p.start(noon + 5s, std::nullopt);
  p.on_result(noon + 6s, {kind::rate_limited, noon + 100s, true}, 0.0);
  EXPECT_EQ(p.due(), noon + 100s);
  EXPECT_FALSE(p.decide(noon + 65s, noon).fetch_now);
}

TEST(PollPlanner, ShouldRetryFalseAndAuthFailuresWaitForTheNextPoll) {
  auto p = make();
  p.start(noon + 5s, std::nullopt);
  p.on_result(noon + 6s, {kind::retryable, {}, false}, 0.0);
  EXPECT_EQ(p.due(), noon + 65s);
  p.on_result(noon + 66s, {kind::final_for_slot, {}, true}, 0.0);
  EXPECT_EQ(p.due(), noon + 125s);
}

TEST(PollPlanner, BudgetDelaysThePoll) {
  auto p = make();
  p.start(noon + 5s, std::nullopt);
  auto d = p.decide(noon + 5s, noon + 20s);
  EXPECT_FALSE(d.fetch_now);
  EXPECT_EQ(d.wait_until, noon + 20s);
  d = p.decide(noon + 5s, noon + 55s);  // budget frees too late for this window
  EXPECT_EQ(d.wait_until, noon + 65s);
}

TEST(PollPlanner, WindowEndIsTheLastBoundary) {
  auto p = make();
  EXPECT_EQ(p.window_end_for(noon), noon);
  EXPECT_EQ(p.window_end_for(noon + 59999ms), noon);
  EXPECT_EQ(p.window_end_for(noon - 1ms), noon - 60s);
  EXPECT_EQ(p.next_slot_after(noon + 5s), noon + 65s);
  EXPECT_EQ(p.next_slot_after(noon + 4999ms), noon + 5s);
}

TEST(PollPlanner, RejectsOffsetPlusTimeoutBeyondTheInterval) {
  EXPECT_THROW(poll_planner(poll_planner::policy{60s, 55s, 10s, 1s, 15s}), std::invalid_argument);
}

// Drives planner + ledger through hours of random outcomes: every request
// starts where the data it gets is unambiguous, at most one success per
// window, and the budget holds in every sliding window.
TEST(PollPlanner, SimulationKeepsScheduleAndBudget) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 20; ++round) {
    auto p = make();
    budget_ledger ledger(6, 60s);
    auto now = noon + std::chrono::milliseconds(rng() % 60'000);
    p.start(now, std::nullopt);
    std::vector<tp> sends;
    std::map<tp, int> successes_per_window;
    std::uniform_real_distribution<double> u(0, 1);
    for (int step = 0; step < 2000; ++step) {
      auto d = p.decide(now, ledger.next_allowed(now));
      if (!d.fetch_now) {
        ASSERT_GT(d.wait_until, now);
        now = d.wait_until;
        continue;
      }
      ASSERT_TRUE(ledger.try_acquire(now));
      sends.push_back(now);
      const auto since_boundary = now - p.window_end_for(now);
      ASSERT_GE(since_boundary, 5s);
      ASSERT_LE(since_boundary, 50s);
      const auto took = std::chrono::milliseconds(rng() % 10'000);
      poll_outcome o;
      const double r = u(rng);
      if (r < 0.5) {
        o.what = kind::success;
        ++successes_per_window[p.window_end_for(now)];
      } else if (r < 0.8) {
        o.what = kind::retryable;
      } else if (r < 0.9) {
        o.what = kind::rate_limited;
        if (rng() % 2) o.retry_after = now + std::chrono::seconds(rng() % 90);
      } else {
        o.what = kind::final_for_slot;
      }
      now += took;
      p.on_result(now, o, u(rng));
    }
    for (auto& [w, n] : successes_per_window) ASSERT_EQ(n, 1);
    for (std::size_t i = 6; i < sends.size(); ++i) ASSERT_GT(sends[i] - sends[i - 6], 60s);
  }
}

poll_planner replica(std::uint32_t index, std::uint32_t count) {
  return poll_planner(poll_planner::policy{60s, 5s, 10s, 1s, 15s, count, index});
}

// The start span [5 s, 50 s] after each boundary, cut into equal slices.
TEST(PollPlannerReplicas, EachReplicaOwnsOneSliceOfTheStartSpan) {
  struct row {
    std::uint32_t index, count;
    std::chrono::milliseconds begin, end;  // inclusive
  };
  const row rows[] = {
      {0, 1, 5s, 50s},                            // one replica: the whole span
      {0, 2, 5s, 27499ms}, {1, 2, 27500ms, 50s},  // an HA pair
      {0, 3, 5s, 19999ms}, {1, 3, 20s, 34999ms}, {2, 3, 35s, 50s},
  };
  for (const auto& r : rows) {
    const auto p = replica(r.index, r.count);
    EXPECT_EQ(p.slice_begin(), r.begin) << r.index << "/" << r.count;
    EXPECT_EQ(p.slice_end(), r.end) << r.index << "/" << r.count;
  }
}

TEST(PollPlannerReplicas, SecondReplicaPollsInItsOwnSliceOfTheSameWindow) {
  auto p = replica(1, 2);
  p.start(noon + 6s, std::nullopt);
  auto d = p.decide(noon + 6s, noon);
  EXPECT_FALSE(d.fetch_now);
  EXPECT_EQ(d.wait_until, noon + 27500ms);
  EXPECT_EQ(p.window_end_for(d.wait_until), noon);  // same window as replica 0 at noon + 5 s
  p.on_result(noon + 28s, {kind::success, {}, true}, 0.5);
  EXPECT_EQ(p.due(), noon + 87500ms);
}

TEST(PollPlannerReplicas, FirstReplicaRetriesOnlyUntilItsSliceEnds) {
  auto p = replica(0, 2);
  p.start(noon + 5s, std::nullopt);
  p.on_result(noon + 26s, {kind::retryable, {}, true}, 1.0);  // + 1 s = 27 s: in the slice
  EXPECT_EQ(p.due(), noon + 27s);
  p.on_result(noon + 27200ms, {kind::retryable, {}, true}, 1.0);  // 29.2 s: the other's slice
  EXPECT_EQ(p.due(), noon + 65s);
  // A budget that frees up in the other replica's slice waits too.
  EXPECT_EQ(replica(0, 2).decide(noon + 5s, noon + 30s).wait_until, noon + 65s);
}

TEST(PollPlannerReplicas, RejectsAnIndexOutsideTheSetAndSlicesTooThin) {
  EXPECT_THROW(replica(2, 2), std::invalid_argument);
  EXPECT_THROW(replica(0, 0), std::invalid_argument);
  EXPECT_THROW(poll_planner(poll_planner::policy{1s, 0s, 1s, 1s, 1s, 2, 0}), std::invalid_argument);
}

// Two or three replicas, each with its own ledger and random outcomes: no
// start of one replica ever lies in another's slice (so no two starts
// coincide), every start still fetches a window unambiguously, and each
// replica keeps its own share of the budget.
TEST(PollPlannerReplicas, SimulationNeverStartsTwoReplicasAtOnce) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0, 1);
  for (std::uint32_t count : {2u, 3u}) {
    for (int round = 0; round < 10; ++round) {
      std::vector<tp> all_starts;
      for (std::uint32_t index = 0; index < count; ++index) {
        auto p = replica(index, count);
        budget_ledger ledger(6 / count, 60s);
        auto now = noon + std::chrono::milliseconds(rng() % 60'000);
        p.start(now, std::nullopt);
        std::vector<tp> sends;
        for (int step = 0; step < 1000; ++step) {
          auto d = p.decide(now, ledger.next_allowed(now));
          if (!d.fetch_now) {
            ASSERT_GT(d.wait_until, now);
            now = d.wait_until;
            continue;
          }
          ASSERT_TRUE(ledger.try_acquire(now));
          sends.push_back(now);
          all_starts.push_back(now);
          const auto since = now - p.window_end_for(now);
          ASSERT_GE(since, p.slice_begin());
          ASSERT_LE(since, p.slice_end());
          poll_outcome o;
          const double r = u(rng);
          o.what = r < 0.4 ? kind::success : r < 0.9 ? kind::retryable : kind::rate_limited;
          if (o.what == kind::rate_limited && rng() % 2)
            o.retry_after = now + std::chrono::seconds(rng() % 90);
          now += std::chrono::milliseconds(rng() % 10'000);
          p.on_result(now, o, u(rng));
        }
        const std::size_t share = 6 / count;
        for (std::size_t i = share; i < sends.size(); ++i)
          ASSERT_GT(sends[i] - sends[i - share], 60s);
      }
      // Slices tile the span without overlap, so the owner of a start is
      // unique: check it by position.
      for (const auto t : all_starts) {
        const auto since =
            std::chrono::duration_cast<std::chrono::milliseconds>(t - make().window_end_for(t));
        std::uint32_t owners = 0;
        for (std::uint32_t i = 0; i < count; ++i) {
          const auto p = replica(i, count);
          if (since >= p.slice_begin() && since <= p.slice_end()) ++owners;
        }
        ASSERT_EQ(owners, 1u);
      }
      std::sort(all_starts.begin(), all_starts.end());
      ASSERT_EQ(std::adjacent_find(all_starts.begin(), all_starts.end()), all_starts.end());
    }
  }
}

}  // namespace
}  // namespace cmp::upstream
