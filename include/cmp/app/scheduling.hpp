#pragma once
// How the daemon's threads share a small machine's CPUs. The I/O thread
// answers scrapes and fires every timer; the pools' threads (a poll's
// decode and parse, a view's render and gzip, fsyncs) do work that can wait
// a little. Both functions only ask the kernel: where it refuses, the daemon
// runs as before and says so once in its log.

#include <boost/asio/thread_pool.hpp>

namespace cmp::app {

// Lowers every thread of `pool` to nice +10 and SCHED_BATCH (no wakeup
// preemption): the scheduler then runs the I/O thread first whenever both
// are ready, and idle cores still run them at full speed. `threads` must be
// the pool's size (more would wait forever). Returns how many threads could
// not lower theirs (0: all did).
int run_in_background(boost::asio::thread_pool& pool, int threads);

// Asks for a short time slice (100 us) for the calling thread, keeping its
// policy and nice value. On EEVDF kernels (Linux >= 6.12) a thread woken
// while another runs waits for the running one's slice to end (3-4 ms here,
// up to a tick), unless the woken one asks for a shorter slice than the
// running one's. The I/O thread wakes for every scrape and poll response and
// then works for micro- to milliseconds: a short slice lets it in at once,
// ahead of the pools' threads and of any other process's long slice. Older
// kernels accept the request and ignore it. Returns false if the kernel
// refused it (errno is set), or the thread is not SCHED_OTHER (real-time
// threads are left alone).
bool request_short_slice();

// The slice the kernel uses for the calling thread, in ns (0: unknown, e.g.
// a kernel that does not report it).
unsigned long long current_slice_ns();

}  // namespace cmp::app
