#include "cmp/upstream/state_writer.hpp"

#include <boost/asio/strand.hpp>

#include "cmp/upstream/offload.hpp"

#include <exception>

namespace cmp::upstream {

namespace asio = boost::asio;

namespace {

std::string run_op(const std::function<void()>& op) {
  try {
    op();
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace

state_writer::state_writer(asio::any_io_executor pool) {
  if (pool) strand_ = asio::make_strand(pool);
}

asio::awaitable<std::string> state_writer::write(std::function<void()>&& op) {
  {
    std::lock_guard lock(mu_);
    ++pending_;
  }
  // Not a coroutine itself (see the header on GCC 12).
  return offload(strand_, [this, op = std::move(op)] {
    auto error = run_op(op);
    {
      std::lock_guard lock(mu_);
      --pending_;
    }
    idle_.notify_all();
    return error;
  });
}

void state_writer::wait_idle() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [this] { return pending_ == 0; });
}

std::size_t state_writer::pending() const {
  std::lock_guard lock(mu_);
  return pending_;
}

}  // namespace cmp::upstream
