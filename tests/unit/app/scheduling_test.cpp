#include "cmp/app/scheduling.hpp"

#include <gtest/gtest.h>

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <latch>
#include <mutex>
#include <thread>
#include <vector>

namespace cmp::app {
namespace {

int thread_nice() { return getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())); }

TEST(Scheduling, RunInBackgroundLowersEveryThreadOfThePool) {
  const int base = thread_nice();
  boost::asio::thread_pool pool(2);
  ASSERT_EQ(run_in_background(pool, 2), 0);
  // One job per thread (each holds its thread until both have one).
  std::latch both(2);
  std::mutex m;
  std::vector<std::pair<int, int>> seen;  // policy, nice
  for (int i = 0; i < 2; ++i) {
    boost::asio::post(pool, [&] {
      both.arrive_and_wait();
      std::lock_guard lock(m);
      seen.emplace_back(sched_getscheduler(0), thread_nice());
    });
  }
  pool.join();
  ASSERT_EQ(seen.size(), 2u);
  for (const auto& [policy, nice] : seen) {
    EXPECT_EQ(policy, SCHED_BATCH);
    EXPECT_EQ(nice, std::min(19, base + 10));
  }
  EXPECT_EQ(sched_getscheduler(0), SCHED_OTHER) << "the caller's thread is not changed";
}

TEST(Scheduling, ShortSliceKeepsTheThreadsNiceValue) {
  // In a thread of its own: the test runner's thread keeps its slice.
  bool ok = false;
  int nice_after = 0, policy_after = -1;
  unsigned long long before = 0, after = 0;
  std::thread([&] {
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), thread_nice() + 3);
    const int nice = thread_nice();
    before = current_slice_ns();
    ok = request_short_slice();
    after = current_slice_ns();
    nice_after = thread_nice() - nice;  // 0: unchanged
    policy_after = sched_getscheduler(0);
  }).join();
  ASSERT_TRUE(ok) << "sched_setattr refused: " << std::strerror(errno);
  EXPECT_EQ(nice_after, 0) << "sched_setattr must not reset the nice value";
  EXPECT_EQ(policy_after, SCHED_OTHER);
  if (before == 0) GTEST_SKIP() << "this kernel does not report time slices (Linux < 6.12)";
  EXPECT_EQ(after, 100'000u);
  EXPECT_GT(before, after) << "the default slice is longer than the one asked for";
}

TEST(Scheduling, ShortSliceLeavesOtherPoliciesAlone) {
  bool ok = true;
  int policy_after = -1;
  std::thread([&] {
    const sched_param p{};
    ASSERT_EQ(pthread_setschedparam(pthread_self(), SCHED_BATCH, &p), 0);
    ok = request_short_slice();
    policy_after = sched_getscheduler(0);
  }).join();
  EXPECT_FALSE(ok);
  EXPECT_EQ(policy_after, SCHED_BATCH);
}

}  // namespace
}  // namespace cmp::app
