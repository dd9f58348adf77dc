#include "cmp/app/scheduling.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <latch>

#include <boost/asio/post.hpp>

namespace cmp::app {

namespace {

// struct sched_attr of sched_setattr(2); glibc 2.36 has no wrapper.
struct sched_attr {
  std::uint32_t size;
  std::uint32_t sched_policy;
  std::uint64_t sched_flags;
  std::int32_t sched_nice;
  std::uint32_t sched_priority;
  std::uint64_t sched_runtime;  // for SCHED_OTHER/BATCH since 6.12: the slice
  std::uint64_t sched_deadline;
  std::uint64_t sched_period;
  std::uint32_t sched_util_min;
  std::uint32_t sched_util_max;
};

constexpr std::uint64_t short_slice_ns = 100'000;  // the kernel's minimum

}  // namespace

int run_in_background(boost::asio::thread_pool& pool, int threads) {
  std::latch started(threads);
  std::latch finished(threads);
  std::atomic<int> failed{0};
  for (int i = 0; i < threads; ++i) {
    boost::asio::post(pool, [&] {
      // Holds this thread until every one has taken a job: one job each.
      started.arrive_and_wait();
      const sched_param batch{};
      const int e1 = pthread_setschedparam(pthread_self(), SCHED_BATCH, &batch);
      const auto tid = static_cast<id_t>(gettid());
      errno = 0;
      const int nice = getpriority(PRIO_PROCESS, tid);
      const int e2 = errno != 0 ? -1 : setpriority(PRIO_PROCESS, tid, std::min(19, nice + 10));
      if (e1 != 0 || e2 != 0) failed.fetch_add(1);
      finished.count_down();  // the last use of this stack frame's latches
    });
  }
  finished.wait();
  return failed.load();
}

bool request_short_slice() {
  const int policy = sched_getscheduler(0);
  if (policy != SCHED_OTHER) {
    if (policy >= 0) errno = EINVAL;
    return false;
  }
  errno = 0;
  const int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  if (errno != 0) return false;
  sched_attr a{};
  a.size = sizeof a;
  a.sched_policy = SCHED_OTHER;
  // sched_setattr sets the nice value too: keep the one we run at (raising
  // it back to 0 would need privileges a `Nice=` unit does not give).
  a.sched_nice = nice;
  a.sched_runtime = short_slice_ns;
  return syscall(SYS_sched_setattr, 0, &a, 0u) == 0;
}

unsigned long long current_slice_ns() {
  sched_attr a{};
  if (syscall(SYS_sched_getattr, 0, &a, static_cast<unsigned>(sizeof a), 0u) != 0) return 0;
  return a.sched_runtime;
}

}  // namespace cmp::app
