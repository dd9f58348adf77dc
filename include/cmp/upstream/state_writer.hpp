#pragma once
// Runs one organization's state file writes (state_store: write, fsync,
// rename, fsync the directory) off the I/O thread, one at a time and in the
// order they were submitted: an fsync on a busy disk takes tens of
// milliseconds, and a burst of N polls used to queue 3N of them on the
// event loop.
//
// One state_writer per organization (URL), shared like its budget_ledger by
// every poller of that URL across reloads, so that a retired poller's last
// write and its successor's first one stay in order. write() is called on
// the I/O thread and completes there; the operation itself runs on the
// writer's strand. Cancellation: none; a submitted write always runs (the
// daemon joins the pool at exit, so the final writes are not lost).
// wait_idle() may be called from the I/O thread only where blocking is
// acceptable (restoring a poller's state at start or reload).
//
// Without an executor (tests, tools) write() runs the operation inline.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>

namespace cmp::upstream {

class state_writer {
 public:
  // `pool`: where writes run (a thread pool); may be empty: inline.
  explicit state_writer(boost::asio::any_io_executor pool = {});

  // Runs `op` after every write submitted before it. Completes with an
  // empty string, or with the message of what `op` threw. Takes `op` by
  // rvalue reference (moved from at once): a by-value std::function would
  // be a temporary of the caller's co_await expression, which GCC 12
  // destroys twice.
  boost::asio::awaitable<std::string> write(std::function<void()>&& op);

  // Blocks until every submitted write has finished (so a read sees them).
  void wait_idle();

  [[nodiscard]] std::size_t pending() const;

 private:
  boost::asio::any_io_executor strand_;  // empty: inline
  mutable std::mutex mu_;
  std::condition_variable idle_;
  std::size_t pending_ = 0;
};

}  // namespace cmp::upstream
