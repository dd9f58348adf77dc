#include "cmp/upstream/budget_ledger.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace cmp::upstream {
namespace {

using namespace std::chrono_literals;
using tp = budget_ledger::time_point;

tp at(std::chrono::milliseconds ms) { return tp(ms); }

// Largest number of sends inside any half-open window [t, t + w).
std::size_t max_in_any_window(std::vector<tp> sends, std::chrono::milliseconds w) {
  std::sort(sends.begin(), sends.end());
  std::size_t best = 0;
  for (std::size_t i = 0, j = 0; j < sends.size(); ++j) {
    while (sends[j] - sends[i] >= w) ++i;
    best = std::max(best, j - i + 1);
  }
  return best;
}

TEST(BudgetLedger, SafetyMarginIsOneSecondOrTwoPercent) {
  EXPECT_EQ(budget_ledger::safety_margin(60s), 1200ms);
  EXPECT_EQ(budget_ledger::safety_margin(10s), 1s);
  EXPECT_EQ(budget_ledger::safety_margin(1h), 72s);
}

TEST(BudgetLedger, AllowsExactlyTheLimitThenWaitsForTheOldestToLeave) {
  budget_ledger ledger(6, 60s);
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(ledger.try_acquire(at(i * 1000ms))) << i;
  EXPECT_EQ(ledger.remaining(at(5s)), 0u);
  EXPECT_FALSE(ledger.try_acquire(at(6s)));
  // Oldest send at 0 s; window 60 s + 1.2 s margin.
  EXPECT_EQ(ledger.next_allowed(at(6s)), at(61200ms));
  EXPECT_FALSE(ledger.try_acquire(at(61199ms)));
  EXPECT_TRUE(ledger.try_acquire(at(61200ms)));
  EXPECT_EQ(ledger.remaining(at(61200ms)), 0u);
  EXPECT_EQ(ledger.remaining(at(62200ms)), 1u);
}

TEST(BudgetLedger, BurstThenSteadyNeverExceedsLimitUnlikeATokenBucket) {
  // A token bucket of 6 refilled at 6/min would let 12 through in the first
  // minute here: 6 at once, then one every 10 s.
  budget_ledger ledger(6, 60s);
  std::vector<tp> sends;
  for (auto t = 0ms; t < 600s; t += 100ms)
    if (ledger.try_acquire(at(t))) sends.push_back(at(t));
  EXPECT_EQ(max_in_any_window(sends, 60s), 6u);
  EXPECT_GE(sends.size(), 50u);  // and the budget is actually used
}

TEST(BudgetLedger, PropertyNoSlidingWindowEverExceedsTheLimit) {
  std::mt19937_64 rng(12345);
  for (int round = 0; round < 300; ++round) {
    const auto limit = static_cast<std::uint32_t>(1 + rng() % 10);
    const auto window = std::chrono::milliseconds(1000 + rng() % 120'000);
    budget_ledger ledger(limit, window);
    std::vector<tp> sends;
    auto now = at(std::chrono::milliseconds(rng() % 1'000'000));
    for (int step = 0; step < 400; ++step) {
      // Mix of hammering, waiting for next_allowed and long pauses.
      switch (rng() % 4) {
        case 0: now += std::chrono::milliseconds(rng() % 50); break;
        case 1: now = ledger.next_allowed(now); break;
        case 2: now += std::chrono::milliseconds(rng() % (window.count() / 2 + 1)); break;
        default: now += std::chrono::milliseconds(rng() % 5); break;
      }
      if (ledger.try_acquire(now)) sends.push_back(now);
      ASSERT_LE(ledger.remaining(now), limit);
    }
    // The bound holds even for a window stretched by the safety margin.
    const auto stretched = window + budget_ledger::safety_margin(window);
    ASSERT_LE(max_in_any_window(sends, stretched), limit)
        << "limit " << limit << " window " << window.count() << "ms";
  }
}

TEST(BudgetLedger, RestoreKeepsNewestClampsFutureAndSorts) {
  budget_ledger ledger(3, 60s);
  ledger.restore({at(50s), at(10s), at(500s), at(20s), at(30s)}, at(100s));
  ASSERT_EQ(ledger.history().size(), 3u);
  EXPECT_EQ(ledger.history()[0], at(30s));
  EXPECT_EQ(ledger.history()[1], at(50s));
  EXPECT_EQ(ledger.history()[2], at(100s));  // a future entry only delays us
  EXPECT_EQ(ledger.remaining(at(100s)), 1u);  // 30 s has left the 61.2 s window
  EXPECT_EQ(ledger.next_allowed(at(80s)), at(30s) + 61200ms);
}

TEST(BudgetLedger, RestartWithinTheWindowKeepsTheBound) {
  budget_ledger first(6, 60s);
  std::vector<tp> sends;
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(first.try_acquire(at(i * 2s)));
    sends.push_back(at(i * 2s));
  }
  budget_ledger second(6, 60s);
  second.restore(first.history(), at(13s));
  for (std::chrono::milliseconds t = 13s; t < 200s; t += 500ms)
    if (second.try_acquire(at(t))) sends.push_back(at(t));
  EXPECT_LE(max_in_any_window(sends, 61200ms), 6u);
}

TEST(BudgetLedger, RestoringItsOwnPersistedSendsDoesNotCountThemTwice) {
  // A reload restores the file (millisecond times) into the live ledger
  // (sub-millisecond clock): the same send must stay one entry.
  budget_ledger ledger(6, 60s);
  const auto t = at(10s) + std::chrono::microseconds(1234);
  ASSERT_TRUE(ledger.try_acquire(t));
  std::vector<tp> from_file;
  for (auto s : ledger.history())
    from_file.push_back(tp(std::chrono::duration_cast<std::chrono::milliseconds>(s.time_since_epoch())));
  auto merged = from_file;
  merged.insert(merged.end(), ledger.history().begin(), ledger.history().end());
  ledger.restore(merged, at(11s));
  EXPECT_EQ(ledger.history().size(), 1u);
  EXPECT_EQ(ledger.remaining(at(11s)), 5u);
  EXPECT_GE(ledger.history()[0], t);  // rounded up, never earlier than the send
}

TEST(BudgetLedger, AssumeSpentBlocksAWholeWindow) {
  budget_ledger ledger(6, 60s);
  ledger.assume_spent(at(10s));
  EXPECT_EQ(ledger.remaining(at(10s)), 0u);
  EXPECT_EQ(ledger.next_allowed(at(10s)), at(71200ms));
}

TEST(BudgetLedger, RejectsZeroRequests) { EXPECT_THROW(budget_ledger(0, 60s), std::invalid_argument); }

}  // namespace
}  // namespace cmp::upstream
